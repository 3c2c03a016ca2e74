#!/usr/bin/env node
// CI mode of `npm run mutate`: mutation-tests only the security-critical lines
// a change touches, within a time budget, so a pipeline stays well under its
// 45 minutes. Usage:
//
//   node scripts/mutate-changed.mjs [--since <ref>] [--budget-minutes <n>] [--break <score>]
//   node scripts/mutate-changed.mjs --recent-lines <n> [--budget-minutes <n>] [--break <score>] [--over-budget warn]
//   … --dry-run                          only print the line ranges it would mutate
//
// `--since` (default main): the lines changed since the merge base with that
// ref, for a branch's pipeline. `--recent-lines`: the n most recently changed
// lines of the security-critical sources as they are now (by `git blame`,
// newest first), for a pipeline on main itself, where there is no branch to
// compare with: every run tests what changed last, however long ago.
// Only lines that can hold a mutant count (not blank, not comments).
//
// `--break`: fail when the mutation score of those lines is below it. Past the
// budget Stryker is stopped and the run fails, unless `--over-budget warn`
// (then it says so and passes: a slow machine must not block a change, and the
// budget is sized to fit). With nothing security-critical changed it exits at once.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SECURITY_ALL } from '../stryker.config.mjs';

const args = process.argv.slice(2);
const OWN = ['--since', '--budget-minutes', '--recent-lines', '--break', '--over-budget'];
const FLAGS = ['--dry-run'];
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};
const since = option('--since', 'main');
const budgetMinutes = Number(option('--budget-minutes', '30'));
const recentLines = option('--recent-lines', undefined);
const breakAt = option('--break', undefined);
const overBudget = option('--over-budget', 'fail');

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
const isCritical = (path) => path.endsWith('.ts') && critical.some((test) => test(path));
const git = (...a) => execFileSync('git', a, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

/** Whether a line of source can hold a mutant: not blank, not a comment. */
const codeLine = (text) => {
  const t = text.trim();
  return t !== '' && !t.startsWith('//') && !t.startsWith('*') && !t.startsWith('/*');
};

/** Lines as `file -> sorted line numbers`, made into Stryker's `file:a-b` ranges (adjacent lines joined). */
function ranges(lines) {
  const out = [];
  for (const [file, numbers] of lines) {
    const sorted = [...new Set(numbers)].sort((a, b) => a - b);
    let start = sorted[0];
    let end = start;
    for (const n of sorted.slice(1)) {
      if (n === end + 1) end = n;
      else {
        out.push(`${file}:${start}-${end}`);
        start = end = n;
      }
    }
    if (start !== undefined) out.push(`${file}:${start}-${end}`);
  }
  return out;
}

/** The code lines changed since the merge base with `ref`, as they are numbered now. */
function changedSince(ref) {
  const base = git('merge-base', ref, 'HEAD').trim();
  const files = git('diff', '--name-only', '--diff-filter=AMR', base).split('\n').filter(isCritical);
  const lines = new Map();
  for (const file of files) {
    const text = readFileSync(file, 'utf8').split('\n');
    for (const hunk of git('diff', '-U0', base, '--', file).matchAll(/^@@ -\S+ \+(\d+)(?:,(\d+))? @@/gm)) {
      const start = Number(hunk[1]);
      const count = hunk[2] === undefined ? 1 : Number(hunk[2]);
      for (let n = start; n < start + count; n++) if (codeLine(text[n - 1] ?? '')) lines.set(file, [...(lines.get(file) ?? []), n]);
    }
  }
  return lines;
}

/** The `limit` most recently changed code lines of every security-critical file, by `git blame`. */
function mostRecent(limit) {
  const files = git('ls-files', 'src').split('\n').filter(isCritical);
  const all = [];
  for (const file of files) {
    const porcelain = git('blame', '--line-porcelain', '--', file).split('\n');
    let time = 0;
    let line = 0;
    for (const row of porcelain) {
      const header = /^[0-9a-f]{40} \d+ (\d+)/.exec(row);
      if (header) line = Number(header[1]);
      else if (row.startsWith('committer-time ')) time = Number(row.slice(15));
      else if (row.startsWith('\t') && codeLine(row.slice(1))) all.push({ file, line, time });
    }
  }
  // Newest first; within one commit, in file order, so a change's lines are taken together.
  all.sort((a, b) => b.time - a.time || (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
  const lines = new Map();
  for (const { file, line } of all.slice(0, limit)) lines.set(file, [...(lines.get(file) ?? []), line]);
  return lines;
}

const lines = recentLines !== undefined ? mostRecent(Number(recentLines)) : changedSince(since);
const mutate = ranges(lines);
const what = recentLines !== undefined ? `the ${recentLines} most recently changed code lines` : `the code lines changed since ${since}`;
if (mutate.length === 0) {
  process.stdout.write(`No security-critical code changed (${what}); nothing to mutate.\n`);
  process.exit(0);
}
process.stdout.write(`Mutating ${what} of the security-critical sources, within ${budgetMinutes} minutes:\n  ${mutate.join('\n  ')}\n`);
if (args.includes('--dry-run')) process.exit(0);
const stryker = spawn(
  'npx',
  ['stryker', 'run', '--mutate', mutate.join(','), ...args.filter((a, i) => !OWN.includes(a) && !FLAGS.includes(a) && !OWN.includes(args[i - 1]))],
  { stdio: 'inherit', env: { ...process.env, ...(breakAt !== undefined ? { STRYKER_BREAK: breakAt } : {}) } },
);
let overTime = false;
const timer = setTimeout(() => {
  overTime = true;
  process.stderr.write(`Mutation testing passed its budget of ${budgetMinutes} minutes; stopping.\n`);
  stryker.kill('SIGTERM');
}, budgetMinutes * 60_000);
stryker.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (overTime && overBudget === 'warn') {
    process.stderr.write('Over budget: not scored this time (--over-budget warn).\n');
    process.exit(0);
  }
  process.exit(signal || overTime ? 1 : (code ?? 1));
});
