import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { routeTable } from '../../src/server/route-table.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer, type JsonResponse } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf } from '../helpers/page-client.ts';

const PASSWORD = 'correct horse battery staple';

/**
 * Scope walks (issue 20, item 3): every route the app serves, read from
 * Fastify's route table (so a route added later is walked too), is called
 * with each kind of credential that must not open it, and must be refused:
 *
 * - a registration-scoped session (a password or a pass, nothing else proved),
 *   of a user and of an administrator;
 * - a registration-scoped session whose factors say `mfa`: no sign-in makes
 *   one, but the scope alone must keep it out (a store written by another
 *   release, or a future path that gets the amr wrong);
 * - a remembered-browser session (a full session with no second factor proved);
 * - a signed-in user who is not an administrator;
 * - an app transaction id, in place of a session and of a sign-in flow.
 *
 * Each route belongs to exactly one area below; a route in none fails the
 * walk, so whoever adds one decides who may call it.
 */
type Kind = 'registration' | 'registration-admin' | 'registration-admin-mfa' | 'remembered-admin' | 'non-admin' | 'app-transaction';
const KINDS: Kind[] = ['registration', 'registration-admin', 'registration-admin-mfa', 'remembered-admin', 'non-admin', 'app-transaction'];
const REGISTRATION: Kind[] = ['registration', 'registration-admin', 'registration-admin-mfa'];

type Area = 'public' | 'flow' | 'me-api' | 'admin-api' | 'app-api' | 'my-pages' | 'console' | 'oidc-interaction';

/** Where a route belongs; undefined for a route nobody has placed yet. */
function areaOf(method: string, url: string): Area | undefined {
  if (url.includes(':flow') || ['/t/:tenant/signin/method', '/t/:tenant/signin/verify'].includes(url)) return 'flow';
  if (url.startsWith('/api/v1/admin/')) return 'admin-api';
  if (url.startsWith('/api/v1/me')) return 'me-api';
  if (url.startsWith('/api/v1/app/')) return 'app-api';
  if (url.startsWith('/t/:tenant/my/')) return 'my-pages';
  if (url === '/t/:tenant/admin' || url.startsWith('/t/:tenant/admin/')) return 'console';
  if (url === '/t/:tenant/oidc/auth' || url.startsWith('/t/:tenant/oidc/interaction/')) return 'oidc-interaction';
  const open = [
    'GET /assets/:name',
    'GET /',
    'GET /metrics',
    'GET /api/v1/openapi.json',
    'GET /healthz',
    'GET /api/v1/status',
    'GET /status',
    'GET /readyz',
    'POST /api/v1/t/:tenant/signin',
    'POST /api/v1/t/:tenant/signin/passkey',
    'GET /t/:tenant/signin',
    'POST /t/:tenant/signin',
    'GET /t/:tenant/signin/tap',
    'POST /t/:tenant/signin/tap',
    'POST /t/:tenant/signin/passkey',
    // Back to an app after a sign-in: a page that moves on, for this browser's own full session only.
    'GET /t/:tenant/signin/continue',
    'POST /t/:tenant/signout',
    'GET /t/:tenant/.well-known/openid-configuration',
    // The provider's own endpoints (token, userinfo, jwks...) take its tokens, never a session; oidc-access-ends.test.ts covers them.
    'GET /t/:tenant/oidc/*',
    'POST /t/:tenant/oidc/*',
    'OPTIONS /t/:tenant/oidc/*',
    // Status pages and their feeds: public by design.
    'GET /status/feed.atom',
    'GET /t/:tenant/status',
    'GET /t/:tenant/status/feed.atom',
    // The Steadfast Authenticator: its shell is public, and its API takes a device signature or a one-time
    // pairing token, never a session (push.test.ts covers forged, replayed and foreign ones).
    'GET /t/:tenant/authenticator',
    'GET /t/:tenant/authenticator/',
    'GET /t/:tenant/authenticator/manifest.webmanifest',
    'GET /t/:tenant/authenticator/sw.js',
    'GET /api/v1/t/:tenant/authenticator/config',
    'POST /api/v1/t/:tenant/authenticator/pair',
    'GET /api/v1/t/:tenant/authenticator/requests',
    'GET /api/v1/t/:tenant/authenticator/stream',
    'POST /api/v1/t/:tenant/authenticator/requests/:id',
    'PUT /api/v1/t/:tenant/authenticator/subscription',
  ];
  return open.includes(`${method} ${url}`) ? 'public' : undefined;
}

