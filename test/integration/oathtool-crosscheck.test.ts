import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';

const hasOathtool = (() => {
  try {
    execFileSync('oathtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.STEADFAST_REQUIRE_SERVICES === '1') throw new Error('oathtool is required in CI (apt-get install oathtool)');
    return false;
  }
})();

/** oathtool is an independent RFC 6238 implementation: what it computes from our secret must be accepted. */
describe.runIf(hasOathtool)('TOTP enrolment cross-checked with oathtool', () => {
  let backend: Backend;
  let server: TestServer;
  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend);
    const tenant = await server.services.tenants.create('oath', 'Oath');
    await server.services.users.create(tenant.id, { username: 'olga', passwordHash: await server.services.hasher.hash('olga password') });
  });
  afterAll(async () => {
    await server.close();
    await backend.cleanup();
  });

  it('confirms enrolment and signs in with codes oathtool computes from the otpauth URI', async () => {
    const start = await api(server.url, 'POST', '/api/v1/t/oath/signin', { username: 'olga', password: 'olga password' });
    const token = start.body.session.token;
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
    const uri = new URL(enrol.body.otpauthUri);
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(uri.searchParams.get('issuer')).toBe('Oath');
    const secret = uri.searchParams.get('secret')!;
    expect(secret).toBe(enrol.body.secret);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    const now = Date.now();
    const code = execFileSync('oathtool', ['--totp', '-b', `--now=@${Math.floor(now / 1000)}`, secret], { encoding: 'utf8' }).trim();
    const confirm = await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code }, token);
    expect(confirm.body).toMatchObject({ state: 'active' });

    // The next step's code (oathtool computes it 30 s ahead) is inside the ±1 window and is a new step.
    const next = execFileSync('oathtool', ['--totp', '-b', `--now=@${Math.floor(now / 1000) + 30}`, secret], { encoding: 'utf8' }).trim();
    const flow = await api(server.url, 'POST', '/api/v1/t/oath/signin', { username: 'olga', password: 'olga password' });
    const verify = await api(server.url, 'POST', `/api/v1/t/oath/signin/${flow.body.flow}/verify`, { method: 'totp', code: next });
    expect(verify.status).toBe(200);
  });
});
