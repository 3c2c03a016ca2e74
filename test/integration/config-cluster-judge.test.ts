import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { ManualClock } from '../../src/clock.ts';
import { CanarySlicer } from '../../src/config/canary-slice.ts';
import { GUARD_INTERVAL_MS } from '../../src/config/canary-guard.ts';

const PASSWORD = 'correct horse battery staple';
const USERS = 40;
const CANARY = 20;

interface Person {
  username: string;
  ip: string;
}

/**
 * A canary judged on the whole cluster's figures. Two nodes on the same
 * stores; the load balancer happens to send every client of the policy
 * canary to node A, where their sign-ins fail (the canary policy allows only
 * a method nobody has), and everyone else to node B. Node B served no canary
 * traffic at all: judging only its own figures it would see nothing wrong
 * and promote the version at the end of its bake. Judging the counts every
 * node publishes, it rolls the version back; node A then finds it decided.
 * One rollback, one audit entry, one incident, and both nodes back on the
 * last good policy.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`a canary judged across two nodes on ${spec.name}`, () => {
    let backend: Backend;
    let a: TestServer;
    let b: TestServer;
    let tenantId = '';
    const clock = new ManualClock(Date.UTC(2026, 6, 1, 9));
    const people: Person[] = [];

    const call = async (node: TestServer, method: string, path: string, who: Person | undefined, body?: unknown, token?: string) => {
      const headers: Record<string, string> = {};
      if (who) headers['x-forwarded-for'] = who.ip;
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(node.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    /** The password step: `factor_required` for a user the policy lets in, something else when it does not. */
    const start = (node: TestServer, p: Person) => call(node, 'POST', '/api/v1/t/acme/signin', p, { username: p.username, password: PASSWORD });
    const inCanary = (p: Person) => CanarySlicer.inCanary(a.services.runtime.bucketFor('acme', p.ip), CANARY);
    const rollbacks = async () => (await a.services.audit.list(tenantId, { limit: 50, action: 'config.rolled-back' })).length;
    const incidentsFor = async (version: number) =>
      (await a.services.incidents.recent(tenantId)).filter((i) => i.title.includes(`sign-in policy change (version ${version})`));

    /** A policy canary nobody can sign in under, taken into use by both nodes. */
    const badCanary = async () => {
      const applied = await call(
        a,
        'POST',
        '/api/v1/admin/policy/versions',
        undefined,
        {
          policy: { allowedMethods: ['webauthn'] },
          canaryPercent: CANARY,
          bakeSeconds: 60,
        },
        // Which methods can be used is changed by a person, not a token.
        await adminPersonSession(a.services, 'acme'),
      );
      expect(applied.status).toBe(201);
      expect(await a.services.guard.tick()).toEqual([]);
      expect(await b.services.guard.tick()).toEqual([]);
      for (const node of [a, b])
        expect(node.services.runtime.versions.policyCanaries).toEqual([{ tenant: 'acme', version: applied.body.version, percent: CANARY }]);
      return applied.body.version as number;
    };

    /** Canary clients to node A (three times each: enough for the judge), everyone else to node B; how many canary sign-ins failed. */
    const splitLoad = async () => {
      let canaryFailures = 0;
      for (const p of people) {
        if (inCanary(p)) {
          for (let i = 0; i < 3; i++) if ((await start(a, p)).body.state !== 'factor_required') canaryFailures++;
        } else expect((await start(b, p)).body.state).toBe('factor_required');
      }
      return canaryFailures;
    };

    beforeAll(async () => {
      // A fixed master key: the canary slice (keyed with it) holds the same clients on every run.
      backend = await spec.create({
        STEADFAST_MASTER_KEY: Buffer.alloc(32, 15).toString('base64'),
        STEADFAST_TRUST_PROXY: '1',
        STEADFAST_ADMISSION_LIMIT: '64',
      });
      const hasher = { params: { memoryCost: 4096, timeCost: 1, parallelism: 1 }, queueLimit: 1000, maxWaitMs: 60_000 };
      a = await startTestServer(backend, { clock, hasher });
      b = await startTestServer(backend, { clock, hasher });
      const tenant = await a.services.tenants.create('acme', 'Acme');
      tenantId = tenant.id;
      const hash = await a.services.hasher.hash(PASSWORD);
      for (let i = 0; i < USERS; i++) {
        const p = { username: `user${i}`, ip: `10.2.0.${i + 1}` };
        await a.services.users.create(tenant.id, { username: p.username, passwordHash: hash });
        // Each user registers an authenticator app, so the last good policy asks them for a second factor.
        const first = await start(a, p);
        const session = first.body.session.token as string;
        const totp = await call(a, 'POST', '/api/v1/me/methods', p, { type: 'totp' }, session);
        const confirmed = await call(a, 'POST', `/api/v1/me/methods/${totp.body.id}/confirm`, p, { code: totpCode(totp.body.secret, clock.now()) }, session);
        expect(confirmed.status).toBe(200);
        people.push(p);
      }
    }, 180_000);
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend?.cleanup();
    });

    it('node B, which served no canary traffic, rolls back the canary failing on node A; once, and both nodes go back', async () => {
      const version = await badCanary();
      const canaryPeople = people.filter(inCanary);
      expect(canaryPeople.length).toBeGreaterThanOrEqual(4);
      expect(canaryPeople.length).toBeLessThan(people.length / 2);

      const failures = await splitLoad();
      expect(failures).toBe(canaryPeople.length * 3);
      // Node A publishes what it counted (each of its rounds starts so); it does not judge here.
      await a.services.guard.publish();
      // The bake is over: on its own figures (clean, no canary traffic) node B would promote the version now.
      clock.advance(61_000);
      const [decision, ...more] = await b.services.guard.tick();
      expect(more).toEqual([]);
      expect(decision).toMatchObject({ scope: `tenant:${tenantId}`, version, outcome: 'rolled-back' });
      expect(decision!.reason).toContain(`(${failures} of ${failures})`);
      // Node A finds the version decided: it records nothing, and takes its slice back.
      expect(await a.services.guard.tick()).toEqual([]);
      for (const node of [a, b]) expect(node.services.runtime.versions.policyCanaries).toEqual([]);
      expect((await a.services.configVersions.get(`tenant:${tenantId}`, version))!.state).toBe('rolled-back');
      expect(await rollbacks()).toBe(1);
      expect(await incidentsFor(version)).toHaveLength(1);
      // The canary's clients sign in again, on either node.
      for (const p of canaryPeople) {
        expect((await start(a, p)).body.state).toBe('factor_required');
        expect((await start(b, p)).body.state).toBe('factor_required');
      }
    }, 120_000);

    // Two nodes on one SQLite file in one process block each other's transactions: racing them is for the cluster setup.
    it.runIf(spec.name === 'postgres+redis')(
      'two nodes judging the same canary at the same moment record one rollback',
      async () => {
        const before = await rollbacks();
        const version = await badCanary();
        await splitLoad();
        clock.advance(GUARD_INTERVAL_MS);
        const decisions = (await Promise.all([a.services.guard.tick(), b.services.guard.tick()])).flat();
        expect(decisions).toEqual([expect.objectContaining({ version, outcome: 'rolled-back' })]);
        await Promise.all([a.services.guard.tick(), b.services.guard.tick()]);
        for (const node of [a, b]) expect(node.services.runtime.versions.policyCanaries).toEqual([]);
        expect(await rollbacks()).toBe(before + 1);
        expect(await incidentsFor(version)).toHaveLength(1);
      },
      120_000,
    );
  });
}
