import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { ManualClock } from '../../src/clock.ts';

const PASSWORD = 'correct horse battery staple';

/**
 * Every API route that names a resource is called with tenant B's credentials
 * and tenant A's resource ids, and must answer exactly as for an id that does
 * not exist: 404, with nothing that tells the two apart. The routes come from
 * the OpenAPI document, so a new route without a case here fails the suite.
 */
interface TenantWorld {
  slug: string;
  adminToken: string;
  /** An administrator's own session: what a token may not do (apps, the policy) is walked with it. */
  adminSession: string;
  userToken: string;
  userId: string;
  methodId: string;
  eventId: string;
  appId: string;
  appKey: string;
  flow: string;
  tokenId: string;
  incidentId: string;
}

const BODIES: Record<string, unknown> = {
  'POST /api/v1/t/{tenant}/signin/{flow}/challenge': { method: 'totp' },
  'POST /api/v1/t/{tenant}/signin/{flow}/verify': { method: 'totp', code: '123456' },
  'POST /api/v1/me/methods/{id}/confirm': { code: '123456' },
  'POST /api/v1/me/methods/{id}/resend': undefined,
  'PATCH /api/v1/me/methods/{id}': { label: 'taken over' },
  'DELETE /api/v1/me/methods/{id}': undefined,
  'POST /api/v1/me/signins/{id}/report': undefined,
  'GET /api/v1/admin/users/{id}': undefined,
  'PATCH /api/v1/admin/users/{id}': { email: 'intruder@example.test' },
  'DELETE /api/v1/admin/users/{id}': undefined,
  'POST /api/v1/admin/users/{id}/reset-methods': undefined,
  'POST /api/v1/admin/users/{id}/revoke-sessions': undefined,
  'POST /api/v1/admin/users/{id}/tap': { minutes: 60 },
  'DELETE /api/v1/admin/users/{id}/tap': undefined,
  'DELETE /api/v1/admin/apps/{id}': undefined,
  'DELETE /api/v1/admin/tokens/{id}': undefined,
  'GET /api/v1/app/auth/{txid}': undefined,
  'GET /api/v1/t/{tenant}/signin/{flow}/status': undefined,
  'PATCH /api/v1/admin/incidents/{id}': { text: 'Taken over' },
  'POST /api/v1/t/{tenant}/authenticator/requests/{id}': { device: 'no-such-device', decision: 'deny', time: 1, signature: 'x' },
};