/**
 * What a registration session may do (session-scope.ts): look at its account,
 * add a method that proves itself and confirm it, and sign out. The sample
 * body of `POST /api/v1/me/methods` asks for recovery codes, which it may not
 * add first, so that route is walked too.
 */
const REGISTRATION_MAY = new Set([
  'GET /api/v1/me',
  'GET /api/v1/me/methods',
  'POST /api/v1/me/methods/webauthn/options',
  'POST /api/v1/me/methods/:id/confirm',
  'POST /api/v1/me/methods/:id/resend',
  'DELETE /api/v1/me/session',
  'GET /t/:tenant/my/security-info',
  'POST /t/:tenant/my/security-info/webauthn',
  'POST /t/:tenant/my/security-info/totp',
  'GET /t/:tenant/my/security-info/totp/:id',
  'POST /t/:tenant/my/security-info/totp/:id/confirm',
  'POST /t/:tenant/my/security-info/phone',
  'POST /t/:tenant/my/security-info/email',
  'POST /t/:tenant/my/security-info/codes/:id/confirm',
  'POST /t/:tenant/my/security-info/codes/:id/resend',
]);

/** What a remembered browser (no second factor proved in this sign-in) may not do of the user's own: change their methods. */
const REMEMBERED_MAY_NOT = new Set([
  'POST /api/v1/me/methods',
  'PATCH /api/v1/me/methods/:id',
  'DELETE /api/v1/me/methods/:id',
  'POST /t/:tenant/my/security-info/webauthn',
  'POST /t/:tenant/my/security-info/totp',
  'POST /t/:tenant/my/security-info/phone',
  'POST /t/:tenant/my/security-info/email',
  'POST /t/:tenant/my/security-info/recovery-codes',
  'POST /t/:tenant/my/security-info/methods/:id/rename',
  'POST /t/:tenant/my/security-info/methods/:id/default',
  'POST /t/:tenant/my/security-info/methods/:id/delete',
]);

function mustRefuse(kind: Kind, area: Area, route: string): boolean {
  switch (area) {
    case 'admin-api':
    case 'console':
    case 'app-api':
      return true;
    case 'me-api':
    case 'my-pages':
      if (kind === 'app-transaction') return true;
      if (REGISTRATION.includes(kind)) return !REGISTRATION_MAY.has(route);
      if (kind === 'remembered-admin') return REMEMBERED_MAY_NOT.has(route);
      return false;
    case 'flow':
      return kind === 'app-transaction';
    default:
      return false;
  }
}

