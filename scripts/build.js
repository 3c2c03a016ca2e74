// `npm run build` (and `prepare`, so `npm install` and `npm ci` build too).
//
// - dist/cli/main.js: the command line and the server, bundled by esbuild from
//   src/ with code splitting (dist/chunks/), so each command loads a few files
//   instead of some four hundred. Dependencies stay in node_modules, except
//   Kysely: its ~280 modules took ~100 ms to load on every command.
// - dist/activity/report-worker.js: the report worker thread's module, an entry
//   point of its own (a worker thread loads it by path, not by import).
// - dist/client/index.js and dist/types/: the `steadfast/client` export and its
//   declarations (tsc).
// - dist/.built-at: bin/steadfast.js runs dist/ only while no file under src/
//   is newer than this stamp, and the sources through tsx otherwise.
//
// STEADFAST_BUILD_OUT=folder builds the JavaScript into another folder of the
// package instead, without the declarations: for tests of the built node
// (test/integration/built-node.test.ts) that must not replace dist/ under
// other tests running from it.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
let esbuild;
let tsc;
try {
  esbuild = await import('esbuild');
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  // An install without dev dependencies: the CLI runs the sources through tsx.
  process.stderr.write(
    'steadfast build: esbuild or typescript is not installed (dev dependencies); skipping. bin/steadfast.js runs the sources through tsx.\n',
  );
  process.exit(0);
}

const BUNDLED = new Set(['kysely']);
const { dependencies } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const external = Object.keys(dependencies).filter((name) => !BUNDLED.has(name));

const outdir = process.env.STEADFAST_BUILD_OUT ?? 'dist';
// A folder of the package itself, never a path out of it: the build empties it first.
if (!/^\.?\w[\w.-]*$/.test(outdir)) {
  process.stderr.write(`steadfast build: STEADFAST_BUILD_OUT must name a folder of the package (got ${JSON.stringify(outdir)})\n`);
  process.exit(1);
}
const elsewhere = outdir !== 'dist';
// A clean build: output of a removed source file must not linger in dist/.
rmSync(new URL(`../${outdir}`, import.meta.url), { recursive: true, force: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts', 'src/client/index.ts', 'src/activity/report-worker.ts'],
  outbase: 'src',
  outdir,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  external,
  logLevel: 'warning',
});
if (elsewhere) process.exit(0);
const types = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (types.status !== 0) process.exit(types.status ?? 1);
writeFileSync(new URL('../dist/.built-at', import.meta.url), new Date().toISOString() + '\n');
