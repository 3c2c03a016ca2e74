import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

for (const spec of backends) {
  describe.runIf(await spec.available())(`guessing limits on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 9, 0, 0));
    let secret = '';

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_TRUST_PROXY: 'true' });
      // Small limits so the test reaches them quickly; the shape is the production one.
      server = await startTestServer(backend, { clock, limits: { accountFailures: 8, accountSourceFailures: 3, sourceFailures: 20 } });
      const tenant = await server.services.tenants.create('limits');
      for (const name of ['victim', 'bystander', 'mfa']) {
        await server.services.users.create(tenant.id, { username: name, passwordHash: await server.services.hasher.hash(`${name} password`) });
      }
      const first = await signin('mfa', 'mfa password', '198.51.100.1');
      const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
      secret = enrol.body.secret;
      await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(secret, clock.now()) }, first.body.session.token);
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

    it('caps consecutive failures per account across sources, and the block ends by itself', async () => {
      const statuses = [];
      for (let i = 0; i < 10; i++) statuses.push((await signin('bystander', 'guess', `198.18.0.${i + 1}`)).status);
      expect(statuses.filter((s) => s === 401)).toHaveLength(8);
      expect(statuses.slice(8)).toEqual([429, 429]);
      // Unknown usernames are limited the same way: the limit is no oracle.
      const unknown = [];
      for (let i = 0; i < 10; i++) unknown.push((await signin('nobody-here', 'guess', `198.18.1.${i + 1}`)).status);
      expect(unknown).toEqual(statuses);
    });

    it('counts second-factor failures separately from password failures', async () => {
      const start = await signin('mfa', 'mfa password', '198.51.100.2');
      expect(start.body.state).toBe('factor_required');
      const wrong = await api(server.url, 'POST', `/api/v1/t/limits/signin/${start.body.flow}/verify`, { method: 'totp', code: '999999' === totpCode(secret, clock.now()) ? '000000' : '999999' });
      expect(wrong.status).toBe(401);
      expect(wrong.body.attemptsLeft).toBe(4);
    });
  });
}