/** Sample bodies: valid enough that a refusal is the scope's, not the schema's. */
const BODIES: Record<string, Record<string, unknown>> = {
  'POST /api/v1/t/:tenant/signin/:flow/challenge': { method: 'totp' },
  'POST /api/v1/t/:tenant/signin/:flow/verify': { method: 'totp', code: '123456' },
  'POST /api/v1/me/methods': { type: 'recovery-codes' },
  'POST /api/v1/me/methods/webauthn/options': { kind: 'passkey' },
  'POST /api/v1/me/password': { currentPassword: PASSWORD, newPassword: 'an entirely new passphrase' },
  'POST /api/v1/me/methods/:id/confirm': { code: '123456' },
  'PATCH /api/v1/me/methods/:id': { label: 'renamed' },
  'POST /api/v1/admin/users': { username: 'walker', password: PASSWORD },
  'PATCH /api/v1/admin/users/:id': { email: 'walker@example.test' },
  'POST /api/v1/admin/users/:id/tap': { minutes: 60 },
  'PUT /api/v1/admin/policy': { mfaRequired: true },
  'POST /api/v1/admin/policy/versions': { policy: { mfaRequired: true }, canaryPercent: 10, bakeSeconds: 60 },
  'POST /api/v1/admin/incidents': { component: 'sms', title: 'Text messages are slow', advice: 'Use your authenticator app' },
  // Confirmed, so the walk tries the removal itself, not only the way to its confirmation page.
  'POST /t/:tenant/my/security-info/methods/:id/delete': { confirm: 'yes' },
  'POST /api/v1/admin/apps': { name: 'Walked', kind: 'api' },
  'POST /api/v1/admin/tokens': { name: 'walked' },
  'POST /api/v1/app/preauth': { username: 'tara' },
  'POST /api/v1/app/auth': { username: 'tara', method: 'totp', code: '123456' },
  'POST /t/:tenant/signin/method': { method: 'totp' },
  'POST /t/:tenant/signin/verify': { method: 'totp', code: '123456' },
  'POST /t/:tenant/my/password': { currentPassword: PASSWORD, newPassword: 'an entirely new passphrase' },
  'POST /t/:tenant/my/security-info/methods/:id/rename': { label: 'renamed' },
  'POST /t/:tenant/my/security-info/webauthn': { kind: 'passkey', attestation: '{}' },
  'POST /t/:tenant/my/security-info/phone': { phone: '+447700900123' },
  'POST /t/:tenant/my/security-info/email': { email: 'walker@example.test' },
  'POST /t/:tenant/admin/users': { username: 'walker2', email: '' },
  'POST /t/:tenant/admin/users/:id/tap': { minutes: '60' },
  'POST /t/:tenant/admin/policy': { mfaRequired: 'on' },
  'POST /t/:tenant/admin/policy/history/rollback': { version: '1', reason: 'walked' },
};

interface Holder {
  kind: Kind;
  /** What the walk presents: a session token, or the app transaction's id. */
  token: string;
  /** The holder's own method (pending for a registration session), its own sign-in event, and a flow id to name. */
  methodId: string;
  eventId: string;
  flow: string;
}

