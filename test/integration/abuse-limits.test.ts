import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf } from '../helpers/page-client.ts';

/**
 * The guessing limits reached for real, from outside: one source spraying,
 * many sources spraying one account (the NIST budget holds and the owner still
 * gets in), second-factor failures across many flows, and the tenant's own
 * lockout settings. Small limits so the tests reach them quickly; the shape is
 * the production one.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`guessing limits on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let tenant: Tenant;
    let adminToken = '';
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 9, 0, 0));
    const secrets = new Map<string, string>();
    const wrongCode = (secret: string) => (totpCode(secret, clock.now()) === '999999' ? '000000' : '999999');

    beforeAll(async () => {
      // One proxy in front: the client address is the last X-Forwarded-For entry.
      backend = await spec.create({ STEADFAST_TRUST_PROXY: '1' });
      server = await startTestServer(backend, { clock, limits: { accountFailures: 20, accountSourceFailures: 3, sourceFailures: 30 } });
      tenant = await server.services.tenants.create('limits');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      for (const name of ['victim', 'bystander', 'owner', 'mfa', 'held', 'tenantwide']) {
        await server.services.users.create(tenant.id, { username: name, passwordHash: await server.services.hasher.hash(`${name} password`) });
      }
      for (const name of ['owner', 'mfa', 'held']) {
        const first = await signin(name, `${name} password`, '198.51.100.1');
        const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
        secrets.set(name, enrol.body.secret);
        await api(
          server.url,
          'POST',
          `/api/v1/me/methods/${enrol.body.id}/confirm`,
          { code: totpCode(enrol.body.secret, clock.now()) },
          first.body.session.token,
        );
        // A complete sign-in from home: both factors are familiar there from now on.
        const again = await signin(name, `${name} password`, '198.51.100.1');
        clock.advance(30_000);
        expect((await verify(again.body.flow, totpCode(enrol.body.secret, clock.now()), '198.51.100.1')).status).toBe(200);
      }
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    function signin(username: string, password: string, ip: string) {
      return fetch(`${server.url}/api/v1/t/limits/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify({ username, password }),
      }).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.json() }));
    }

    function verify(flow: string, code: string, ip: string) {
      return fetch(`${server.url}/api/v1/t/limits/signin/${flow}/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify({ method: 'totp', code }),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    }

    it('slows one source guessing one account without touching the account elsewhere', async () => {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await signin('victim', 'guess', '203.0.113.7')).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      const refused = await signin('victim', 'victim password', '203.0.113.7');
      expect(refused.status).toBe(429);
      expect(Number(refused.retryAfter)).toBeGreaterThan(0);
      expect(refused.body.type).toMatch(/\/too-many-requests$/);
      // Refused attempts cost the account nothing: hammering on from the held-back source...
      for (let i = 0; i < 20; i++) expect((await signin('victim', 'guess', '203.0.113.7')).status).toBe(429);
      // ...leaves the real user, elsewhere, able to sign in.
      expect((await signin('victim', 'victim password', '192.0.2.50')).status).toBe(200);
    });

    it('stops one source spraying many usernames', async () => {
      const statuses = [];
      for (let i = 0; i < 34; i++) statuses.push((await signin(`sprayed-${i}`, 'Summer2026!', '203.0.113.99')).status);
      expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(30)).toEqual([429, 429, 429, 429]);
      // Even a real user's right password waits, from that source.
      expect((await signin('bystander', 'bystander password', '203.0.113.99')).status).toBe(429);
    });

    it('gives many sources together at most the account budget, and leaves the owner a way in', async () => {
      // 20 guesses per account (the NIST budget, scaled down): 16 for strangers, 2 each for familiar places and known browsers.
      const statuses = [];
      for (let i = 0; i < 30; i++) statuses.push((await signin('owner', 'guess', `198.18.0.${i + 1}`)).status);
      expect(statuses.filter((s) => s === 401)).toHaveLength(16);
      expect(statuses.slice(16).every((s) => s === 429)).toBe(true);
      // Unknown usernames are limited the same way: the limit is no oracle.
      const unknown = [];
      for (let i = 0; i < 30; i++) unknown.push((await signin('nobody-here', 'guess', `198.18.1.${i + 1}`)).status);
      expect(unknown).toEqual(statuses);
      // A stranger with the right password is refused too: the attacker cannot tell a right guess now.
      expect((await signin('owner', 'owner password', '198.18.2.1')).status).toBe(429);

      // The owner, from where they signed in before, gets in.
      const fromHome = await signin('owner', 'owner password', '198.51.100.1');
      expect(fromHome.body.state).toBe('factor_required');
      // And from a new place, in a browser that signed in before (its known-browser mark).
      const browser = new PageClient(server.url);
      const home = { 'x-forwarded-for': '198.51.100.1' };
      const first = await browser.post('/t/limits/signin', { username: 'owner', password: 'owner password' }, { from: '/t/limits/signin', headers: home });
      clock.advance(30_000);
      const done = await browser.post(
        '/t/limits/signin/verify',
        { flow: flowOf(first)!, method: 'totp', code: totpCode(secrets.get('owner')!, clock.now()) },
        { from: '/t/limits/signin/tap', headers: home },
      );
      expect(done.status).toBe(303);
      expect(browser.cookies.get('sf_known')).toMatch(/^sfb_/);
      const travelling = await browser.post(
        '/t/limits/signin',
        { username: 'owner', password: 'owner password' },
        { from: '/t/limits/signin/tap', headers: { 'x-forwarded-for': '203.0.113.200' } },
      );
      expect(flowOf(travelling)).toBeTruthy();
      // The mark names its account: on another account's sign-in it means nothing.
      const bystander = (await server.services.users.findByUsername(tenant.id, 'bystander'))!;
      expect(server.services.knownBrowsers.recognises(browser.cookies.get('sf_known'), tenant.id, bystander.id)).toBe(false);

      // A Temporary Access Pass gets in while the password is blocked, from anywhere.
      const owner = (await server.services.users.findByUsername(tenant.id, 'owner'))!;
      const tap = await api(server.url, 'POST', `/api/v1/admin/users/${owner.id}/tap`, { minutes: 60, oneTime: true }, adminToken);
      const byTap = await fetch(`${server.url}/api/v1/t/limits/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.18.9.9' },
        body: JSON.stringify({ username: 'owner', tap: tap.body.code }),
      });
      expect(byTap.status).toBe(200);

      // Strangers stay refused for a day from their first failure: no block that lifts and restarts the count.
      const blocked = await signin('owner', 'owner password', '198.18.4.1');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.retryAfter)).toBeGreaterThan(23 * 3600);
      expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(24 * 3600);

      // Someone sharing the owner's network spends that part (2 guesses), then waits the tenant's block time...
      const neighbour = [];
      for (let i = 0; i < 3; i++) neighbour.push((await signin('owner', 'guess', '198.51.100.1')).status);
      expect(neighbour).toEqual([401, 401, 429]);
      expect(Number((await signin('owner', 'owner password', '198.51.100.1')).retryAfter)).toBeLessThanOrEqual(60 * 60);
      // ...and the owner's own browser still gets in.
      const stillHome = await browser.post(
        '/t/limits/signin',
        { username: 'owner', password: 'owner password' },
        { from: '/t/limits/signin/tap', headers: { 'x-forwarded-for': '203.0.113.201' } },
      );
      expect(flowOf(stillHome)).toBeTruthy();
    });

    it('holds second factors across many new flows, counted apart from passwords', async () => {
      const secret = secrets.get('held')!;
      const results: number[] = [];
      // Each flow allows 5 wrong codes; the account's second-factor budget spans flows.
      for (let flowNo = 0; flowNo < 8 && !results.includes(429); flowNo++) {
        const start = await signin('held', 'held password', `198.19.${flowNo}.1`);
        expect(start.body.state).toBe('factor_required');
        for (let i = 0; i < 3; i++) results.push((await verify(start.body.flow, wrongCode(secret), `198.19.${flowNo}.1`)).status);
      }
      expect(results.filter((s) => s === 401)).toHaveLength(16);
      expect(results.at(-1)).toBe(429);
      // Passwords are still checked: the two counts are apart.
      const again = await signin('held', 'held password', '198.19.100.1');
      expect(again.body.state).toBe('factor_required');
      // The owner, where the second factor was proved before, still finishes.
      const home = await signin('held', 'held password', '198.51.100.1');
      clock.advance(30_000);
      expect((await verify(home.body.flow, totpCode(secret, clock.now()), '198.51.100.1')).status).toBe(200);
    });

    it("applies the tenant's own lockout settings", async () => {
      await api(
        server.url,
        'PUT',
        '/api/v1/admin/policy',
        { lockout: { accountFailures: 10, blockMinutes: 5 } },
        await adminPersonSession(server.services, 'limits'),
      );
      // The user signs in once from home.
      expect((await signin('tenantwide', 'tenantwide password', '198.51.100.9')).status).toBe(200);
      const statuses = [];
      for (let i = 0; i < 12; i++) statuses.push((await signin('tenantwide', 'guess', `198.20.0.${i + 1}`)).status);
      // 10 for the account: 8 for strangers, 1 each for familiar places and known browsers.
      expect(statuses.filter((s) => s === 401)).toHaveLength(8);
      expect((await signin('tenantwide', 'tenantwide password', '198.20.1.1')).status).toBe(429);
      // A familiar place's part blocks for the tenant's block time, not the node's hour.
      await signin('tenantwide', 'guess', '198.51.100.9');
      const home = await signin('tenantwide', 'tenantwide password', '198.51.100.9');
      expect(home.status).toBe(429);
      expect(Number(home.retryAfter)).toBeGreaterThan(4 * 60);
      expect(Number(home.retryAfter)).toBeLessThanOrEqual(5 * 60);
    });

    it("spends only the strangers' part when an app's key guesses codes, even from the owner's network", async () => {
      const appKey = (await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' }, await adminPersonSession(server.services, 'limits')))
        .body.apiKey as string;
      const guess = () =>
        fetch(`${server.url}/api/v1/app/auth`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${appKey}`, 'x-forwarded-for': '198.51.100.1' },
          body: JSON.stringify({ username: 'mfa', method: 'totp', code: wrongCode(secrets.get('mfa')!) }),
        }).then((r) => r.status);
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push(await guess());
      expect(statuses).toEqual([401, 401, 401, 429]); // the app's own back-off for this user, first
      // The owner at home finishes a sign-in: the app's guesses never touched the familiar parts.
      const home = await signin('mfa', 'mfa password', '198.51.100.1');
      clock.advance(30_000);
      expect((await verify(home.body.flow, totpCode(secrets.get('mfa')!, clock.now()), '198.51.100.1')).status).toBe(200);
    });

    it("voids a browser's mark once the owner's sessions are all ended", async () => {
      const owner = (await server.services.users.findByUsername(tenant.id, 'held'))!;
      const mark = server.services.knownBrowsers.issue(tenant.id, owner.id).token;
      expect(server.services.knownBrowsers.recognises(mark, tenant.id, owner.id, owner.knownBrowsersResetAt)).toBe(true);
      clock.advance(1000);
      await server.services.sessions.revokeAllForUser(tenant.id, owner.id);
      const after = (await server.services.users.get(tenant.id, owner.id))!;
      expect(server.services.knownBrowsers.recognises(mark, tenant.id, owner.id, after.knownBrowsersResetAt)).toBe(false);
    });

    it('counts second-factor failures in the flow too', async () => {
      const start = await signin('mfa', 'mfa password', '198.51.100.2');
      expect(start.body.state).toBe('factor_required');
      const wrong = await api(server.url, 'POST', `/api/v1/t/limits/signin/${start.body.flow}/verify`, {
        method: 'totp',
        code: wrongCode(secrets.get('mfa')!),
      });
      expect(wrong.status).toBe(401);
      expect(wrong.body.attemptsLeft).toBe(4);
    });
  });
}
