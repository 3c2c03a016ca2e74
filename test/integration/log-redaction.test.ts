import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { containsSecret } from '../helpers/contains-secret.ts';

/**
 * Signs in, enrols, verifies and fails in every way, with debug logging on,
 * then greps everything the server logged for every secret it was handed or
 * gave out.
 */
describe('logs never contain passwords, secrets, codes, tokens or flow ids', () => {
  let backend: Backend;
  let server: TestServer;
  const secrets: string[] = [];
  const PASSWORD = 'Tr0ub4dor&3-very-secret';

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend, { logLevel: 'trace' });
    const tenant = await server.services.tenants.create('logs');
    await server.services.users.create(tenant.id, { username: 'lena', passwordHash: await server.services.hasher.hash(PASSWORD) });
    secrets.push(PASSWORD);
  });
  afterAll(async () => {
    await server.close();
    await backend.cleanup();
  });

  it('walks the whole flow', async () => {
    await api(server.url, 'POST', '/api/v1/t/logs/signin', { username: 'lena', password: 'wrong-password-xyz' });
    secrets.push('wrong-password-xyz');
    const first = await api(server.url, 'POST', '/api/v1/t/logs/signin', { username: 'lena', password: PASSWORD });
    const restricted = first.body.session.token;
    secrets.push(restricted);
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, restricted);
    secrets.push(enrol.body.secret);
    const code = totpCode(enrol.body.secret, Date.now());
    await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code }, restricted);
    secrets.push(code);
    const rc = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, restricted);
    secrets.push(...rc.body.codes);

    const start = await api(server.url, 'POST', '/api/v1/t/logs/signin', { username: 'lena', password: PASSWORD });
    secrets.push(start.body.flow);
    await api(server.url, 'POST', `/api/v1/t/logs/signin/${start.body.flow}/verify`, { method: 'totp', code: '123456' });
    const done = await api(server.url, 'POST', `/api/v1/t/logs/signin/${start.body.flow}/verify`, { method: 'recovery-codes', code: rc.body.codes[0] });
    secrets.push(done.body.session.token);
    await api(server.url, 'GET', '/api/v1/me', undefined, done.body.session.token);
    // Malformed input that echoes nothing back either.
    await fetch(`${server.url}/api/v1/t/logs/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"username":"lena","password":"${PASSWORD}"`,
    });

    // Administration and apps: an admin token, a TAP used both ways, app keys and client secrets.
    const tenant = (await server.services.tenants.findBySlug('logs'))!;
    const admin = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    secrets.push(admin);
    const user = await api(server.url, 'POST', '/api/v1/admin/users', { username: 'nils', password: 'nils-secret-password' }, admin);
    secrets.push('nils-secret-password');
    const tap = await api(server.url, 'POST', `/api/v1/admin/users/${user.body.id}/tap`, { minutes: 30, oneTime: false }, admin);
    secrets.push(tap.body.code, tap.body.code.replace(/-/g, ''));
    const byTap = await api(server.url, 'POST', '/api/v1/t/logs/signin', { username: 'nils', tap: tap.body.code });
    secrets.push(byTap.body.session.token);
    // Apps are a person's to make: an administrator's session, not the admin token.
    const person = await adminPersonSession(server.services, 'logs');
    secrets.push(person);
    const oidcApp = await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'Wiki', kind: 'oidc', redirectUris: ['https://wiki.example.test/cb'] }, person);
    const apiApp = await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' }, person);
    secrets.push(oidcApp.body.clientSecret, apiApp.body.apiKey);
    await api(server.url, 'POST', '/api/v1/app/auth', { username: 'lena', method: 'recovery-codes', code: rc.body.codes[1] }, apiApp.body.apiKey);
    const basic = Buffer.from(`${oidcApp.body.clientId}:${oidcApp.body.clientSecret}`).toString('base64');
    await fetch(`${server.url}/t/logs/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: 'grant_type=authorization_code&code=made-up-code-123456&redirect_uri=https%3A%2F%2Fwiki.example.test%2Fcb',
    });
    secrets.push(basic);

    expect(done.status).toBe(200);
    const logs = server.logs.text;
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThanOrEqual(6);
      expect(containsSecret(logs, secret), `a secret reached the logs`).toBe(false);
    }
    // Nor the hashes or sealed values that stand for them.
    expect(logs).not.toMatch(/\$argon2id\$/);
    expect(logs).not.toMatch(/v1\.[0-9a-f]{12}\./);
  });
});
