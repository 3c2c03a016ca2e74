import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { Sweeper } from '../../src/retention/sweeper.ts';
import { expirySweeps } from '../../src/retention/sweeps.ts';
import { USED_PASS_KEPT_MS } from '../../src/methods/tap/access-passes.ts';
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

    it('an account a token touched is never made an administrator, after the audit log that recorded it is pruned too', async () => {
      const tenant = await s.tenants.create('token-touched');
      const token = 'admin-token:leaked';
      const made = await s.admin.createUser(tenant, token, { username: 'made-by-token' });
      const changed = await s.admin.createUser(tenant, 'cli', { username: 'changed-by-token' });
      await s.admin.updateUser(tenant, token, changed.id, { email: 'new@example.test' });
      const passed = await s.admin.createUser(tenant, 'cli', { username: 'passed-by-token' });
      await s.admin.issuePass(tenant, token, passed.id, { minutes: 60 });
      const reset = await s.admin.createUser(tenant, 'cli', { username: 'reset-by-token' });
      await s.admin.resetMethods(tenant, token, reset.id);
      const untouched = await s.admin.createUser(tenant, 'cli', { username: 'untouched' });
      clock.advance(401 * DAY);
      await smallBatches(s).runOnce();
      expect(await count('audit_log', tenant.id)).toBe(0);
      for (const user of [made, changed, passed, reset]) {
        await expect(s.admin.updateUser(tenant, 'cli', user.id, { admin: true }), user.username).rejects.toMatchObject({ code: 'forbidden' });
        await expect(s.admin.updateUser(tenant, 'cli', user.id, { breakGlass: true }), user.username).rejects.toMatchObject({ code: 'forbidden' });
        expect(await s.users.get(tenant.id, user.id)).toMatchObject({ isAdmin: false, breakGlass: false });
      }
      expect(await s.admin.updateUser(tenant, 'cli', untouched.id, { admin: true })).toMatchObject({ isAdmin: true });
    });

    it('a token cannot touch an account promoted after it looked, nor can one it touched be promoted after the promotion looked', async () => {
      const tenant = await s.tenants.create('token-race');
      const one = await s.admin.createUser(tenant, 'cli', { username: 'promoted-first' });
      await s.users.update(tenant.id, one.id, { isAdmin: true });
      // The token's look came before the promotion: its mark, written first, finds an administrator.
      expect(await s.users.markTokenTouched(tenant.id, one.id, 'tok')).toBe(false);
      const two = await s.admin.createUser(tenant, 'cli', { username: 'marked-first' });
      expect(await s.users.markTokenTouched(tenant.id, two.id, 'tok')).toBe(true);
      // The promotion's look came before the mark: the promotion itself finds it.
      expect(await s.users.update(tenant.id, two.id, { isAdmin: true })).toBe(false);
      expect(await s.users.update(tenant.id, two.id, { breakGlass: true })).toBe(false);
      expect(await s.users.update(tenant.id, two.id, { email: 'still@example.test' })).toBe(true);
      expect(await s.users.get(tenant.id, two.id)).toMatchObject({ isAdmin: false, breakGlass: false });
    });

    it('keeps a used pass after it expires for as long as what it gave can live, so revoking the token that issued it still takes that back', async () => {
      // Tenth round: a token's pass, used, expired and swept; revoking the token then found nothing to take back,
      // and the session and app grants the pass had given lived on.
      const tenant = await s.tenants.create('swept-passes');
      const token = await s.adminTokens.create(tenant.id, 'admin');
      const actor = `admin-token:${token.id}`;
      const used = await s.admin.createUser(tenant, actor, { username: 'used-pass' });
      const unused = await s.admin.createUser(tenant, actor, { username: 'unused-pass' });
      const { code } = await s.admin.issuePass(tenant, actor, used.id, { minutes: 10, oneTime: false });
      await s.admin.issuePass(tenant, actor, unused.id, { minutes: 10 });
      expect(await s.passes.use(tenant.id, used.id, code, {})).toBeDefined();
      const session = await s.sessions.create({ tenantId: tenant.id, userId: used.id, scope: 'full', amr: ['tap'] });
      clock.advance(11 * 60_000);
      await smallBatches(s).runOnce();
      // The unused one is gone; the used one stays (though it signs in no more).
      expect(await count('access_passes', tenant.id)).toBe(1);
      expect(await s.passes.use(tenant.id, used.id, code, {})).toBeUndefined();
      await s.admin.revokeToken(tenant, 'cli', token.id);
      expect(await s.sessions.authenticate(session.token)).toBeUndefined();
      const [entry] = await s.audit.list(tenant.id, { limit: 1, action: 'token.revoked' });
      expect(entry!.details).toMatchObject({ tokenId: token.id, passesRevoked: 1 });
      // Revoked, it goes at the next sweep; a used pass nobody revoked goes once what it gave has expired too.
      await smallBatches(s).runOnce();
      expect(await count('access_passes', tenant.id)).toBe(0);
      const later = await s.admin.createUser(tenant, 'cli', { username: 'used-long-ago' });
      const pass = await s.admin.issuePass(tenant, 'cli', later.id, { minutes: 10, oneTime: false });
      expect(await s.passes.use(tenant.id, later.id, pass.code, {})).toBeDefined();
      clock.advance(11 * 60_000);
      await smallBatches(s).runOnce();
      expect(await count('access_passes', tenant.id)).toBe(1);
      clock.advance(USED_PASS_KEPT_MS);
      await smallBatches(s).runOnce();
      expect(await count('access_passes', tenant.id)).toBe(0);
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
