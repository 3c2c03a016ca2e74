#!/usr/bin/env node
// Runs the compiled CLI in dist/ (built by `npm run build`, which `npm install`
// runs through `prepare`). When dist/ is missing or older than the sources, it
// runs the TypeScript sources through tsx instead, so a checkout being edited
// never runs stale code; that start is slower (about 2 s more).
//
// Staleness: the build writes dist/.built-at after compiling; dist is stale when
// any file under src/ was modified after it (an install without src/ always runs
// dist/). STEADFAST_FROM_SOURCE=1 forces the sources.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

function distIsCurrent() {
  if (process.env.STEADFAST_FROM_SOURCE === '1') return false;
  const stamp = join(root, 'dist', '.built-at');
  if (!existsSync(stamp)) return false;
  const builtAt = statSync(stamp).mtimeMs;
  const src = join(root, 'src');
  // A release without its sources (a container image) has only dist/.
  if (!existsSync(src)) return true;
  // About 150 stat calls: a few milliseconds.
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs > builtAt) return false;
  }
  return true;
}

if (distIsCurrent()) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
