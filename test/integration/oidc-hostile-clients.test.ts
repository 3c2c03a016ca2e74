import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { OidcApp, pkce } from '../helpers/oidc-app.ts';
import { signedInBrowser } from '../helpers/signed-in-browser.ts';
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
    let wiki: OidcApp;
    let spa: OidcApp;
    const clock = new ManualClock(Date.now());
    let meeting = new MeetingPoint(2);

    /** A user with password and authenticator app, signed in over the API in a fresh browser. */
    const signedIn = async (username: string) => (await signedInBrowser({ base: server.url, tenant: 'acme', adminToken, clock }, username, PASSWORD)).browser;

    /** A pushed authorization request of the public app, from one address. */
    const push = async (from: string, params: Record<string, string> = {}, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}/t/acme/oidc/request`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from, ...headers },
        body: new URLSearchParams({
          client_id: spa.clientId,
          response_type: 'code',
          scope: 'openid',
          redirect_uri: SPA_CALLBACK,
          code_challenge: pkce().challenge,
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
      wiki = await OidcApp.register({
        base: server.url,
        tenant: 'acme',
        adminSession: await adminPersonSession(server.services, 'acme'),
        name: 'Wiki',
        callback: CALLBACK,
      });
      spa = await OidcApp.register({
        base: server.url,
        tenant: 'acme',
        adminSession: await adminPersonSession(server.services, 'acme'),
        name: 'SPA',
        callback: SPA_CALLBACK,
        public: true,
      });
    });
    afterEach(() => meeting.restore());
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    /** The provider's model classes, the very ones serving the requests. */
    const models = async () => server.services.oidc.forTenant((await server.services.tenants.findBySlug('acme'))!);

    it('lets exactly one of two simultaneous redemptions of a code through, and revokes the grant', async () => {
      const code = await wiki.code(await signedIn('ana'));
      // Both requests have read the unused code before either marks it used.
      meeting = new MeetingPoint(2).holdCalls((await models()).AuthorizationCode, 'find');
      const answers = await Promise.all([wiki.redeem(code), wiki.redeem(code)]);
      meeting.restore();
      expect(meeting.met).toBe(1);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      const [won] = answers.filter((a) => a.status === 200);
      const [lost] = answers.filter((a) => a.status === 400);
      expect(lost!.body.error).toBe('invalid_grant');
      // A replay revokes what the code gave, as a sequential one does: the winner's tokens are dead too.
      expect((await wiki.refresh(won!.body.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await wiki.userinfo(won!.body.access_token!)).toBe(401);
    });

    it('lets exactly one of two simultaneous uses of a refresh token through, and revokes the grant', async () => {
      const first = await wiki.redeem(await wiki.code(await signedIn('ben')));
      expect(first.status).toBe(200);
      meeting = new MeetingPoint(2).holdCalls((await models()).RefreshToken, 'find');
      const answers = await Promise.all([wiki.refresh(first.body.refresh_token!), wiki.refresh(first.body.refresh_token!)]);
      meeting.restore();
      expect(meeting.met).toBe(1);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      const [won] = answers.filter((a) => a.status === 200);
      expect(answers.find((a) => a.status === 400)!.body.error).toBe('invalid_grant');
      expect((await wiki.refresh(won!.body.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await wiki.userinfo(won!.body.access_token!)).toBe(401);
    });

    it('still refuses a code redeemed a second time later, and revokes the grant', async () => {
      const code = await wiki.code(await signedIn('cleo'));
      const first = await wiki.redeem(code);
      expect(first.status).toBe(200);
      expect((await wiki.redeem(code)).body.error).toBe('invalid_grant');
      expect((await wiki.refresh(first.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it('limits pushed authorization requests of a public client per source, as the authorization endpoint', async () => {
      const from = '203.0.113.70';
      const statuses: number[] = [];
      for (let i = 0; i < 61; i++) statuses.push((await push(from)).status);
      expect(statuses.slice(0, 60)).toEqual(Array(60).fill(201));
      expect(statuses[60]).toBe(429);
      // The authorization endpoint shares the budget: starting one there is refused too.
      const auth = await fetch(`${server.url}/t/acme/oidc/auth?client_id=${spa.clientId}`, { headers: { 'x-forwarded-for': from }, redirect: 'manual' });
      expect(auth.status).toBe(429);
      // Another address is not held back.
      expect((await push('203.0.113.71')).status).toBe(201);
      // Credentials sent for a public client do not make it a confidential one: refused before anything is stored.
      const dressed = await push('203.0.113.70', {}, { authorization: `Basic ${Buffer.from(`${spa.clientId}:x`).toString('base64')}` });
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
