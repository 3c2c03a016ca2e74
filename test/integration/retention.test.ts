import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { Sweeper } from '../../src/retention/sweeper.ts';
import { expirySweeps } from '../../src/retention/sweeps.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { PG_URL } from '../helpers/services-available.ts';

const DAY = 86_400_000;

/** Retention and expiry sweeps, with a clock the tests move; no sleeping. */
for (const spec of backends) {
  describe.runIf(await spec.available())(`retention and sweeps on ${spec.name}`, () => {
    let backend: Backend;
    let s: Services;
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const others: Services[] = [];
    const build = async () =>
      buildServices(backend.config, {
        clock,
        ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}),
        ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}),
      });

    beforeAll(async () => {
      backend = await spec.create();
      s = await build();
    });
    afterAll(async () => {
      for (const o of others) await o.close();
      await s?.close();
      await backend?.cleanup();
    });

    const count = async (
      table: 'signin_events' | 'sessions' | 'oidc_records' | 'access_passes' | 'credentials' | 'remembered_devices' | 'audit_log',
      tenantId: string,
    ) =>
      Number(
        (
          await s.durable.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('tenant_id', '=', tenantId)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const events = async (tenant: Tenant, n: number, username: string) => {
      for (let i = 0; i < n; i++)
        await s.events.record({ tenantId: tenant.id, userId: null, username, step: 'password', outcome: 'failure', reason: 'invalid_credentials' });
    };
    /** A sweeper with tiny batches, so every sweep runs through several. */
    const smallBatches = (services: Services) =>
      new Sweeper(services.durable.db, clock, services.tenants, expirySweeps(services.audit), { engine: services.durable.engine, batchSize: 3 });

    it("removes sign-in events older than each tenant's retention, in batches, and keeps the rest", async () => {
      const keepsLong = await s.tenants.create('keeps-long');
      await s.admin.setPolicy(await s.tenants.create('keeps-short'), 'cli', { retention: { signinEventDays: 30 } });
      const keepsShort = (await s.tenants.findBySlug('keeps-short'))!;
      expect(keepsShort.policy.retention.signinEventDays).toBe(30);
      await events(keepsLong, 7, 'old');
      await events(keepsShort, 7, 'old');
      clock.advance(20 * DAY);
      await events(keepsLong, 2, 'newer');
      await events(keepsShort, 2, 'newer');

      clock.advance(11 * DAY); // 31 days after the first ones
      const first = await smallBatches(s).runOnce();
      expect(first.problems).toEqual([]);
      expect(await count('signin_events', keepsShort.id)).toBe(2);
      expect(await count('signin_events', keepsLong.id)).toBe(9);
      expect((await s.events.list(keepsShort.id, {}, 10)).items.map((e) => e.username)).toEqual(['newer', 'newer']);

      clock.advance(60 * DAY); // 91 days after the first ones
      await s.sweeper.runOnce();
      expect(await count('signin_events', keepsLong.id)).toBe(2);
      expect(await count('signin_events', keepsShort.id)).toBe(0);
    });

    it('sweeps expired sessions, OIDC records, passes, stale pending enrolments and forgotten browsers', async () => {
      const tenant = await s.tenants.create('expiry');
      await s.admin.setPolicy(tenant, 'cli', { rememberedDeviceDays: 7 });
      const user = await s.users.create(tenant.id, { username: 'ed' });
      const t0 = clock.now();

      const { token: oldSession } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
      await s.passes.issue((await s.tenants.findById(tenant.id))!, user.id, { minutes: 60 }, 'cli');
      await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'totp', label: 'never confirmed', state: 'pending' });
      await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'totp', label: 'in use', state: 'active' });
      const oidc = (id: string, expiresAt: number | null) => ({
        tenant_id: tenant.id,
        model: 'Session',
        id,
        payload: '{}',
        grant_id: null,
        uid: null,
        user_code: null,
        expires_at: expiresAt,
        consumed_at: null,
      });
      await s.durable.db
        .insertInto('oidc_records')
        .values([oidc('gone', t0 + 3600_000), oidc('later', t0 + 3 * DAY), oidc('forever', null)])
        .execute();
      const device = (id: string, createdAt: number) => ({
        id,
        tenant_id: tenant.id,
        user_id: user.id,
        token_hash: `hash-${id}`,
        created_at: createdAt,
        revoked_at: null,
        user_agent: null,
      });
      await s.durable.db
        .insertInto('remembered_devices')
        .values([device('old-browser', t0 - 8 * DAY), device('new-browser', t0 - DAY)])
        .execute();

      clock.advance(DAY + 60_000);
      const { token: newSession } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
      const report = await smallBatches(s).runOnce();
      expect(report.problems).toEqual([]);
      expect(report.removed).toMatchObject({
        sessions: expect.any(Number),
        'oidc-records': expect.any(Number),
        'access-passes': expect.any(Number),
        'pending-enrolments': expect.any(Number),
        'remembered-devices': expect.any(Number),
      });

      expect(await s.sessions.authenticate(oldSession)).toBeUndefined();
      expect(await s.sessions.authenticate(newSession)).toBeDefined();
      expect(await count('sessions', tenant.id)).toBe(1);
      expect(await count('access_passes', tenant.id)).toBe(0);
      expect((await s.credentials.listForUser(tenant.id, user.id)).map((c) => c.label)).toEqual(['in use']);
      expect((await s.durable.db.selectFrom('oidc_records').select('id').where('tenant_id', '=', tenant.id).orderBy('id').execute()).map((r) => r.id)).toEqual([
        'forever',
        'later',
      ]);
      expect((await s.durable.db.selectFrom('remembered_devices').select('id').where('tenant_id', '=', tenant.id).execute()).map((r) => r.id)).toEqual([
        'new-browser',
      ]);
    });

    it('prunes the audit log behind a signed checkpoint: what is left still verifies, and nothing is pruned from a broken chain', async () => {
      const tenant = await s.tenants.create('audit-kept');
      for (let i = 0; i < 8; i++) await s.audit.append(tenant.id, { actor: 'cli', action: 'user.updated', details: { i } });
      clock.advance(300 * DAY);
      for (let i = 8; i < 10; i++) await s.audit.append(tenant.id, { actor: 'cli', action: 'user.updated', details: { i } });
      clock.advance(101 * DAY); // the first eight are 401 days old

      await smallBatches(s).runOnce();
      expect(await count('audit_log', tenant.id)).toBe(2);
      expect(await s.audit.verify(tenant.id)).toMatchObject({ intact: true, entries: 2, heads: [{ seq: 10 }] });
      expect(await s.durable.db.selectFrom('audit_checkpoints').select(['seq', 'keyed']).where('tenant_id', '=', tenant.id).executeTakeFirst()).toEqual({
        seq: 8,
        keyed: 1,
      });
      await s.audit.append(tenant.id, { actor: 'cli', action: 'policy.changed' });
      expect(await s.audit.verify(tenant.id)).toMatchObject({ intact: true, entries: 3 });

      // A tampered chain is kept whole, and the sweep says why.
      const broken = await s.tenants.create('audit-tampered');
      for (let i = 0; i < 4; i++) await s.audit.append(broken.id, { actor: 'cli', action: 'user.updated', details: { i } });
      await s.durable.db.updateTable('audit_log').set({ actor: 'intruder' }).where('tenant_id', '=', broken.id).where('seq', '=', 2).execute();
      clock.advance(401 * DAY);
      const report = await s.sweeper.runOnce();
      expect(report.problems).toEqual([
        expect.stringMatching(/^audit \(audit-tampered\): the audit chain does not check out \(entry 2: its contents do not match its hash\)/),
      ]);
      expect(await count('audit_log', broken.id)).toBe(4);
    });

    it.runIf(spec.name === 'postgres+redis')(
      'lets one node do each batch: a sweep another node holds is skipped, then done; two nodes sweeping at once finish the work between them',
      async () => {
        const tenant = await s.tenants.create('shared');
        const user = await s.users.create(tenant.id, { username: 'sam' });
        for (let i = 0; i < 5; i++) await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
        clock.advance(13 * 3600_000);

        // Another node holds the sessions sweep.
        const holder = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${backend.pgSchema}` });
        await holder.connect();
        try {
          await holder.query('begin');
          await holder.query(`select pg_advisory_xact_lock(hashtext(current_schema() || ':' || 'steadfast-sweep:sessions'))`);
          const held = await s.sweeper.runOnce();
          expect(held.skipped).toContain('sessions');
          expect(await count('sessions', tenant.id)).toBe(5);
          await holder.query('commit');
        } finally {
          await holder.end();
        }

        const other = await build();
        others.push(other);
        for (let i = 0; i < 12; i++)
          await s.events.record({ tenantId: tenant.id, userId: null, username: 'x', step: 'password', outcome: 'failure', reason: 'invalid_credentials' });
        for (let i = 0; i < 12; i++) await s.audit.append(tenant.id, { actor: 'cli', action: 'user.updated', details: { i } });
        clock.advance(401 * DAY);
        const [a, b] = await Promise.all([smallBatches(s).runOnce(), smallBatches(other).runOnce()]);
        // Only the chain tampered with earlier in this suite is reported.
        expect([...a.problems, ...b.problems].filter((p) => !p.includes('(audit-tampered)'))).toEqual([]);
        expect(await count('sessions', tenant.id)).toBe(0);
        expect(await count('signin_events', tenant.id)).toBe(0);
        // Either node may have finished the audit sweep; the chain verifies after it either way.
        await s.sweeper.runOnce();
        expect(await count('audit_log', tenant.id)).toBe(0);
        expect(await s.audit.verify(tenant.id)).toMatchObject({ intact: true, entries: 0, heads: [{ seq: 12 }] });
      },
    );
  });
}