for (const spec of backends) {
  describe.runIf(await spec.available())(`tenant isolation on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let a: TenantWorld;
    let b: TenantWorld;
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));

    /**
     * One tenant's world. Every step is asserted: a failed set-up (a null flow
     * id, a method never confirmed) would otherwise pass the walk below as a 404.
     */
    const world = async (slug: string): Promise<TenantWorld> => {
      const tenant = await server.services.tenants.create(slug);
      const { token: adminToken, id: tokenId } = await server.services.adminTokens.create(tenant.id, 'admin');
      // Made by the command line's actor: an account a token made is never made an administrator (one test does).
      const user = { status: 201, body: await server.services.admin.createUser(tenant, 'cli', { username: 'pat', password: PASSWORD }) };
      expect(user.status).toBe(201);
      const first = await api(server.url, 'POST', `/api/v1/t/${slug}/signin`, { username: 'pat', password: PASSWORD });
      expect(first.body.state).toBe('registration_required');
      const userToken = first.body.session.token as string;
      const totp = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, userToken);
      expect(totp.status).toBe(201);
      clock.advance(30_000);
      expect(
        (await api(server.url, 'POST', `/api/v1/me/methods/${totp.body.id}/confirm`, { code: totpCode(totp.body.secret, clock.now()) }, userToken)).status,
      ).toBe(200);
      const signins = await api(server.url, 'GET', '/api/v1/me/signins', undefined, userToken);
      expect(signins.body.items.length).toBeGreaterThan(0);
      const eventId = signins.body.items[0].id as string;
      const adminSession = await adminPersonSession(server.services, slug);
      const created = await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'App', kind: 'api' }, adminSession);
      expect(created.status).toBe(201);
      const appId = created.body.id as string;
      const appKey = created.body.apiKey as string;
      const start = await api(server.url, 'POST', `/api/v1/t/${slug}/signin`, { username: 'pat', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      const flow = start.body.flow as string;
      const incident = await api(
        server.url,
        'POST',
        '/api/v1/admin/incidents',
        { component: 'sms', title: 'Texts are slow', advice: 'Use your authenticator app' },
        adminSession,
      );
      expect(incident.status).toBe(201);
      const incidentId = incident.body.id as string;
      const ids = { userId: user.body.id, methodId: totp.body.id, eventId, appId, appKey, flow, tokenId, adminToken, adminSession, userToken, incidentId };
      for (const [name, value] of Object.entries(ids)) expect(value, name).toMatch(/^\S{8,}$/);
      // The flow is live: the walk's 404 for it from another tenant is the isolation's, not a dead flow's.
      expect((await api(server.url, 'POST', `/api/v1/t/${slug}/signin/${flow}/challenge`, { method: 'totp' })).status).toBe(200);
      return { slug, ...ids };
    };

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend, { clock });
      a = await world('alpha');
      b = await world('bravo');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    /** The path with tenant B in it and A's id, and with an id nobody has. */
    const fill = (template: string, ids: 'foreign' | 'unknown') => {
      const id = (kind: keyof TenantWorld) => (ids === 'foreign' ? a[kind] : '00000000-0000-4000-8000-000000000000');
      const byPlace = template.startsWith('/api/v1/admin/users')
        ? id('userId')
        : template.startsWith('/api/v1/admin/apps')
          ? id('appId')
          : template.startsWith('/api/v1/admin/tokens')
            ? id('tokenId')
            : template.startsWith('/api/v1/me/signins')
              ? id('eventId')
              : template.startsWith('/api/v1/admin/incidents')
                ? id('incidentId')
                : id('methodId');
      const flow = ids === 'foreign' ? a.flow : 'no-such-flow-aaaaaaaaaaaaaaaa';
      return template.replace('{tenant}', b.slug).replace('{flow}', flow).replace('{txid}', flow).replace('{id}', byPlace);
    };

    it("answers another tenant's ids exactly like ids that do not exist, on every route that names one", async () => {
      const openapi = (await api(server.url, 'GET', '/api/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
      const routes = Object.entries(openapi.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
      const named = routes.filter((r) => /\{(id|flow|txid)\}/.test(r));
      expect(named.sort()).toEqual(Object.keys(BODIES).sort());

      for (const route of named) {
        const [method, template] = route.split(' ') as [string, string];
        const token = /^\/api\/v1\/admin\/(apps|incidents)/.test(template)
          ? b.adminSession
          : template.startsWith('/api/v1/admin')
            ? b.adminToken
            : template.startsWith('/api/v1/me')
              ? b.userToken
              : template.startsWith('/api/v1/app')
                ? b.appKey
                : undefined;
        const foreign = await api(server.url, method, fill(template, 'foreign'), BODIES[route], token);
        const unknown = await api(server.url, method, fill(template, 'unknown'), BODIES[route], token);
        // The app status endpoint answers "expired" for anything it cannot see; the rest answer 404.
        expect(foreign.status, route).toBe(template.startsWith('/api/v1/app/auth/') ? 200 : 404);
        expect(foreign.body, route).toEqual(unknown.body);
      }

      // Nothing of A's changed: its user, method, app and sessions are all still there.
      const detail = await api(server.url, 'GET', `/api/v1/admin/users/${a.userId}`, undefined, a.adminToken);
      expect(detail.body).toMatchObject({ user: { email: null }, methods: [{ id: a.methodId, label: 'Authenticator app' }], accessPass: null });
      expect(detail.body.sessions.length).toBeGreaterThan(0);
      expect((await api(server.url, 'GET', '/api/v1/admin/apps', undefined, a.adminToken)).body.map((x: { id: string }) => x.id)).toEqual([a.appId]);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, a.userToken)).status).toBe(200);
    });

    it("keeps an administrator's console to their own tenant", async () => {
      // (An administrator is made by a person or the command line, never by a token.)
      const bravo = (await server.services.tenants.findBySlug('bravo'))!;
      await server.services.admin.updateUser(bravo, 'cli', b.userId, { admin: true });
      // The promotion ended Pat's sessions: the powers go to the next sign-in, with a second factor.
      b.userToken = (await server.services.sessions.create({ tenantId: bravo.id, userId: b.userId, scope: 'full', amr: ['pwd', 'otp', 'mfa'] })).token;
      const get = (path: string) => fetch(server.url + path, { headers: { cookie: `sf_session=${b.userToken}` }, redirect: 'manual' });
      expect((await get('/t/bravo/admin')).status).toBe(200);
      const foreign = await get(`/t/bravo/admin/users/${a.userId}`);
      const unknown = await get('/t/bravo/admin/users/00000000-0000-4000-8000-000000000000');
      expect(foreign.status).toBe(404);
      expect(await foreign.text()).toBe(await unknown.text());
      // The pages that ask before resetting or disabling show nothing of another tenant's user either.
      for (const action of ['reset-methods', 'disable']) {
        const asked = await get(`/t/bravo/admin/users/${a.userId}/${action}`);
        const unknownAsked = await get(`/t/bravo/admin/users/00000000-0000-4000-8000-000000000000/${action}`);
        expect(asked.status, action).toBe(404);
        expect(await asked.text()).toBe(await unknownAsked.text());
      }
      // Another tenant's console sends the visitor to that tenant's sign-in, as for anyone signed out.
      const other = await get('/t/alpha/admin');
      expect(other.status).toBe(303);
      expect(other.headers.get('location')).toBe('/t/alpha/signin?next=admin');
      expect((await get(`/t/alpha/admin/users/${a.userId}`)).headers.get('location')).toBe('/t/alpha/signin?next=admin');
    });

    it("never lists another tenant's users, sign-ins, audit entries or apps", async () => {
      const as = (path: string) => api(server.url, 'GET', path, undefined, b.adminToken);
      const users = (await as('/api/v1/admin/users')).body.items as { id: string; username: string }[];
      // Pat, and the administrator whose session made the app (adminPersonSession).
      expect(users.filter((u) => !u.username.startsWith('policy-admin-')).map((u) => u.id)).toEqual([b.userId]);
      expect(users).toHaveLength(2);
      const signins = (await as(`/api/v1/admin/signins?user=${a.userId}`)).body.items;
      expect(signins).toEqual([]);
      const all = (await as('/api/v1/admin/signins')).body.items as { userId: string }[];
      expect(all.every((e) => e.userId === b.userId)).toBe(true);
      const audit = (await as(`/api/v1/admin/audit?user=${a.userId}`)).body.items;
      expect(audit).toEqual([]);
      expect((await as('/api/v1/admin/apps')).body.map((x: { id: string }) => x.id)).toEqual([b.appId]);
      // The username is the same in both tenants; the session of one is not a session of the other.
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, b.userToken)).body).toMatchObject({ id: b.userId, tenant: 'bravo' });
    });
  });
}
