import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';
import { loadConfig, sqlitePath } from '../../src/config/config.ts';
import { createLogger } from '../../src/http/logger.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { entryHash, keyedEntryHash } from '../../src/activity/audit-log.ts';
import type { AuditLogTable } from '../../src/store/durable/schema.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { LogCapture } from '../helpers/test-server.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
const runCli = (args: string[], env: Record<string, string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });

/**
 * Tampering with the audit chain by someone who can write the database, one
 * way at a time. Each check `verify` makes is the only one that fails in at
 * least one of these tests, so a check that always passed would be noticed.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`audit chain on ${spec.name}`, () => {
    let backend: Backend;
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    const open: Services[] = [];
    const masterKey = randomBytes(32).toString('base64');

    /** Services on the suite's store, with the given master keys (the suite's own by default). */
    const servicesWith = async (keys: { active?: string; previous?: string[] } = {}, logs?: LogCapture) => {
      const config = loadConfig({
        ...Object.fromEntries(
          Object.entries({
            STEADFAST_DATA_DIR: backend.config.dataDir,
            STEADFAST_DATABASE_URL: backend.config.databaseUrl,
            STEADFAST_REDIS_URL: backend.config.redisUrl,
          }).filter((e): e is [string, string] => e[1] !== undefined),
        ),
        STEADFAST_MASTER_KEY: keys.active ?? masterKey,
        STEADFAST_PREVIOUS_MASTER_KEYS: (keys.previous ?? []).join(','),
        STEADFAST_LOG_LEVEL: 'silent',
      });
      const s = await buildServices(config, {
        clock,
        ...(logs ? { logger: createLogger('info', logs) } : {}),
        ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}),
        ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}),
      });
      open.push(s);
      return s;
    };
    let s: Services;

    /** A tenant with `n` entries in its chain. */
    const chain = async (slug: string, n: number) => {
      const tenant = await s.tenants.create(slug);
      for (let i = 0; i < n; i++) {
        clock.advance(1000);
        await s.audit.append(tenant.id, { actor: 'cli', action: 'user.updated', details: { i } });
      }
      return tenant.id;
    };
    const row = async (tenantId: string, seq: number) =>
      (await s.durable.db
        .selectFrom('audit_log')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('seq', '=', seq)
        .executeTakeFirstOrThrow()) as AuditLogTable;
    const setRow = (tenantId: string, seq: number, values: Partial<AuditLogTable>) =>
      s.durable.db.updateTable('audit_log').set(values).where('tenant_id', '=', tenantId).where('seq', '=', seq).execute();

    beforeAll(async () => {
      backend = await spec.create();
      s = await servicesWith();
    });
    const cleanups: (() => Promise<void>)[] = [];
    afterAll(async () => {
      for (const services of open) await services.close();
      for (const cleanup of cleanups) await cleanup();
      await backend?.cleanup();
    });

    it('keys every entry: an intact chain verifies, and verify reports the head the nodes logged', async () => {
      const logs = new LogCapture();
      const logged = await servicesWith({}, logs);
      const tenant = await logged.tenants.create('intact');
      for (let i = 0; i < 3; i++) await logged.audit.append(tenant.id, { actor: 'cli', action: 'policy.changed' });
      const check = await logged.audit.verify(tenant.id);
      expect(check).toMatchObject({ intact: true, entries: 3 });
      const head = check.heads.find((h) => h.tenantId === tenant.id)!;
      expect(head.seq).toBe(3);
      const lines = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'audit chain head' && l.tenantId === tenant.id);
      expect(lines.map((l) => l.auditSeq)).toEqual([1, 2, 3]);
      expect(lines.at(-1)).toMatchObject({ auditSeq: head.seq, auditHash: head.hash });
      const stored = await row(tenant.id, 3);
      expect(stored.key_id).toBe(logged.keyRing.active.id);
      // Not a plain SHA-256: someone with only the database cannot recompute it.
      expect(stored.hash).not.toBe(entryHash(stored.prev_hash, stored));
    });

    it('catches an edited entry (its MAC no longer fits)', async () => {
      const t = await chain('edited', 5);
      await setRow(t, 3, { details: '{"i":"forged"}' });
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, unverifiable: false, seq: 3, reason: 'its contents do not match its hash' });
    });

    it('catches a forged entry relinked with a plain SHA-256, and one relinked with a MAC under a wrong key', async () => {
      for (const forge of ['sha256', 'wrong-key'] as const) {
        const t = await chain(`relinked-${forge}`, 5);
        const victim = await row(t, 3);
        const forged = { ...victim, details: '{"i":"forged"}' };
        const hash =
          forge === 'sha256'
            ? createHash('sha256')
                .update(victim.prev_hash)
                .update('\n')
                .update(JSON.stringify(['v2', victim.key_id, t, 3, Number(victim.at), victim.actor, victim.action, null, forged.details]))
                .digest('hex')
            : keyedEntryHash(randomBytes(32), victim.key_id!, victim.prev_hash, forged);
        // The intruder's best: the forged entry carries its new hash and the next entry points at it.
        await setRow(t, 3, { details: forged.details, hash });
        await setRow(t, 4, { prev_hash: hash });
        expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 3, reason: 'its contents do not match its hash' });
      }
    });

    it('catches an entry that no longer carries the hash of the one before (the link check alone)', async () => {
      const t = await chain('unlinked', 4);
      await setRow(t, 3, { prev_hash: createHash('sha256').update('elsewhere').digest('hex') });
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 3, reason: 'it does not carry the hash of the entry before it' });
    });

    it('catches a deleted middle entry, also when the rest are renumbered to close the gap', async () => {
      const t = await chain('deleted', 5);
      await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '=', 3).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 3, id: null, reason: 'entry 3 is missing' });
      await setRow(t, 4, { seq: 3 });
      await setRow(t, 5, { seq: 4 });
      await s.durable.db.updateTable('audit_heads').set({ seq: 4 }).where('tenant_id', '=', t).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 3, reason: 'it does not carry the hash of the entry before it' });
    });

    it('catches a cut tail against the head; a tail cut with the head rewritten shows only against the logged head', async () => {
      const t = await chain('cut', 5);
      const logged = (await s.audit.verify(t)).heads[0]!;
      await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '>', 3).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 4, reason: 'the chain ends at entry 3 but its head records entry 5' });

      // The head alone rewritten with another hash: caught.
      await s.durable.db.updateTable('audit_heads').set({ seq: 3, hash: logged.hash }).where('tenant_id', '=', t).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, reason: 'the chain ends at entry 3 but its head records another hash' });

      // Head rewritten to the new last entry: nothing inside the database can tell.
      // The head verify reports differs from the head the node logged at the last append.
      const third = await row(t, 3);
      await s.durable.db.updateTable('audit_heads').set({ seq: 3, hash: third.hash }).where('tenant_id', '=', t).execute();
      const check = await s.audit.verify(t);
      expect(check.intact).toBe(true);
      expect(check.heads[0]).not.toEqual(logged);
      expect(check.heads[0]).toMatchObject({ seq: 3, hash: third.hash });
    });

    it('catches a chain rewritten whole with plain SHA-256 (a downgrade), and an unkeyed entry after a keyed one', async () => {
      const t = await chain('downgraded', 4);
      let prev = '0'.repeat(64);
      for (let seq = 1; seq <= 4; seq++) {
        const r = await row(t, seq);
        const hash = entryHash(prev, r);
        await setRow(t, seq, { key_id: null, prev_hash: prev, hash });
        prev = hash;
      }
      await s.durable.db.updateTable('audit_heads').set({ hash: prev, key_id: null }).where('tenant_id', '=', t).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, reason: expect.stringMatching(/^no entry of the chain is keyed/) });

      const u = await chain('downgraded-tail', 4);
      const fourth = await row(u, 4);
      const plain = entryHash(fourth.prev_hash, fourth);
      await setRow(u, 4, { key_id: null, hash: plain });
      await s.durable.db.updateTable('audit_heads').set({ hash: plain }).where('tenant_id', '=', u).execute();
      expect(await s.audit.verify(u)).toMatchObject({ intact: false, seq: 4, reason: expect.stringMatching(/^it is not keyed, yet an earlier entry is/) });
    });

    it('keys a chain written before keying at the upgrade, keeps it verifiable, and never keys a rewritten chain again', async () => {
      // A store as the previous version left it: migrated to 005, a plain SHA-256 chain.
      const old = await spec.create();
      const store = openDurableStore({
        sqlitePath: sqlitePath(old.config),
        ...(old.config.databaseUrl ? { databaseUrl: old.config.databaseUrl } : {}),
        ...(old.pgSchema ? { pgSchema: old.pgSchema } : {}),
      });
      const migrator = steadfastMigrator(store.db, old.pgSchema);
      expect((await migrator.migrateTo('005-oidc')).error).toBeUndefined();
      // An operator built one of the upgrade's indexes beforehand (as docs/operations.md says for large stores).
      await sql`create index signin_events_failures_at on signin_events (tenant_id, at) where outcome = 'failure'`.execute(store.db);
      const tenantId = 'legacy-tenant';
      await store.db.insertInto('tenants').values({ id: tenantId, slug: 'legacy', name: 'Legacy', policy: '{}', created_at: clock.now() }).execute();
      let prev = '0'.repeat(64);
      for (let seq = 1; seq <= 3; seq++) {
        const r = {
          id: `legacy-${seq}`,
          tenant_id: tenantId,
          seq,
          at: clock.now() + seq,
          actor: 'cli',
          action: 'user.created',
          target_user_id: null,
          details: '{}',
          prev_hash: prev,
          hash: '',
        };
        r.hash = entryHash(prev, r);
        await (store.db as Kysely<any>).insertInto('audit_log').values(r).execute();
        prev = r.hash;
      }
      await (store.db as Kysely<any>).insertInto('audit_heads').values({ tenant_id: tenantId, seq: 3, hash: prev }).execute();
      await store.close();

      const onBackend = (b: Backend) =>
        buildServices(b.config, { clock, ...(b.pgSchema ? { pgSchema: b.pgSchema } : {}), ...(b.redisNamespace ? { redisNamespace: b.redisNamespace } : {}) });
      try {
        // PostgreSQL: two nodes start on the old store at once; one applies the upgrade and keys the chain, once.
        // SQLite: `steadfast migrate` applies it and keys the chain; the nodes that start afterwards do not.
        if (spec.name === 'sqlite+memory') {
          const migrate = await runCli(['migrate'], {
            STEADFAST_DATA_DIR: old.config.dataDir,
            STEADFAST_MASTER_KEY: old.config.masterKey!.toString('base64'),
            STEADFAST_LOG_LEVEL: 'silent',
          });
          expect(migrate.code).toBe(0);
          expect(JSON.parse(migrate.stdout).applied).toEqual([
            '006-retention-and-keyed-audit',
            '007-security-review',
            '008-cluster',
            '009-ephemeral-fallback',
            '010-config-versions',
            '011-push',
            '012-canary-tallies',
            '013-signature-counter',
            '014-token-touched',
            '015-token-touches',
            '016-methods-reset-at',
            '017-signin-credential',
          ]);
        }
        const [a, b] = spec.name === 'postgres+redis' ? await Promise.all([onBackend(old), onBackend(old)]) : [await onBackend(old), await onBackend(old)];
        open.push(a, b);
        const keyed = await a.audit.list(tenantId, { limit: 10, action: 'audit.chain-keyed' });
        expect(keyed).toHaveLength(1);
        expect(keyed[0]).toMatchObject({ seq: 4, actor: 'system', details: { previousHead: { seq: 3, hash: prev } } });
        expect(await a.audit.verify(tenantId)).toMatchObject({ intact: true, entries: 4 });
        await a.audit.append(tenantId, { actor: 'cli', action: 'policy.changed' });
        expect(await b.audit.verify(tenantId)).toMatchObject({ intact: true, entries: 5 });

        // The unkeyed part is still checked: an edit there is caught.
        await a.durable.db.updateTable('audit_log').set({ actor: 'someone-else' }).where('tenant_id', '=', tenantId).where('seq', '=', 2).execute();
        expect(await a.audit.verify(tenantId)).toMatchObject({ intact: false, seq: 2, reason: 'its contents do not match its hash' });

        // An intruder puts the edit back and cuts the chain back to its unkeyed part: a later start does not key it again.
        await a.durable.db.updateTable('audit_log').set({ actor: 'cli' }).where('tenant_id', '=', tenantId).where('seq', '=', 2).execute();
        await a.durable.db.deleteFrom('audit_log').where('tenant_id', '=', tenantId).where('seq', '>', 3).execute();
        await a.durable.db.updateTable('audit_heads').set({ seq: 3, hash: prev, key_id: null }).where('tenant_id', '=', tenantId).execute();
        const restarted = await onBackend(old);
        open.push(restarted);
        expect(await restarted.audit.list(tenantId, { limit: 10, action: 'audit.chain-keyed' })).toEqual([]);
        expect(await restarted.audit.verify(tenantId)).toMatchObject({ intact: false, reason: expect.stringMatching(/^no entry of the chain is keyed/) });
      } finally {
        // The services are closed with the others; the store goes with the suite.
        cleanups.push(() => old.cleanup());
      }
    });

    it('checks old entries with the old master key after a rotation; without it they are unverifiable, not intact', async () => {
      const t = await chain('rotated', 2);
      const newKey = randomBytes(32).toString('base64');
      const rotated = await servicesWith({ active: newKey, previous: [masterKey] });
      await rotated.audit.append(t, { actor: 'cli', action: 'policy.changed' });
      expect((await row(t, 3)).key_id).toBe(rotated.keyRing.active.id);
      expect((await row(t, 1)).key_id).toBe(s.keyRing.active.id);
      expect(await rotated.audit.verify(t)).toMatchObject({ intact: true, entries: 3 });

      const oldKeyGone = await servicesWith({ active: newKey });
      expect(await oldKeyGone.audit.verify(t)).toMatchObject({
        intact: false,
        unverifiable: true,
        seq: 1,
        reason: expect.stringMatching(new RegExp(`master key ${s.keyRing.active.id}, which is not in the key ring`)),
      });
      // A key id the ring never had, written into an entry: unverifiable too.
      await setRow(t, 3, { key_id: 'feedfacecafe' });
      expect(await rotated.audit.verify(t)).toMatchObject({ intact: false, unverifiable: true, seq: 3 });
    });

    it.runIf(spec.name === 'postgres+redis')('keeps one unbroken chain under many parallel appends from two nodes', async () => {
      const tenant = await s.tenants.create('parallel');
      const other = await servicesWith();
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 === 0 ? s : other).audit.append(tenant.id, { actor: `node-${i % 2}`, action: 'user.updated', details: { i } }),
        ),
      );
      const check = await s.audit.verify(tenant.id);
      expect(check).toMatchObject({ intact: true, entries: 60 });
      expect(check.heads[0]!.seq).toBe(60);
      const seqs = (await s.durable.db.selectFrom('audit_log').select('seq').where('tenant_id', '=', tenant.id).orderBy('seq').execute()).map((r) =>
        Number(r.seq),
      );
      expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    });

    it('proves a pruned chain by its signed checkpoint, and catches a forged, moved or missing checkpoint', async () => {
      const t = await chain('pruned', 6);
      const cutoff = (await row(t, 4)).at;
      const pruned = await s.durable.db.transaction().execute((trx) => s.audit.prune(trx, t, cutoff, 100));
      expect(pruned).toEqual({ pruned: 3 });
      expect(await s.audit.verify(t)).toMatchObject({ intact: true, entries: 3 });
      const checkpoint = await s.durable.db.selectFrom('audit_checkpoints').selectAll().where('tenant_id', '=', t).executeTakeFirstOrThrow();
      expect(checkpoint).toMatchObject({ seq: 3, keyed: 1, key_id: s.keyRing.active.id });

      // An intruder moves the cut forward to hide entry 4: the signature no longer fits.
      await s.durable.db
        .updateTable('audit_checkpoints')
        .set({ seq: 4, hash: (await row(t, 4)).hash })
        .where('tenant_id', '=', t)
        .execute();
      await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '=', 4).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 4, reason: 'the retention checkpoint at entry 4 does not match its signature' });
      // ...or signs it with a key of their own.
      const fake = createHmac('sha256', randomBytes(32)).update('x').digest('hex');
      await s.durable.db.updateTable('audit_checkpoints').set({ mac: fake }).where('tenant_id', '=', t).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, reason: expect.stringMatching(/does not match its signature/) });
      // ...or removes it: the entries before the first one left are missing.
      await s.durable.db.deleteFrom('audit_checkpoints').where('tenant_id', '=', t).execute();
      expect(await s.audit.verify(t)).toMatchObject({ intact: false, seq: 1, reason: 'entries 1 to 4 are missing' });
      // Retention leaves a chain that does not check out alone: the evidence stays.
      const before = await s.durable.db.selectFrom('audit_log').select('seq').where('tenant_id', '=', t).execute();
      const refused = await s.durable.db.transaction().execute((trx) => s.audit.prune(trx, t, clock.now() + 1, 100));
      expect(refused).toMatchObject({ pruned: 0, broken: expect.stringMatching(/^entry 1: entries 1 to 4 are missing/) });
      expect(await s.durable.db.selectFrom('audit_log').select('seq').where('tenant_id', '=', t).execute()).toHaveLength(before.length);
    });
  });
}
