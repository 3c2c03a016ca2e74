import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { ConfigSecrets } from '../../src/config/config-secrets.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;

function steadfast(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
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
  let clientId = '';
  let clientSecret = '';
  let signingKids: string[] = [];
  let vapidPublicKey = '';

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
    // Two versions of the node settings, each with a provider token sealed under the old key.
    for (const [name, token] of [
      ['gateway-one', 'first-provider-token-0123456789'],
      ['gateway-two', 'second-provider-token-0123456789'],
    ])
      await server.services.rollouts.applyNode(
        { delivery: { sms: [{ name, type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: token }] } },
        { actor: 'cli' },
      );
    // The other sealed secrets: an OIDC app's client secret, the tenant's ID token signing key, the Web Push key.
    const made = await server.services.apps.create(tenant.id, { name: 'Wiki', kind: 'oidc', redirectUris: ['https://wiki.example.test/cb'] });
    clientId = made.app.clientId!;
    clientSecret = made.clientSecret!;
    await server.services.signingKeys.rotate(tenant.id);
    signingKids = (await server.services.signingKeys.forTenant(tenant.id)).map((k) => k.kid);
    expect(signingKids).toHaveLength(1);
    vapidPublicKey = (await api(server.url, 'GET', '/api/v1/t/rot/authenticator/config')).body.vapidPublicKey;
    expect(vapidPublicKey).toEqual(expect.any(String));
    await server.close();
  });
  afterAll(async () => {
    await server?.close().catch(() => {});
    await backend?.cleanup();
  });

  it('rewraps every secret under the new key, after which the old key can go', async () => {
    const rewrap = await steadfast(['keys', 'rewrap'], { ...env, STEADFAST_MASTER_KEY: newKey, STEADFAST_PREVIOUS_MASTER_KEYS: oldKey });
    expect(rewrap.code).toBe(0);
    expect(JSON.parse(rewrap.stdout)).toMatchObject({ examined: 4, rewrapped: 4, contacts: 1, configVersions: { examined: 2, rewrapped: 2 } });
    const again = await steadfast(['keys', 'rewrap'], { ...env, STEADFAST_MASTER_KEY: newKey, STEADFAST_PREVIOUS_MASTER_KEYS: oldKey });
    expect(JSON.parse(again.stdout)).toMatchObject({ examined: 4, rewrapped: 0, contacts: 0, configVersions: { examined: 2, rewrapped: 0 } });

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
    // The app's client secret, the signing key and the Web Push key open under the new key alone.
    expect((await server.services.apps.findClient(clientId))?.clientSecret).toBe(clientSecret);
    expect((await server.services.signingKeys.forTenant(tenant.id)).map((k) => k.kid)).toEqual(signingKids);
    expect((await api(server.url, 'GET', '/api/v1/t/rot/authenticator/config')).body.vapidPublicKey).toBe(vapidPublicKey);
    expect(await server.services.users.search(tenant.id, 'rory@EXAMPLE.test', 10)).toMatchObject([
      { username: 'rory', email: 'Rory@example.test', phone: '+447700900123' },
    ]);

    // The stored configuration versions open under the new key alone: the node runs the last good one...
    expect(server.services.runtime.versions.stable).toBe(2);
    expect(server.services.delivery.health().sms?.providers.map((p) => p.name)).toEqual(['gateway-two']);
    const secrets = new ConfigSecrets(server.services.keyRing);
    const opened = (version: number) => server.services.configVersions.raw('node', version).then((row) => secrets.open(JSON.parse(row!.document)));
    expect(JSON.stringify(await opened(2))).toContain('second-provider-token-0123456789');
    // ...and the older one a rollback returns to opens as well, its token intact.
    expect(JSON.stringify(await opened(1))).toContain('first-provider-token-0123456789');
    const back = await server.services.rollouts.rollback('node', { version: 1, actor: 'cli', reason: 'after the rotation' });
    await server.services.guard.tick();
    expect(server.services.runtime.versions.stable).toBe(back.version);
    expect(server.services.delivery.health().sms?.providers.map((p) => p.name)).toEqual(['gateway-one']);
  });
});
