import { existsSync } from 'node:fs';

/**
 * The folder of Steadfast's package.json (beside web/ and node_modules/),
 * found by walking up from the calling module. The same code runs from src/
 * (tsx, tests) and from bundled chunks in dist/, at different depths.
 */
export function packageRoot(from: string = import.meta.url): URL {
  let dir = new URL('.', from);
  for (;;) {
    if (existsSync(new URL('package.json', dir))) return dir;
    const up = new URL('..', dir);
    if (up.href === dir.href) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}
