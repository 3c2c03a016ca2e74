import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresRedis, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { OidcApp } from '../helpers/oidc-app.ts';

const PASSWORD = 'correct horse battery staple';
const CALLBACK = 'http://127.0.0.1:1/callback';

/** Cookies as a browser would keep them across two hosts of one site (one load balancer name). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }
}

/**
 * An authorization code flow that hops between two nodes at every step: the
 * provider's interactions and codes are in Redis and its sessions and grants in
 * PostgreSQL, so any node can carry on what another started.
 */
describe.runIf(await postgresRedis.available())('OpenID Connect across two nodes (PostgreSQL + Redis)', () => {
  let backend: Backend;
  let a: TestServer;
  let b: TestServer;
  let wiki: OidcApp;
  let sessionToken = '';

  beforeAll(async () => {
    backend = await postgresRedis.create({ STEADFAST_PUBLIC_URL: 'https://id.example.test' });
    [a, b] = [await startTestServer(backend), await startTestServer(backend)];
    const tenant = await a.services.tenants.create('acme', 'Acme');
    const admin = (await a.services.adminTokens.create(tenant.id, 'admin')).token;
    wiki = await OidcApp.register({
      base: a.url,
      tenant: 'acme',
      adminSession: await adminPersonSession(a.services, 'acme'),
      name: 'Wiki',
      callback: CALLBACK,
    });
    await api(a.url, 'POST', '/api/v1/admin/users', { username: 'val', password: PASSWORD }, admin);
    const first = await api(a.url, 'POST', '/api/v1/t/acme/signin', { username: 'val', password: PASSWORD });
    const enrol = await api(b.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    await api(a.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(enrol.body.secret, Date.now()) }, first.body.session.token);
    sessionToken = first.body.session.token;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await backend?.cleanup();
  });

  it('starts on one node, signs in on the other, and redeems the code on either', async () => {
    const jar = new CookieJar();
    jar.set('__Host-sf_session', sessionToken);
    const get = async (base: string, path: string) => {
      const res = await fetch(base + path, { redirect: 'manual', headers: { cookie: jar.header() } });
      jar.take(res);
      return res;
    };
    const { path, verifier } = wiki.authorizationRequest({ scope: 'openid profile offline_access' });

    const start = await get(a.url, path);
    expect(start.status).toBe(303);
    const interaction = new URL(start.headers.get('location')!, a.url).pathname;
    const finished = await get(b.url, interaction);
    expect(finished.status).toBe(303);
    const resume = new URL(finished.headers.get('location')!, b.url).pathname;
    expect(resume).toMatch(/^\/t\/acme\/oidc\/auth\//);
    let done = await get(a.url, resume);
    expect(done.status).toBe(303);
    // prompt=consent: a second interaction (a first-party app's consent is given without a page), again across nodes.
    const consent = new URL(done.headers.get('location')!, a.url).pathname;
    expect(consent).toMatch(/^\/t\/acme\/oidc\/interaction\//);
    const consented = await get(b.url, consent);
    expect(consented.status).toBe(303);
    done = await get(a.url, new URL(consented.headers.get('location')!, b.url).pathname);
    expect(done.status).toBe(303);
    const callback = new URL(done.headers.get('location')!);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    expect(callback.searchParams.get('state')).toBe('st');

    const code = { code: callback.searchParams.get('code')!, verifier };
    const token = await wiki.at(b.url).redeem(code);
    expect(token.status).toBe(200);
    const tokens = token.body as { id_token: string; refresh_token: string; access_token: string };
    const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({
      iss: 'https://id.example.test/t/acme',
      aud: wiki.clientId,
      preferred_username: 'val',
      amr: ['pwd', 'otp', 'mfa'],
      acr: 'urn:steadfast:acr:mfa',
    });

    // The refresh token, stored in PostgreSQL, works at the other node.
    const refreshed = await wiki.refresh(tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    // A code is good once, at any node.
    const replay = await wiki.redeem(code);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
  });

  it("answers another tenant's client as unknown", async () => {
    await a.services.tenants.create('other');
    const res = await fetch(
      `${a.url}/t/other/oidc/auth?client_id=${wiki.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(CALLBACK)}`,
      {
        redirect: 'manual',
      },
    );
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('client is invalid');
  });
});
