#!/usr/bin/env node
// CI mode of `npm run mutate`: mutation-tests only the security-critical files
// a change touches, within a time budget, so a pipeline stays well under its
// 45 minutes. Usage:
//
//   node scripts/mutate-changed.mjs [--since <ref>] [--budget-minutes <n>]
//
// `--since` defaults to main (the merge base with it). With nothing
// security-critical changed it exits at once. Past the budget Stryker is
// stopped and the run counts as failed: split the change or run it nightly.
import { execFileSync, spawn } from 'node:child_process';
import { SECURITY_ALL } from '../stryker.config.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};
const since = option('--since', 'main');
const budgetMinutes = Number(option('--budget-minutes', '30'));

/** A glob of SECURITY_ALL (`dir/**\/*.ts` or a file) as a test on a path. */
const matcher = (glob) => {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*\*\//g, '(?:.*/)?')
    .replace(/\*/g, '[^/]*');
  const re = new RegExp(`^${source}$`);
  return (path) => re.test(path);
};
const critical = SECURITY_ALL.map(matcher);

const base = execFileSync('git', ['merge-base', since, 'HEAD'], { encoding: 'utf8' }).trim();
const changed = execFileSync('git', ['diff', '--name-only', '--diff-filter=AMR', base], { encoding: 'utf8' })
  .split('\n')
  .filter((path) => path.endsWith('.ts') && critical.some((test) => test(path)));

if (changed.length === 0) {
  process.stdout.write(`No security-critical source changed since ${since}; nothing to mutate.\n`);
  process.exit(0);
}
process.stdout.write(`Mutating ${changed.length} changed file(s) since ${since}, within ${budgetMinutes} minutes:\n  ${changed.join('\n  ')}\n`);
const stryker = spawn(
  'npx',
  [
    'stryker',
    'run',
    '--mutate',
    changed.join(','),
    ...args.filter((a, i) => !['--since', '--budget-minutes'].includes(a) && !['--since', '--budget-minutes'].includes(args[i - 1])),
  ],
  { stdio: 'inherit' },
);
const timer = setTimeout(() => {
  process.stderr.write(`Mutation testing passed its budget of ${budgetMinutes} minutes; stopping.\n`);
  stryker.kill('SIGTERM');
}, budgetMinutes * 60_000);
stryker.on('exit', (code, signal) => {
  clearTimeout(timer);
  process.exit(signal ? 1 : (code ?? 1));
});
