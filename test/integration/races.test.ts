import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { backends, postgresRedis, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { MeetingPoint } from '../helpers/meeting-point.ts';

const PASSWORD = 'correct horse battery staple';

/**
 * Single use under concurrency (issue 20, item 1): each secret that works once
 * is sent twice at the same moment, over HTTP, and exactly one request may
 * succeed. A meeting point holds both requests just before the line that
 * decides (after each has read what it will write), so the race is run every
 * time instead of depending on scheduling: with the store's atomic consume
 * one wins; with a check-then-write both would.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`races for single-use secrets on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let tenant: Tenant;
    let adminToken = '';
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
    const admin = (method: string, path: string, body?: unknown) => api(server.url, method, path, body, adminToken);

    /** A user with a password, an authenticator app and recovery codes; the app's secret and the codes. */
    const user = async (username: string) => {
      const created = await admin('POST', '/api/v1/admin/users', { username, password: PASSWORD });
      expect(created.status).toBe(201);
      const first = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(first.body.state).toBe('registration_required');
      const token = first.body.session.token as string;
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      expect(added.status).toBe(201);
      clock.advance(30_000);
      expect(
        (await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token)).status,
      ).toBe(200);
      const codes = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, token);
      expect(codes.status).toBe(201);
      expect(codes.body.codes).toHaveLength(10);
      return { id: created.body.id as string, secret: added.body.secret as string, codes: codes.body.codes as string[], token };
    };

    /** A password sign-in waiting for its second factor; the flow id. */
    const flowFor = async (username: string): Promise<string> => {
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      expect(start.body.flow).toEqual(expect.any(String));
      return start.body.flow as string;
    };

    const verify = (flow: string, body: Record<string, string>) => api(server.url, 'POST', `/api/v1/t/acme/signin/${flow}/verify`, body);

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend, { clock });
      tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    it('lets the same recovery code finish one of two sign-ins sent at once', async () => {
      const rose = await user('rose');
      const [one, two] = [await flowFor('rose'), await flowFor('rose')];
      // Both requests have found the unused code before either checks its hash and marks it used.
      const meet = new MeetingPoint(2).holdCalls(server.services.hasher, 'verify');
      try {
        const answers = await Promise.all([
          verify(one, { method: 'recovery-codes', code: rose.codes[0]! }),
          verify(two, { method: 'recovery-codes', code: rose.codes[0]! }),
        ]);
        expect(meet.met).toBe(1);
        expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
      } finally {
        meet.restore();
      }
      const methods = await api(server.url, 'GET', '/api/v1/me/methods', undefined, rose.token);
      expect(methods.body.find((m: { type: string }) => m.type === 'recovery-codes')).toMatchObject({ remaining: 9 });
    });

    it('lets a one-time Temporary Access Pass in once when it is typed as the password and as the second factor at once', async () => {
      const tia = await user('tia');
      const pass = await admin('POST', `/api/v1/admin/users/${tia.id}/tap`, { minutes: 60, oneTime: true });
      expect(pass.status).toBe(201);
      const flow = await flowFor('tia');
      const meet = new MeetingPoint(2).holdCalls(server.services.hasher, 'verify');
      try {
        const [asPassword, asSecondFactor] = await Promise.all([
          api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'tia', tap: pass.body.code }),
          verify(flow, { method: 'tap', code: pass.body.code }),
        ]);
        expect(meet.met).toBe(1);
        const wins = [asPassword.status === 200 && asPassword.body.session !== undefined, asSecondFactor.status === 200].filter(Boolean);
        expect(wins).toHaveLength(1);
        expect([asPassword.status, asSecondFactor.status]).toContain(401);
      } finally {
        meet.restore();
      }
      // The pass is used up: it is no longer offered, and nothing more gets in with it.
      expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'tia', tap: pass.body.code })).status).toBe(401);
      const uses = await server.services.audit.list(tenant.id, { limit: 10, action: 'tap.used', userId: tia.id });
      expect(uses).toHaveLength(1);
    });

    it('gives one session for two correct answers sent at once on one sign-in', async () => {
      const otto = await user('otto');
      const flow = await flowFor('otto');
      clock.advance(30_000);
      // Both requests load the flow together, so both are past their checks when they come to take it.
      const meet = new MeetingPoint(2).holdCalls(server.services.ephemeral, 'get', (key: string) => key === `flow:${flow}`);
      try {
        const answers = await Promise.all([
          verify(flow, { method: 'totp', code: totpCode(otto.secret, clock.now()) }),
          verify(flow, { method: 'recovery-codes', code: otto.codes[0]! }),
        ]);
        expect(meet.met).toBeGreaterThanOrEqual(1);
        expect(answers.map((a) => a.status).sort()).toEqual([200, 404]);
        expect(answers.find((a) => a.status === 404)!.body.type).toMatch(/\/flow-not-found$/);
      } finally {
        meet.restore();
      }
      const sessions = (await admin('GET', `/api/v1/admin/users/${otto.id}`)).body.sessions as { scope: string }[];
      // The registration session of set-up became full; the race added exactly one more.
      expect(sessions.filter((s) => s.scope === 'full')).toHaveLength(2);
    });
  });
}

describe.runIf(await postgresRedis.available())('the same authenticator code sent to two live nodes on postgres+redis', () => {
  let backend: Backend;
  let nodes: TestServer[] = [];
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));

  beforeAll(async () => {
    backend = await postgresRedis.create();
    nodes = [await startTestServer(backend, { clock }), await startTestServer(backend, { clock })];
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await backend?.cleanup();
  });

  it('lets one of them in', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const tenant = await a.services.tenants.create('acme', 'Acme');
    const adminToken = (await a.services.adminTokens.create(tenant.id, 'admin')).token;
    expect((await api(a.url, 'POST', '/api/v1/admin/users', { username: 'nina', password: PASSWORD }, adminToken)).status).toBe(201);
    const first = await api(b.url, 'POST', '/api/v1/t/acme/signin', { username: 'nina', password: PASSWORD });
    expect(first.body.state).toBe('registration_required');
    const added = await api(b.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    clock.advance(30_000);
    expect(
      (await api(a.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, first.body.session.token))
        .status,
    ).toBe(200);

    const flows: string[] = [];
    for (const node of [a, b]) {
      const start = await api(node.url, 'POST', '/api/v1/t/acme/signin', { username: 'nina', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      flows.push(start.body.flow as string);
    }
    clock.advance(30_000);
    const code = totpCode(added.body.secret, clock.now());
    // Each node has checked the code before either records its time step as used.
    const meet = new MeetingPoint(2).holdCalls(a.services.credentials, 'consumeStep').holdCalls(b.services.credentials, 'consumeStep');
    try {
      const answers = await Promise.all([
        api(a.url, 'POST', `/api/v1/t/acme/signin/${flows[0]}/verify`, { method: 'totp', code }),
        api(b.url, 'POST', `/api/v1/t/acme/signin/${flows[1]}/verify`, { method: 'totp', code }),
      ]);
      expect(meet.met).toBe(1);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
    } finally {
      meet.restore();
    }
  });
});
