/**
 * The node as it ships: built by scripts/build.js into a folder of its own and
 * started from there, as `npm start` runs dist/. Tests run the sources through
 * vitest, so what only the build can break (a module a worker thread loads by
 * path, an asset found from a bundled chunk) is checked here. It found the
 * report worker missing from the build: every export from dist/ ended at once
 * with no rows.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { buildServices } from '../../src/server/services.ts';
import { freePort } from '../helpers/free-port.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
// Inside the package, so the build's imports find node_modules/ and package.json as dist/ does.
const OUT = `.test-build-${randomBytes(4).toString('hex')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-built-'));
const env = {
  ...(process.env as Record<string, string>),
  STEADFAST_DATA_DIR: dataDir,
  STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'),
  STEADFAST_LOG_LEVEL: 'warn',
};
const PASSWORD = 'built node password 1';

let node: ChildProcessWithoutNullStreams | undefined;
let url = '';
let adminToken = '';

beforeAll(async () => {
  const build = spawnSync(process.execPath, ['scripts/build.js'], { cwd: ROOT, env: { ...process.env, STEADFAST_BUILD_OUT: OUT }, encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);

  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create('built');
  await services.users.create(tenant.id, { username: 'ada', passwordHash: await services.hasher.hash(PASSWORD) });
  adminToken = (await services.adminTokens.create(tenant.id, 'admin')).token;
  await services.close();

  const port = await freePort();
  node = spawn(process.execPath, [join(ROOT, OUT, 'cli', 'main.js'), 'start'], { env: { ...env, PORT: String(port), HOST: '127.0.0.1' } });
  let err = '';
  node.stderr.on('data', (d: Buffer) => (err += d.toString()));
  node.stdout.resume();
  url = `http://127.0.0.1:${port}`;
  // Up when it answers ready; an exit first fails the start (the hook's timeout bounds one that never comes up).
  for (;;) {
    if (node.exitCode !== null) throw new Error(`the built node exited (${node.exitCode}) before it was up: ${err}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  if (node && node.exitCode === null) {
    const exited = new Promise((resolve) => node!.once('exit', resolve));
    node.kill('SIGTERM');
    await exited;
  }
  rmSync(join(ROOT, OUT), { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const signIn = (password: string) =>
  fetch(`${url}/api/v1/t/built/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'ada', password }),
  });

describe('the built node', () => {
  it('runs from the build, not the sources', () => {
    expect(node?.spawnargs.join(' ')).toContain(`${OUT}/cli/main.js`);
  });

  it('signs in, and exports the sign-in log as CSV and NDJSON from its report worker', async () => {
    expect((await signIn('not it')).status).toBe(401);
    expect((await signIn('not it either')).status).toBe(401);
    expect((await signIn(PASSWORD)).status).toBe(200);

    const csv = await fetch(`${url}/api/v1/admin/signins?format=csv`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(csv.status).toBe(200);
    const lines = (await csv.text()).trim().split('\n');
    // A header and one line per sign-in, newest first.
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/success/);
    expect(lines.slice(2).every((line) => /failure/.test(line))).toBe(true);

    const ndjson = await fetch(`${url}/api/v1/admin/signins?format=ndjson`, { headers: { authorization: `Bearer ${adminToken}` } });
    const items = (await ndjson.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { username: string });
    expect(items.map((i) => i.username)).toEqual(['ada', 'ada', 'ada']);
  });
});
