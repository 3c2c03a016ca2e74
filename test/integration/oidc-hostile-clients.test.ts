import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient } from '../helpers/page-client.ts';
import { MeetingPoint } from '../helpers/meeting-point.ts';

const PASSWORD = 'correct horse battery staple';
const CALLBACK = 'https://wiki.example.test/callback';
const SPA_CALLBACK = 'https://spa.example.test/callback';

/**
 * What an app (or someone holding its client id) can do to the OpenID Connect
 * provider on purpose (an outside attack run, findings F3 and F7): redeem one
 * authorization code or refresh token twice by sending both requests at the
 * same moment, and fill the store with pushed authorization requests.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`OpenID Connect against hostile clients on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let adminToken = '';
    let clientId = '';
    let clientSecret = '';
    let publicClientId = '';
    const clock = new ManualClock(Date.now());
    let meeting = new MeetingPoint(2);
    const basic = () => `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

    /** A user with password and authenticator app, signed in over the API in a fresh browser. */
    const signedInBrowser = async (username: string) => {
      await api(server.url, 'POST', '/api/v1/admin/users', { username, password: PASSWORD }, adminToken);
      const first = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
      clock.advance(30_000);
      await api(
        server.url,
        'POST',
        `/api/v1/me/methods/${added.body.id}/confirm`,
        { code: totpCode(added.body.secret, clock.now()) },
        first.body.session.token,
      );
      const browser = new PageClient(server.url);
      browser.cookies.set('sf_session', first.body.session.token);
      return browser;
    };

    /** The authorization code flow through the browser, up to the code at the app's callback. */
    const codeFor = async (browser: PageClient) => {
      const verifier = randomBytes(32).toString('base64url');
      const query = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid offline_access',
        prompt: 'consent',
        redirect_uri: CALLBACK,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        state: 'st',
      });
      let location = `/t/acme/oidc/auth?${query}`;
      for (let hop = 0; hop < 8; hop++) {
        const res = await browser.get(location);
        expect([302, 303]).toContain(res.status);
        const next = new URL(res.location!, server.url);
        if (next.href.startsWith(CALLBACK)) return { code: next.searchParams.get('code')!, verifier };
        location = next.pathname + next.search;
      }
      throw new Error('too many redirects');
    };

    const token = async (body: Record<string, string>) => {
      const res = await fetch(`${server.url}/t/acme/oidc/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
        body: new URLSearchParams(body).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const redeem = (c: { code: string; verifier: string }) =>
      token({ grant_type: 'authorization_code', code: c.code, redirect_uri: CALLBACK, code_verifier: c.verifier });
    const refresh = (refreshToken: string) => token({ grant_type: 'refresh_token', refresh_token: refreshToken });
    const userinfo = async (accessToken: string) =>
      (await fetch(`${server.url}/t/acme/oidc/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

    /** A pushed authorization request of the public app, from one address. */
    const push = async (from: string, params: Record<string, string> = {}, headers: Record<string, string> = {}) => {
      const verifier = randomBytes(32).toString('base64url');
      const res = await fetch(`${server.url}/t/acme/oidc/request`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from, ...headers },
        body: new URLSearchParams({
          client_id: publicClientId,
          response_type: 'code',
          scope: 'openid',
          redirect_uri: SPA_CALLBACK,
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
          ...params,
        }).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_PUBLIC_URL: 'http://id.example.test', STEADFAST_TRUST_PROXY: '1' });
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      const app = await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'Wiki', kind: 'oidc', redirectUris: [CALLBACK], firstParty: true }, adminToken);
      ({ clientId, clientSecret } = app.body);
      const spa = await api(
        server.url,
        'POST',
        '/api/v1/admin/apps',
        { name: 'SPA', kind: 'oidc', redirectUris: [SPA_CALLBACK], firstParty: true, public: true },
        adminToken,
      );
      publicClientId = spa.body.clientId;
    });
    afterEach(() => meeting.restore());
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    /** The provider's model classes, the very ones serving the requests. */
    const models = async () => server.services.oidc.forTenant((await server.services.tenants.findBySlug('acme'))!);

    it('lets exactly one of two simultaneous redemptions of a code through, and revokes the grant', async () => {
      const code = await codeFor(await signedInBrowser('ana'));
      // Both requests have read the unused code before either marks it used.
      meeting = new MeetingPoint(2).holdCalls((await models()).AuthorizationCode, 'find');
      const answers = await Promise.all([redeem(code), redeem(code)]);
      meeting.restore();
      expect(meeting.met).toBe(1);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      const [won] = answers.filter((a) => a.status === 200);
      const [lost] = answers.filter((a) => a.status === 400);
      expect(lost!.body.error).toBe('invalid_grant');
      // A replay revokes what the code gave, as a sequential one does: the winner's tokens are dead too.
      expect((await refresh(won!.body.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await userinfo(won!.body.access_token!)).toBe(401);
    });

    it('lets exactly one of two simultaneous uses of a refresh token through, and revokes the grant', async () => {
      const first = await redeem(await codeFor(await signedInBrowser('ben')));
      expect(first.status).toBe(200);
      meeting = new MeetingPoint(2).holdCalls((await models()).RefreshToken, 'find');
      const answers = await Promise.all([refresh(first.body.refresh_token!), refresh(first.body.refresh_token!)]);
      meeting.restore();
      expect(meeting.met).toBe(1);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      const [won] = answers.filter((a) => a.status === 200);
      expect(answers.find((a) => a.status === 400)!.body.error).toBe('invalid_grant');
      expect((await refresh(won!.body.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await userinfo(won!.body.access_token!)).toBe(401);
    });

    it('still refuses a code redeemed a second time later, and revokes the grant', async () => {
      const code = await codeFor(await signedInBrowser('cleo'));
      const first = await redeem(code);
      expect(first.status).toBe(200);
      expect((await redeem(code)).body.error).toBe('invalid_grant');
      expect((await refresh(first.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it('limits pushed authorization requests of a public client per source, as the authorization endpoint', async () => {
      const from = '203.0.113.70';
      const statuses: number[] = [];
      for (let i = 0; i < 61; i++) statuses.push((await push(from)).status);
      expect(statuses.slice(0, 60)).toEqual(Array(60).fill(201));
      expect(statuses[60]).toBe(429);
      // The authorization endpoint shares the budget: starting one there is refused too.
      const auth = await fetch(`${server.url}/t/acme/oidc/auth?client_id=${publicClientId}`, { headers: { 'x-forwarded-for': from }, redirect: 'manual' });
      expect(auth.status).toBe(429);
      // Another address is not held back.
      expect((await push('203.0.113.71')).status).toBe(201);
      // Credentials sent for a public client do not make it a confidential one: refused before anything is stored.
      const dressed = await push('203.0.113.70', {}, { authorization: `Basic ${Buffer.from(`${publicClientId}:x`).toString('base64')}` });
      expect(dressed.status).toBe(401);
      expect(dressed.body.error).toBe('invalid_client');
    });

    it('refuses oversized free-text parameters in a pushed authorization request with an OIDC error', async () => {
      const from = '203.0.113.72';
      expect((await push(from, { state: 's'.repeat(2048) })).status).toBe(201);
      for (const name of ['state', 'nonce', 'login_hint', 'ui_locales', 'acr_values', 'display']) {
        const res = await push(from, { [name]: 'x'.repeat(40_000) });
        expect(res.status, name).toBe(400);
        expect(res.body.error).toBe('invalid_request');
        expect(res.body.error_description).toContain(name);
      }
    });
  });
}
