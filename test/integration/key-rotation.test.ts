import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;

function steadfast(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Rotation: new key first, old key kept for reading, `steadfast keys rewrap`, old key gone, TOTP still works. */
describe('master key rotation', () => {
  let backend: Backend;
  let server: TestServer;
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  let secret = '';
  let env: Record<string, string> = {};

  beforeAll(async () => {
    backend = await sqliteMemory.create({ STEADFAST_MASTER_KEY: oldKey });
    env = { STEADFAST_DATA_DIR: backend.config.dataDir, STEADFAST_LOG_LEVEL: 'silent' };
    server = await startTestServer(backend);
    const tenant = await server.services.tenants.create('rot');
    await server.services.users.create(tenant.id, {
      username: 'rory',
      email: 'Rory@example.test',
      phone: '+447700900123',
      passwordHash: await server.services.hasher.hash('rory password 1'),
    });
    const first = await api(server.url, 'POST', '/api/v1/t/rot/signin', { username: 'rory', password: 'rory password 1' });
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    secret = enrol.body.secret;
    await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(secret, Date.now()) }, first.body.session.token);
    await server.close();
  });
  afterAll(async () => {
    await server?.close().catch(() => {});
    await backend?.cleanup();
  });

  it('rewraps every secret under the new key, after which the old key can go', async () => {
    const rewrap = await steadfast(['keys', 'rewrap'], { ...env, STEADFAST_MASTER_KEY: newKey, STEADFAST_PREVIOUS_MASTER_KEYS: oldKey });
    expect(rewrap.code).toBe(0);
    expect(JSON.parse(rewrap.stdout)).toMatchObject({ examined: 1, rewrapped: 1, contacts: 1 });
    const again = await steadfast(['keys', 'rewrap'], { ...env, STEADFAST_MASTER_KEY: newKey, STEADFAST_PREVIOUS_MASTER_KEYS: oldKey });
    expect(JSON.parse(again.stdout)).toMatchObject({ examined: 1, rewrapped: 0, contacts: 0 });

    // Only the new key now: the TOTP secret still opens and verifies.
    server = await startTestServer({ ...backend, config: loadConfig({ ...env, STEADFAST_MASTER_KEY: newKey, PORT: '0' }) });
    const start = await api(server.url, 'POST', '/api/v1/t/rot/signin', { username: 'rory', password: 'rory password 1' });
    const verify = await api(server.url, 'POST', `/api/v1/t/rot/signin/${start.body.flow}/verify`, {
      method: 'totp',
      code: totpCode(secret, Date.now() + 30_000),
    });
    expect(verify.status).toBe(200);
    // Contact details open under the new key, and the exact address still finds the user.
    const tenant = (await server.services.tenants.findBySlug('rot'))!;
    expect(await server.services.users.search(tenant.id, 'rory@EXAMPLE.test', 10)).toMatchObject([
      { username: 'rory', email: 'Rory@example.test', phone: '+447700900123' },
    ]);
  });
});
