import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { codeIn, startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { ManualClock } from '../../src/clock.ts';
import { CanarySlicer } from '../../src/config/canary-slice.ts';
import { GUARD_INTERVAL_MS, type CanaryDecision } from '../../src/config/canary-guard.ts';

const PASSWORD = 'correct horse battery staple';
const SECRET = 'config-suite-webhook-secret';
const USERS = 40;
const CANARY = 10;
// Every user signs in many times within the hour here: the send limits must not be what fails them.
const LIMITS = {
  limits: { perDestinationPerHour: 1000, perUserPerHour: 1000, perTenantPerHour: 100000, perSessionPerHour: 1000, perSourcePerHour: 100000 },
  code: { resendCooldownSeconds: 5 },
};

interface Person {
  username: string;
  ip: string;
  phone: string;
}

/**
 * Bad configuration to a 10% canary under load: a delivery provider that
 * hangs, an admission limit of 1, a policy demanding a method nobody has.
 * Each time only the canary slice sees failures, the guard rolls it back
 * within 60 s (on the injected clock: one guard interval per wave of
 * sign-ins), and the rollback leaves a history entry, an audit entry, an
 * incident on the status page and an alert. A good version is promoted after
 * its bake. Every client comes from its own address (one proxy hop trusted),
 * which is what the slice is drawn from.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`configuration canaries on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let good: StandIn;
    let hanging: StandIn;
    let adminToken: string;
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
    const people: Person[] = [];
    const figures: Record<string, unknown> = {};

    const call = async (method: string, path: string, who: Person | undefined, body?: unknown, token?: string) => {
      const headers: Record<string, string> = {};
      if (who) headers['x-forwarded-for'] = who.ip;
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(server.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // a page
      }
      return { status: res.status, body: parsed };
    };
    const codeFor = (phone: string) => codeIn(good.received.filter((m) => m.to === phone).at(-1));

    /** A whole sign-in: password, an SMS code, the code back. True when it ended with a session. */
    const signIn = async (p: Person): Promise<boolean> => {
      const start = await call('POST', '/api/v1/t/acme/signin', p, { username: p.username, password: PASSWORD });
      if (start.status !== 200 || start.body.state !== 'factor_required') return debug('start', start);
      const method = start.body.methods[0].id as string;
      const challenge = await call('POST', `/api/v1/t/acme/signin/${start.body.flow}/challenge`, p, { method });
      if (challenge.status !== 200) return debug('challenge', challenge);
      const verify = await call('POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, p, { method: 'sms', code: codeFor(p.phone) });
      return verify.status === 200 || debug('verify', verify);
    };
    const debug = (step: string, res: { status: number; body: any }) => {
      // Set CONFIG_TEST_TRACE=1 to see why sign-ins fail.
      if (process.env.CONFIG_TEST_TRACE) process.stdout.write(`${step} ${res.status} ${JSON.stringify(res.body).slice(0, 300)}\n`);
      return false;
    };

    /** Everyone signs in, ten at a time (the suite shares two cores with the rest of the test run); who failed. */
    const wave = async (): Promise<Set<string>> => {
      const failed = new Set<string>();
      for (let i = 0; i < people.length; i += 10) await Promise.all(people.slice(i, i + 10).map(async (p) => (await signIn(p)) || failed.add(p.username)));
      return failed;
    };

    /** Waves of sign-ins, the guard ticking after each (one guard interval of clock time), until it decides. */
    const untilDecided = async (load: () => Promise<Set<string>>, maxWaves = 12) => {
      const failedUsers = new Set<string>();
      let decision: CanaryDecision | undefined;
      let waves = 0;
      for (; waves < maxWaves && !decision; waves++) {
        for (const u of await load()) failedUsers.add(u);
        clock.advance(GUARD_INTERVAL_MS);
        decision = (await server.services.guard.tick())[0];
      }
      return { decision, failedUsers, waves };
    };

    /** Who is in the 10% slice: computed the way the node does it. */
    const inCanary = (p: Person) => CanarySlicer.inCanary(server.services.runtime.bucketFor('acme', p.ip), CANARY);

    beforeAll(async () => {
      [good, hanging] = await Promise.all([startWebhookReceiver(SECRET), startWebhookReceiver(SECRET)]);
      hanging.behave({ kind: 'hang' });
      const configFile = join(tmpdir(), `steadfast-config-rollout-${process.pid}-${spec.name}.json`);
      writeFileSync(configFile, JSON.stringify({ delivery: { sms: [{ name: 'gateway', type: 'webhook', url: good.url, secret: SECRET }], ...LIMITS } }));
      // Room in every lane for the whole crowd at once: only the canary's own limit may refuse anyone.
      // A fixed master key: the canary slice (keyed with it) holds the same clients on every run.
      backend = await spec.create({
        STEADFAST_MASTER_KEY: Buffer.alloc(32, 15).toString('base64'),
        STEADFAST_CONFIG: configFile,
        STEADFAST_TRUST_PROXY: '1',
        STEADFAST_ADMISSION_LIMIT: '400',
        STEADFAST_ADMISSION_QUEUE: '400',
        STEADFAST_ADMISSION_MAX_WAIT_MS: '5000',
      });
      // Light Argon2id parameters and a deep hashing queue: the crowd must fit, so only the canary's own settings refuse anyone.
      server = await startTestServer(backend, {
        clock,
        hasher: { params: { memoryCost: 4096, timeCost: 1, parallelism: 1 }, queueLimit: 1000, maxWaitMs: 60_000 },
      });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      const hash = await server.services.hasher.hash(PASSWORD);
      for (let i = 0; i < USERS; i++) {
        const p = { username: `user${i}`, ip: `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}`, phone: `+4477009${String(i).padStart(5, '0')}` };
        await server.services.users.create(tenant.id, { username: p.username, passwordHash: hash });
        const start = await call('POST', '/api/v1/t/acme/signin', p, { username: p.username, password: PASSWORD });
        const token = start.body.session.token as string;
        const enrol = await call('POST', '/api/v1/me/methods', p, { type: 'sms', to: p.phone }, token);
        expect(enrol.status).toBe(201);
        const confirm = await call('POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, p, { code: codeFor(p.phone) }, token);
        expect(confirm.status).toBe(200);
        people.push(p);
      }
    }, 120_000);
    afterAll(async () => {
      // The figures the closing note quotes.
      process.stdout.write(`config canary figures (${spec.name}): ${JSON.stringify(figures)}\n`);
      await server?.close();
      await backend?.cleanup();
      await Promise.all([good, hanging].map((s) => s?.close()));
    });

    it('rolls back a hanging delivery provider on a 10% canary: only the canary slice fails, within 60 s, with history, audit, incident and alert', async () => {
      expect(await wave()).toEqual(new Set());
      const applied = await server.services.rollouts.applyNode(
        { delivery: { sms: [{ name: 'gateway', type: 'webhook', url: hanging.url, secret: SECRET, timeoutMs: 200, consecutiveFailures: 3 }], ...LIMITS } },
        { canaryPercent: CANARY, bakeSeconds: 600, actor: 'cli' },
      );
      expect(applied).toMatchObject({ state: 'canary', canaryPercent: CANARY });
      // The secret is sealed in the store and never shown back.
      expect(JSON.stringify(applied)).not.toContain(SECRET);
      const raw = await server.services.configVersions.raw('node', applied.version);
      expect(raw!.document).not.toContain(SECRET);

      await server.services.guard.tick();
      expect(server.services.runtime.versions.canary).toEqual({ version: applied.version, percent: CANARY });
      const canaryPeople = people.filter(inCanary);
      expect(canaryPeople.length).toBeGreaterThan(0);
      expect(canaryPeople.length).toBeLessThan(people.length / 4);

      const { decision, failedUsers, waves } = await untilDecided(wave);
      expect(decision).toMatchObject({ version: applied.version, outcome: 'rolled-back' });
      expect(decision!.afterMs).toBeLessThanOrEqual(60_000);
      // At most the canary slice saw failures.
      for (const u of failedUsers) expect(canaryPeople.map((p) => p.username)).toContain(u);
      expect(failedUsers.size).toBeGreaterThan(0);
      figures.delivery = {
        rollbackAfterMs: decision!.afterMs,
        waves,
        usersInCanary: canaryPeople.length,
        usersWithFailures: failedUsers.size,
        users: people.length,
        shareThatSawBadVersion: canaryPeople.length / people.length,
      };

      // Everyone is back on the last good version.
      expect(server.services.runtime.versions.canary).toBeUndefined();
      expect(await wave()).toEqual(new Set());

      const history = await server.services.configVersions.get('node', applied.version);
      expect(history).toMatchObject({ state: 'rolled-back' });
      expect(history!.reason).toMatch(/rolled back automatically: .*(finish-signin|delivery|breakers)/);
      const audit = await server.services.audit.list('system', { limit: 10 });
      expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['config.applied', 'config.rolled-back']));
      expect(server.logs.text).toMatch(/"alert":"config-rolled-back"/);

      const status = await call('GET', '/status', undefined);
      expect(status.body).toContain(`configuration change (version ${applied.version}) failed for some users and was rolled back`);
      expect(status.body).toMatch(/<svg role="img" aria-label="Configuration changes: [0-9.]+% of the last 90 days/);
      const feed = await call('GET', '/status/feed.atom', undefined);
      expect(feed.body).toContain('<feed xmlns="http://www.w3.org/2005/Atom">');
      expect(feed.body).toContain(`version ${applied.version}`);
    }, 180_000);

    it('rolls back an admission limit of 1 on a 10% canary under concurrent load: only the canary slice is refused', async () => {
      const applied = await server.services.rollouts.applyNode(
        { admission: { limit: 1, queueLimit: 0 } },
        { canaryPercent: CANARY, bakeSeconds: 600, actor: 'cli' },
      );
      await server.services.guard.tick();
      const canaryIps = new Set(people.filter(inCanary).map((p) => p.ip));
      const refusedIps = new Set<string>();
      // Every client sends its password three times at once (Argon2id runs off the event loop, so the requests overlap).
      const burst = async () => {
        await Promise.all(
          people.flatMap((p) =>
            Array.from({ length: 3 }, async () => {
              const res = await call('POST', '/api/v1/t/acme/signin', p, { username: p.username, password: PASSWORD });
              if (res.status === 503) refusedIps.add(p.ip);
              else expect(res.status).toBe(200);
            }),
          ),
        );
        return new Set<string>();
      };
      const { decision, waves } = await untilDecided(burst);
      expect(decision).toMatchObject({ version: applied.version, outcome: 'rolled-back' });
      expect(decision!.reason).toMatch(/503 rate/);
      expect(decision!.afterMs).toBeLessThanOrEqual(60_000);
      expect(refusedIps.size).toBeGreaterThan(0);
      for (const ip of refusedIps) expect(canaryIps).toContain(ip);
      figures.admission = {
        rollbackAfterMs: decision!.afterMs,
        waves,
        clientsInCanary: canaryIps.size,
        clientsRefused: refusedIps.size,
        clients: people.length,
      };
    }, 120_000);

    it("rolls back a tenant policy demanding a method nobody has, applied to 10% of the tenant's users through the admin API", async () => {
      const applied = await call(
        'POST',
        '/api/v1/admin/policy/versions',
        undefined,
        { policy: { allowedMethods: ['webauthn', 'recovery-codes'] }, canaryPercent: CANARY, bakeSeconds: 600 },
        // Which methods can be used is changed by a person, not a token.
        await adminPersonSession(server.services, 'acme'),
      );
      expect(applied.status).toBe(201);
      expect(applied.body).toMatchObject({
        state: 'canary',
        canaryPercent: CANARY,
        changes: expect.arrayContaining([expect.objectContaining({ path: expect.stringMatching(/^allowedMethods/) })]),
      });
      await server.services.guard.tick();
      const canaryPeople = new Set(people.filter(inCanary).map((p) => p.username));
      const { decision, failedUsers, waves } = await untilDecided(wave);
      expect(decision).toMatchObject({ version: applied.body.version, outcome: 'rolled-back' });
      expect(decision!.afterMs).toBeLessThanOrEqual(60_000);
      expect(failedUsers.size).toBeGreaterThan(0);
      for (const u of failedUsers) expect(canaryPeople).toContain(u);
      figures.policy = {
        rollbackAfterMs: decision!.afterMs,
        waves,
        usersInCanary: canaryPeople.size,
        usersWithFailures: failedUsers.size,
        users: people.length,
      };

      // The stored policy never changed, and everyone signs in again.
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      expect((await server.services.tenants.storedPolicy(tenant.id))!.allowedMethods).toContain('sms');
      expect(await wave()).toEqual(new Set());
      const versions = await call('GET', '/api/v1/admin/policy/versions', undefined, undefined, adminToken);
      expect(versions.body.history[0]).toMatchObject({ version: applied.body.version, state: 'rolled-back' });
      const audit = await call('GET', '/api/v1/admin/audit', undefined, undefined, adminToken);
      expect(JSON.stringify(audit.body)).toContain('config.rolled-back');
      // The tenant's own status page and feed show it; the global one does not.
      const page = await call('GET', '/t/acme/status', undefined);
      expect(page.body).toContain(`sign-in policy change (version ${applied.body.version})`);
      expect((await call('GET', '/status', undefined)).body).not.toContain('sign-in policy change');

      // An administrator posts an incident with an expected end, updates it, resolves it (a person: what every user
      // of the tenant reads is not a token's to say).
      const person = await adminPersonSession(server.services, 'acme');
      expect((await call('POST', '/api/v1/admin/incidents', undefined, { component: 'sms', title: 'Call us', advice: 'x' }, adminToken)).status).toBe(403);
      const posted = await call(
        'POST',
        '/api/v1/admin/incidents',
        undefined,
        {
          component: 'sms',
          title: 'Text messages are slow',
          advice: 'Use your authenticator app.',
          expectedEndAt: new Date(clock.now() + 3_600_000).toISOString(),
        },
        person,
      );
      expect(posted.status).toBe(201);
      const ongoing = await call('GET', '/t/acme/status', undefined);
      expect(ongoing.body).toContain('Current incidents');
      expect(ongoing.body).toContain('Text messages are slow');
      expect(ongoing.body).toContain('expected to be over by');
      const resolved = await call('PATCH', `/api/v1/admin/incidents/${posted.body.id}`, undefined, { text: 'The provider is back.', resolved: true }, person);
      expect(resolved.body).toMatchObject({ endedAt: expect.any(String), updates: [{ text: 'The provider is back.' }] });
      expect((await call('GET', '/t/acme/status/feed.atom', undefined)).body).toContain('[Resolved] Text messages are slow');
      // Another tenant's administrator cannot touch it.
      await server.services.tenants.create('other', 'Other');
      const otherAdmin = await adminPersonSession(server.services, 'other');
      expect((await call('PATCH', `/api/v1/admin/incidents/${posted.body.id}`, undefined, { resolved: false }, otherAdmin)).status).toBe(404);
      expect((await call('GET', '/t/other/status', undefined)).body).not.toContain('Text messages are slow');
    }, 180_000);

    it('promotes a good version after its bake, and every client then runs it', async () => {
      const applied = await server.services.rollouts
        .applyNode(
          { admission: { limit: 300 }, delivery: { sms: [{ name: 'gateway-2', type: 'webhook', url: good.url, secret: '(sealed)' }] } },
          { canaryPercent: CANARY, bakeSeconds: 60, actor: 'cli' },
        )
        .catch((err: Error) => err);
      // "(sealed)" keeps a secret only from the same provider of the last good version: a new name has none to keep.
      expect(applied).toBeInstanceOf(Error);
      expect((applied as Error).message).toMatch(/delivery\.sms\[0\]\.secret is "\(sealed\)"/);

      const version = await server.services.rollouts.applyNode(
        { admission: { limit: 300 }, delivery: { sms: [{ name: 'gateway-2', type: 'webhook', url: good.url, secret: SECRET }], ...LIMITS } },
        { canaryPercent: CANARY, bakeSeconds: 60, actor: 'cli' },
      );
      await server.services.guard.tick();
      let decision: CanaryDecision | undefined;
      let failures = 0;
      for (let i = 0; i < 13 && !decision; i++) {
        failures += (await wave()).size;
        clock.advance(GUARD_INTERVAL_MS);
        decision = (await server.services.guard.tick())[0];
      }
      expect(failures).toBe(0);
      expect(decision).toMatchObject({ version: version.version, outcome: 'promoted' });
      expect(decision!.afterMs).toBeGreaterThanOrEqual(60_000);
      expect(server.services.runtime.versions).toMatchObject({ stable: version.version });
      expect(server.services.runtime.settings.admission.limit).toBe(300);
      expect(server.services.admission.state.limit).toBe(300);
      expect(await wave()).toEqual(new Set());
      const status = await server.services.rollouts.status('node');
      expect(status.lastGood?.version).toBe(version.version);
      expect(status.history.map((v) => v.state)).toEqual(['promoted', 'rolled-back', 'rolled-back']);
    }, 180_000);
  });
}