for (const spec of backends) {
  describe.runIf(await spec.available())(`scope walks on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let tenant: Tenant;
    let adminToken = '';
    let targetId = '';
    const holders = new Map<Kind, Holder>();
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
    const admin = (method: string, path: string, body?: unknown) => api(server.url, method, path, body, adminToken);
    /** An administrator signed in with a second factor: the policy and apps are not a token's to change. */
    const person = async (method: string, path: string, body?: unknown) =>
      api(server.url, method, path, body, await adminPersonSession(server.services, 'acme'));

    /** A user made over the admin API; asserted, so a failed set-up cannot pass as a refusal. */
    const newUser = async (username: string, isAdmin: boolean) => {
      // An administrator is made by a person or the command line, never by a token.
      if (isAdmin) return (await server.services.admin.createUser(tenant, 'cli', { username, password: PASSWORD, admin: true })).id;
      const created = await admin('POST', '/api/v1/admin/users', { username, password: PASSWORD });
      expect(created.status).toBe(201);
      return created.body.id as string;
    };

    /** A registration session: the password proved, no method yet. */
    const registrationSession = async (username: string) => {
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('registration_required');
      expect(start.body.session.token).toMatch(/^sfs_reg\./);
      return start.body.session.token as string;
    };

    /** A user's authenticator app, added and confirmed with a registration session that becomes full; its id and secret. */
    const withTotp = async (username: string) => {
      const token = await registrationSession(username);
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      expect(added.status).toBe(201);
      clock.advance(30_000);
      expect(
        (await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token)).status,
      ).toBe(200);
      return { id: added.body.id as string, secret: added.body.secret as string, token };
    };

    const ownEvent = async (userId: string) => {
      const events = await admin('GET', `/api/v1/admin/signins?user=${userId}`);
      expect(events.status).toBe(200);
      expect(events.body.items.length).toBeGreaterThan(0);
      return events.body.items[0].id as string;
    };

    const openFlow = async (username: string) => {
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      expect(start.body.flow).toEqual(expect.any(String));
      return start.body.flow as string;
    };

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend, { clock });
      tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      expect((await person('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 })).status).toBe(200);
      targetId = await newUser('tara', false);
      const tara = await withTotp('tara');

      {
        // An administrator's browser remembered at a full sign-in, then the password alone the next day
        // (first: the day that passes would end the registration sessions made before it).
        const userId = await newUser('remi', true);
        const remi = await withTotp('remi');
        const browser = new PageClient(server.url);
        const start = await browser.post('/t/acme/signin', { username: 'remi', password: PASSWORD }, { from: '/t/acme/signin/tap' });
        const flow = flowOf(start);
        expect(flow).toEqual(expect.any(String));
        clock.advance(30_000);
        expect(
          (
            await browser.post(
              '/t/acme/signin/verify',
              { flow: flow!, method: 'totp', code: totpCode(remi.secret, clock.now()), remember: 'on' },
              { from: '/t/acme/signin/tap' },
            )
          ).status,
        ).toBe(303);
        expect(browser.cookies.get('sf_device')).toMatch(/^sfd_/);
        clock.advance(86_400_000);
        await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
        expect((await browser.post('/t/acme/signin', { username: 'remi', password: PASSWORD }, { from: '/t/acme/signin/tap' })).status).toBe(303);
        const token = browser.cookies.get('sf_session')!;
        const session = (await server.services.sessions.authenticate(token))!;
        expect(session).toMatchObject({ scope: 'full', amr: ['pwd'] });
        holders.set('remembered-admin', { kind: 'remembered-admin', token, methodId: remi.id, eventId: await ownEvent(userId), flow: await openFlow('tara') });
      }
      for (const [kind, username, isAdmin] of [
        ['registration', 'reggie', false],
        ['registration-admin', 'regina', true],
      ] as const) {
        const userId = await newUser(username, isAdmin);
        const token = await registrationSession(username);
        // A method it has begun adding: the :id of the walk is its own.
        const pending = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
        expect(pending.status).toBe(201);
        holders.set(kind, { kind, token, methodId: pending.body.id, eventId: await ownEvent(userId), flow: await openFlow('tara') });
      }
      {
        const userId = await newUser('regan', true);
        await registrationSession('regan');
        const { token } = await server.services.sessions.create({
          tenantId: tenant.id,
          userId,
          scope: 'register',
          amr: ['pwd', 'otp', 'mfa'],
          ip: '127.0.0.1',
          userAgent: undefined,
        });
        const pending = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
        expect(pending.status).toBe(201);
        holders.set('registration-admin-mfa', {
          kind: 'registration-admin-mfa',
          token,
          methodId: pending.body.id,
          eventId: await ownEvent(userId),
          flow: await openFlow('tara'),
        });
      }
      {
        const userId = await newUser('nora', false);
        const nora = await withTotp('nora');
        const flow = await openFlow('nora');
        clock.advance(30_000);
        const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'totp', code: totpCode(nora.secret, clock.now()) });
        expect(done.status).toBe(200);
        const token = done.body.session.token as string;
        expect((await server.services.sessions.authenticate(token))!.amr).toContain('mfa');
        holders.set('non-admin', { kind: 'non-admin', token, methodId: nora.id, eventId: await ownEvent(userId), flow: await openFlow('tara') });
      }
      {
        const app = await person('POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' });
        expect(app.status).toBe(201);
        const txid = await server.services.signin.startAppTransaction(tenant, app.body.id, (await server.services.users.get(tenant.id, targetId))!);
        expect(txid).toEqual(expect.any(String));
        holders.set('app-transaction', { kind: 'app-transaction', token: txid, methodId: tara.id, eventId: await ownEvent(targetId), flow: txid });
      }
      expect([...holders.keys()].sort()).toEqual([...KINDS].sort());
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    /** The URL of a route for a holder: its own ids, another user's for the admin routes. */
    const fill = (url: string, holder: Holder) => {
      const id =
        url.startsWith('/api/v1/admin/') || url.startsWith('/t/:tenant/admin/') ? targetId : url.includes('/signins/') ? holder.eventId : holder.methodId;
      return url
        .replace(':tenant', 'acme')
        .replace(':flow', holder.flow)
        .replace(':txid', holder.flow)
        .replace(':id', id)
        .replace(':uid', 'no-such-interaction');
    };

    /** Calls a route as a holder would: bearer token on the API, session cookie (and a CSRF field) on the pages. */
    const call = async (method: string, url: string, holder: Holder): Promise<{ status: number; location: string | null; text: string; type?: string }> => {
      const path = fill(url, holder);
      const body = BODIES[`${method} ${url}`];
      if (url.startsWith('/api/')) {
        const flowBody = url.includes(':flow') ? body : body;
        const res: JsonResponse = await api(server.url, method, path, method === 'GET' || method === 'DELETE' ? undefined : (flowBody ?? {}), holder.token);
        return { status: res.status, location: res.headers.get('location'), text: JSON.stringify(res.body), type: res.body?.type };
      }
      const browser = new PageClient(server.url);
      browser.cookies.set('sf_session', holder.token);
      const fields = Object.fromEntries(Object.entries(body ?? {}).map(([k, v]) => [k, String(v)]));
      if (url.startsWith('/t/:tenant/signin/')) fields.flow = holder.flow;
      // The second step's page names its flow in its address.
      const page = url.startsWith('/t/:tenant/signin/') ? `${path}?flow=${encodeURIComponent(holder.flow)}` : path;
      const res = method === 'GET' ? await browser.get(page) : await browser.post(path, fields, { from: '/t/acme/signin/tap' });
      return { status: res.status, location: res.location, text: res.text };
    };

    /** A refusal: not authenticated, not allowed, not found, or sent to sign in (again) or to finish registering. */
    const refused = (res: { status: number; location: string | null }) =>
      [401, 403, 404].includes(res.status) ||
      (res.status === 303 &&
        /\/signin(\?|$)|\/my\/security-info$/.test(
          new URL(res.location ?? '', server.url).pathname + new URL(res.location ?? '', server.url).search.slice(0, 1),
        ));

    it('places every route the app serves', () => {
      const routes = routeTable(server.app);
      expect(routes.length).toBeGreaterThan(50);
      const unplaced = routes.filter((r) => areaOf(r.method, r.url) === undefined).map((r) => `${r.method} ${r.url}`);
      expect(unplaced).toEqual([]);
    });

    for (const kind of KINDS) {
      it(`refuses ${kind} wherever it does not belong`, async () => {
        const holder = holders.get(kind)!;
        const wrong: string[] = [];
        let walked = 0;
        for (const { method, url } of routeTable(server.app)) {
          const route = `${method} ${url}`;
          const area = areaOf(method, url)!;
          if (!mustRefuse(kind, area, route)) continue;
          const res = await call(method, url, holder);
          walked++;
          if (res.status === 400) wrong.push(`${route}: 400 before any scope check (give it a sample body): ${res.text.slice(0, 200)}`);
          else if (!refused(res)) wrong.push(`${route}: ${res.status} ${res.location ?? ''}`);
        }
        expect(wrong).toEqual([]);
        expect(walked).toBeGreaterThan(10);
        // Walking did not end the holder's own session: each refusal was the route's, not a dead session's.
        if (kind !== 'app-transaction') expect(await server.services.sessions.authenticate(holder.token)).toBeDefined();
      });
    }

    it('gives an app no sign-in with a registration session', async () => {
      const app = await person('POST', '/api/v1/admin/apps', { name: 'Wiki', kind: 'oidc', redirectUris: ['https://wiki.example.test/cb'], firstParty: true });
      expect(app.status).toBe(201);
      for (const kind of REGISTRATION) {
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', holders.get(kind)!.token);
        const query = new URLSearchParams({
          client_id: app.body.clientId,
          response_type: 'code',
          scope: 'openid',
          redirect_uri: 'https://wiki.example.test/cb',
          code_challenge: 'x'.repeat(43),
          code_challenge_method: 'S256',
          state: 's',
        });
        let location = `/t/acme/oidc/auth?${query}`;
        for (let hop = 0; hop < 8; hop++) {
          const res = await browser.get(location);
          expect(res.headers.get('location') ?? '', kind).not.toContain('wiki.example.test/cb?code=');
          if (res.status !== 302 && res.status !== 303) break;
          const next = new URL(res.location!, server.url);
          if (next.origin !== new URL(server.url).origin) break;
          location = next.pathname + next.search;
        }
      }
    });

    it('ends a registration session 30 minutes after it began, by the injected clock', async () => {
      await newUser('late', false);
      const token = await registrationSession('late');
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, token)).status).toBe(200);
      clock.advance(29 * 60_000);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, token)).status).toBe(200);
      clock.advance(60_000);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, token)).status).toBe(401);
    });
  });
}
