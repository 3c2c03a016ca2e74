import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import { AuditLog, entryHash, keyedEntryHash, AUDIT_KEY_PURPOSE, type AuditInput } from '../../src/activity/audit-log.ts';
import { KeyRing } from '../../src/crypto/key-ring.ts';
import type { AuditLogTable } from '../../src/store/durable/schema.ts';
import { startCoreServices, type CoreServices } from './core-services.ts';

/**
 * The audit chain's checks one at a time on SQLite, fast enough for
 * `npm run mutate`: each way of tampering is named by the reason and the entry
 * `verify` reports, so a check that always passed, or named the wrong entry,
 * fails here. (test/integration/audit-chain.test.ts does the same on both
 * backends, with the CLI and parallel appends on PostgreSQL.)
 */
describe('audit log on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  let n = 0;
  const heads: { tenantId: string; seq: number; hash: string }[] = [];
  let log: AuditLog;
  let ring: KeyRing;

  const chain = async (entries: number) => {
    const tenantId = `tenant-${++n}`;
    for (let i = 0; i < entries; i++) {
      clock.advance(1000);
      await log.append(tenantId, { actor: 'cli', action: 'user.updated', targetUserId: i === 1 ? 'u-1' : null, details: { i } });
    }
    return tenantId;
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
  const setHead = (tenantId: string, values: { seq?: number; hash?: string; key_id?: string | null }) =>
    s.durable.db.updateTable('audit_heads').set(values).where('tenant_id', '=', tenantId).execute();
  const unkeyed = (r: AuditLogTable) => ({ key_id: null, hash: entryHash(r.prev_hash, r) });

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    ring = s.keyRing;
    log = new AuditLog(s.durable.db, s.durable.engine, clock, ring, { onAppended: (head) => heads.push(head) });
  });
  afterAll(() => core?.stop());

  // First, on an empty log: it sees every chain there is.
  it('verifies every chain at once, in tenant order, and stops at the first broken one', async () => {
    const append = (tenantId: string, times: number) =>
      Promise.all(Array.from({ length: times }, () => log.append(tenantId, { actor: 'cli', action: 'user.updated' })));
    await append('a-intact', 2);
    await append('b-edited', 3);
    await append('c-later', 1);
    await setRow('b-edited', 2, { actor: 'edited' });
    const all = await log.verify();
    expect(all).toMatchObject({ intact: false, tenantId: 'b-edited', seq: 2, entries: 2 + 1 });
    expect(all.heads.map((h) => h.tenantId)).toEqual(['a-intact', 'b-edited']);
    await setRow('b-edited', 2, { actor: 'cli' });
    const whole = await log.verify();
    expect(whole).toMatchObject({ intact: true, entries: 6 });
    expect(whole.heads.map((h) => `${h.tenantId}@${h.seq}`)).toEqual(['a-intact@2', 'b-edited@3', 'c-later@1']);
  });

  it('appends a keyed chain, tells each new head, and verifies it intact', async () => {
    const t = await chain(3);
    const first = await row(t, 1);
    expect(first.prev_hash).toBe('0'.repeat(64));
    expect(first.key_id).toBe(ring.active.id);
    expect(first.hash).toBe(keyedEntryHash(ring.deriveKey(AUDIT_KEY_PURPOSE), ring.active.id, first.prev_hash, first));
    expect((await row(t, 2)).prev_hash).toBe(first.hash);
    const third = await row(t, 3);
    expect(heads.filter((h) => h.tenantId === t)).toEqual([
      { tenantId: t, seq: 1, hash: first.hash },
      { tenantId: t, seq: 2, hash: (await row(t, 2)).hash },
      { tenantId: t, seq: 3, hash: third.hash },
    ]);
    expect(await log.verify(t)).toEqual({ intact: true, entries: 3, heads: [{ tenantId: t, seq: 3, hash: third.hash }] });
    // An empty chain is intact too.
    expect(await log.verify('no-such-tenant')).toEqual({ intact: true, entries: 0, heads: [] });
  });

  it('MACs each entry, and signs each checkpoint, in the one format older entries were written in', async () => {
    // Written out here rather than through the module's functions: a change of format would leave every existing chain
    // unverifiable, and appending and verifying with the same changed function would not show it.
    const key = ring.deriveKey(AUDIT_KEY_PURPOSE);
    const t = await chain(2);
    const second = await row(t, 2);
    const body = JSON.stringify(['v2', ring.active.id, t, 2, Number(second.at), 'cli', 'user.updated', 'u-1', '{"i":1}']);
    expect(second.hash).toBe(createHmac('sha256', key).update(`${second.prev_hash}\n${body}`).digest('hex'));
    const first = await row(t, 1);
    expect(keyedEntryHash(key, ring.active.id, '0'.repeat(64), first)).toBe(first.hash);
    // The plain SHA-256 of entries from before keying.
    const legacy = { ...first, details: '{"a":1}' };
    const legacyBody = JSON.stringify([t, 1, Number(first.at), 'cli', 'user.updated', 'u-1', '{"a":1}']);
    expect(entryHash('f'.repeat(64), { ...legacy, target_user_id: 'u-1' })).toBe(
      createHash('sha256')
        .update(`${'f'.repeat(64)}\n${legacyBody}`)
        .digest('hex'),
    );
    // A retention checkpoint's signature.
    expect(await s.durable.db.transaction().execute((trx) => log.prune(trx, t, Number(second.at), 100))).toEqual({ pruned: 1 });
    const cp = await s.durable.db.selectFrom('audit_checkpoints').selectAll().where('tenant_id', '=', t).executeTakeFirstOrThrow();
    const cpBody = JSON.stringify(['checkpoint', ring.active.id, t, 1, first.hash, 1, clock.now()]);
    expect(cp.mac).toBe(createHmac('sha256', key).update(cpBody).digest('hex'));
  });

  it('keys each legacy chain once, even when two nodes run the migration at once', async () => {
    const legacyChain = async () => {
      const t = await chain(2);
      let prev = '0'.repeat(64);
      for (let seq = 1; seq <= 2; seq++) {
        const relinked = { ...(await row(t, seq)), prev_hash: prev };
        const hash = entryHash(prev, relinked);
        await setRow(t, seq, { prev_hash: prev, key_id: null, hash });
        prev = hash;
      }
      await setHead(t, { hash: prev, key_id: null });
      return t;
    };
    const legacy = [await legacyChain(), await legacyChain()];
    const keyed = await Promise.all([log.keyLegacyChains(), log.keyLegacyChains()]);
    expect(keyed[0] + keyed[1]).toBe(2);
    for (const t of legacy) {
      expect((await log.list(t, { limit: 10 })).map((e) => `${e.seq}:${e.action}`)).toEqual(['3:audit.chain-keyed', '2:user.updated', '1:user.updated']);
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 3 });
    }
  });

  it('returns the entry it wrote, with its actor cut to 300 characters', async () => {
    const entry = await log.append('tenant-actor', { actor: 'a'.repeat(400), action: 'policy.changed', targetUserId: 'u', details: { x: 1 } });
    expect(entry).toEqual({
      id: expect.any(String),
      seq: 1,
      at: clock.now(),
      actor: 'a'.repeat(300),
      action: 'policy.changed',
      targetUserId: 'u',
      details: { x: 1 },
      hash: (await row('tenant-actor', 1)).hash,
    });
    const bare = await log.append('tenant-actor', { actor: 'cli', action: 'policy.changed' });
    expect(bare).toMatchObject({ seq: 2, targetUserId: null, details: {} });
  });

  it('catches an edited entry and names it', async () => {
    const t = await chain(5);
    await setRow(t, 3, { actor: 'someone-else' });
    expect(await log.verify(t)).toMatchObject({
      intact: false,
      unverifiable: false,
      tenantId: t,
      seq: 3,
      reason: 'its contents do not match its hash',
      entries: 2,
    });
    expect(await log.verify(t)).toMatchObject({ id: (await row(t, 3)).id });
  });

  it('catches an entry relinked to a wrong previous hash, and one relinked with a plain SHA-256 after keyed ones', async () => {
    const t = await chain(4);
    await setRow(t, 3, { prev_hash: 'f'.repeat(64) });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 3, reason: 'it does not carry the hash of the entry before it' });

    const u = await chain(4);
    await setRow(u, 4, { actor: 'forged', ...unkeyed({ ...(await row(u, 4)), actor: 'forged' }) });
    await setHead(u, { hash: (await row(u, 4)).hash, key_id: null });
    expect(await log.verify(u)).toMatchObject({ intact: false, seq: 4, reason: expect.stringMatching(/^it is not keyed, yet an earlier entry is/) });
  });

  it('catches a MAC of the same length made with another key', async () => {
    const t = await chain(3);
    const r = await row(t, 2);
    await setRow(t, 2, { hash: keyedEntryHash(randomBytes(32), r.key_id!, r.prev_hash, r) });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 2, reason: 'its contents do not match its hash' });
    // A hash of another length is refused, not compared in a way that throws.
    await setRow(t, 2, { hash: 'abc' });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 2, reason: 'its contents do not match its hash' });
  });

  it('names one missing entry, and a run of them', async () => {
    const t = await chain(6);
    await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '=', 3).execute();
    expect(await log.verify(t)).toMatchObject({ intact: false, unverifiable: false, seq: 3, id: null, reason: 'entry 3 is missing', entries: 2 });
    await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '=', 4).execute();
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 3, reason: 'entries 3 to 4 are missing' });
  });

  it('catches a cut tail against the head, and a head that records another hash', async () => {
    const t = await chain(5);
    await s.durable.db.deleteFrom('audit_log').where('tenant_id', '=', t).where('seq', '>', 3).execute();
    expect(await log.verify(t)).toMatchObject({
      intact: false,
      unverifiable: false,
      seq: 4,
      id: null,
      reason: 'the chain ends at entry 3 but its head records entry 5',
    });
    // The head's hash made to fit the cut chain, its count left: still caught.
    const fullHead = await s.durable.db.selectFrom('audit_heads').selectAll().where('tenant_id', '=', t).executeTakeFirstOrThrow();
    await setHead(t, { hash: (await row(t, 3)).hash });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 4, reason: 'the chain ends at entry 3 but its head records entry 5' });
    await setHead(t, { hash: fullHead.hash });
    await setHead(t, { seq: 3 });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 4, reason: 'the chain ends at entry 3 but its head records another hash' });
    await setHead(t, { hash: (await row(t, 3)).hash });
    expect(await log.verify(t)).toMatchObject({ intact: true, entries: 3 });
  });

  it('refuses a chain rewritten whole with plain hashes, but takes a legacy unkeyed part before a keyed entry', async () => {
    const t = await chain(3);
    let prev = '0'.repeat(64);
    for (let seq = 1; seq <= 3; seq++) {
      const r = { ...(await row(t, seq)), prev_hash: prev };
      const hash = entryHash(prev, r);
      await setRow(t, seq, { prev_hash: prev, key_id: null, hash });
      prev = hash;
    }
    await setHead(t, { hash: prev, key_id: null });
    expect(await log.verify(t)).toMatchObject({
      intact: false,
      unverifiable: false,
      seq: 3,
      id: null,
      reason: expect.stringMatching(/^no entry of the chain is keyed/),
    });

    // Keying it now (as the migration does) makes it verifiable again, with the legacy part still checked.
    expect(await log.keyLegacyChains()).toBeGreaterThanOrEqual(1);
    expect(await log.keyLegacyChains()).toBe(0);
    const keyedEntry = await row(t, 4);
    expect(keyedEntry).toMatchObject({ actor: 'system', action: 'audit.chain-keyed', key_id: ring.active.id });
    expect(JSON.parse(keyedEntry.details)).toEqual({ keyId: ring.active.id, previousHead: { seq: 3, hash: prev } });
    expect(await log.verify(t)).toMatchObject({ intact: true, entries: 4 });
    await setRow(t, 2, { actor: 'edited' });
    expect(await log.verify(t)).toMatchObject({ intact: false, seq: 2, reason: 'its contents do not match its hash' });
  });

  it('reports an entry keyed by a master key it does not hold as unverifiable, and finds it with that key', async () => {
    const t = await chain(2);
    const stranger = new AuditLog(s.durable.db, s.durable.engine, clock, new KeyRing(randomBytes(32)));
    expect(await stranger.verify(t)).toMatchObject({
      intact: false,
      unverifiable: true,
      seq: 1,
      reason: expect.stringMatching(new RegExp(`^it was keyed by master key ${ring.active.id}, which is not in the key ring`)),
    });
    const rotated = new AuditLog(s.durable.db, s.durable.engine, clock, new KeyRing(randomBytes(32), [Buffer.from(core.masterKey, 'base64')]));
    expect(await rotated.verify(t)).toMatchObject({ intact: true, entries: 2 });
  });

  it('lists newest first, by page, user and action, in its own tenant', async () => {
    const t = await chain(4);
    await log.append(t, { actor: 'cli', action: 'policy.changed' });
    expect((await log.list(t, { limit: 10 })).map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
    expect((await log.list(t, { limit: 2 })).map((e) => e.seq)).toEqual([5, 4]);
    expect((await log.list(t, { limit: 10, before: 3 })).map((e) => e.seq)).toEqual([2, 1]);
    expect((await log.list(t, { limit: 10, userId: 'u-1' })).map((e) => e.seq)).toEqual([2]);
    expect((await log.list(t, { limit: 10, action: 'policy.changed' })).map((e) => e.seq)).toEqual([5]);
    expect(await log.list('nobody', { limit: 10 })).toEqual([]);
    expect((await log.list(t, { limit: 1 }))[0]).toMatchObject({ actor: 'cli', action: 'policy.changed', details: {}, targetUserId: null });
  });

  it('hands an entry to the outage journal while the database is away, outside any chain', async () => {
    const written: unknown[] = [];
    let away = true;
    const deferred = new AuditLog(s.durable.db, s.durable.engine, clock, ring, {
      deferred: {
        active: () => away,
        write: async (tenantId: string, input: AuditInput, at: number) => void written.push({ tenantId, input, at }),
      },
    });
    const input: AuditInput = { actor: 'cli', action: 'user.created', targetUserId: 'u9', details: { a: 1 } };
    const entry = await deferred.append('tenant-deferred', input);
    expect(entry).toEqual({
      id: expect.any(String),
      seq: 0,
      at: clock.now(),
      actor: 'cli',
      action: 'user.created',
      targetUserId: 'u9',
      details: { a: 1 },
      hash: '',
    });
    expect(written).toEqual([{ tenantId: 'tenant-deferred', input, at: clock.now() }]);
    expect(await deferred.list('tenant-deferred', { limit: 10 })).toEqual([]);
    expect((await deferred.append('tenant-deferred', { actor: 'cli', action: 'user.created' })).targetUserId).toBeNull();
    away = false;
    expect(await deferred.append('tenant-deferred', input)).toMatchObject({ seq: 1 });
    expect(written).toHaveLength(2);
  });

  describe('retention', () => {
    const prune = (tenantId: string, cutoff: number, limit = 100) => s.durable.db.transaction().execute((trx) => log.prune(trx, tenantId, cutoff, limit));
    const checkpoint = (tenantId: string) => s.durable.db.selectFrom('audit_checkpoints').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();

    it('removes the old entries in order behind a signed checkpoint, and the rest still verifies', async () => {
      const t = await chain(6);
      const cutoff = Number((await row(t, 4)).at);
      expect(await prune(t, cutoff, 2)).toEqual({ pruned: 2 });
      expect(await checkpoint(t)).toMatchObject({ seq: 2, hash: (await row(t, 3)).prev_hash, keyed: 1, key_id: ring.active.id, at: clock.now() });
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 4 });
      expect(await prune(t, cutoff)).toEqual({ pruned: 1 });
      expect((await checkpoint(t))!.seq).toBe(3);
      expect(await prune(t, cutoff)).toEqual({ pruned: 0 });
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 3 });
      expect((await log.list(t, { limit: 10 })).map((e) => e.seq)).toEqual([6, 5, 4]);
    });

    it('leaves a chain that does not check out whole, and says why', async () => {
      const t = await chain(4);
      await setRow(t, 2, { actor: 'edited' });
      expect(await prune(t, clock.now() + 1)).toEqual({ pruned: 0, broken: 'entry 2: its contents do not match its hash' });
      expect(await checkpoint(t)).toBeUndefined();
      expect((await log.list(t, { limit: 10 })).length).toBe(4);
    });

    it('catches a forged or moved checkpoint, and one signed with a key it does not hold', async () => {
      const t = await chain(4);
      expect(await prune(t, Number((await row(t, 3)).at))).toEqual({ pruned: 2 });
      await s.durable.db.updateTable('audit_checkpoints').set({ seq: 1 }).where('tenant_id', '=', t).execute();
      expect(await log.verify(t)).toMatchObject({
        intact: false,
        unverifiable: false,
        seq: 1,
        reason: 'the retention checkpoint at entry 1 does not match its signature',
      });
      expect(await prune(t, clock.now() + 1)).toEqual({ pruned: 0, broken: 'the retention checkpoint at entry 1 does not match its signature' });
      await s.durable.db.updateTable('audit_checkpoints').set({ seq: 2 }).where('tenant_id', '=', t).execute();
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 2 });
      const stranger = new AuditLog(s.durable.db, s.durable.engine, clock, new KeyRing(randomBytes(32)));
      expect(await stranger.verify(t)).toMatchObject({
        intact: false,
        unverifiable: true,
        seq: 2,
        reason: expect.stringMatching(/^the retention checkpoint at entry 2 was signed with master key/),
      });
      // A missing checkpoint: the chain then starts at the genesis, and its first entries are missing.
      await s.durable.db.deleteFrom('audit_checkpoints').where('tenant_id', '=', t).execute();
      expect(await log.verify(t)).toMatchObject({ intact: false, seq: 1, reason: 'entries 1 to 2 are missing' });
    });

    it('refuses an unkeyed entry right after a keyed checkpoint (a downgrade past the cut)', async () => {
      const t = await chain(3);
      expect(await prune(t, Number((await row(t, 3)).at))).toEqual({ pruned: 2 });
      const third = await row(t, 3);
      const downgraded = unkeyed(third);
      await setRow(t, 3, downgraded);
      await setHead(t, { hash: downgraded.hash, key_id: null });
      expect(await log.verify(t)).toMatchObject({
        intact: false,
        unverifiable: false,
        seq: 3,
        reason: 'it is not keyed, yet an earlier entry is: an unkeyed entry cannot follow a keyed one',
      });
    });

    it('cuts through the legacy unkeyed part of a chain keyed later, and the unkeyed entries left still verify', async () => {
      const t = await chain(3);
      let prev = '0'.repeat(64);
      for (let seq = 1; seq <= 3; seq++) {
        const relinked = { ...(await row(t, seq)), prev_hash: prev };
        const hash = entryHash(prev, relinked);
        await setRow(t, seq, { prev_hash: prev, key_id: null, hash });
        prev = hash;
      }
      await setHead(t, { hash: prev, key_id: null });
      expect(await log.keyLegacyChains()).toBeGreaterThanOrEqual(1);
      expect(await prune(t, Number((await row(t, 2)).at))).toEqual({ pruned: 1 });
      expect(await checkpoint(t)).toMatchObject({ seq: 1, keyed: 0 });
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 3 });
      expect(await prune(t, Number((await row(t, 3)).at))).toEqual({ pruned: 1 });
      expect(await log.verify(t)).toMatchObject({ intact: true, entries: 2 });
    });

    it('stops at the first entry made at or after the cutoff', async () => {
      const t = await chain(3);
      expect(await prune(t, Number((await row(t, 1)).at))).toEqual({ pruned: 0 });
      expect(await prune(t, Number((await row(t, 2)).at))).toEqual({ pruned: 1 });
    });
  });

  it('counts entries by the master key that keyed them', async () => {
    const counts = await log.entriesByKey();
    const mine = counts.find((c) => c.keyId === ring.active.id);
    expect(mine!.entries).toBeGreaterThan(10);
    for (const c of counts) expect(typeof c.entries).toBe('number');
  });

  it('finds every entry an actor made about a user since a time, of the actions asked, oldest first, however many followed', async () => {
    const tenantId = `tenant-${++n}`;
    const other = `tenant-${++n}`;
    const by = 'admin-token:t1';
    const add = (t: string, actor: string, action: 'user.updated' | 'user.created' | 'sessions.revoked', userId: string, i: number) => {
      clock.advance(10);
      return log.append(t, { actor, action, targetUserId: userId, details: { i } });
    };
    await add(tenantId, by, 'user.updated', 'u1', 0);
    const since = clock.now() + 1;
    const wanted = [await add(tenantId, by, 'user.created', 'u1', 1), await add(tenantId, by, 'user.updated', 'u1', 2)];
    // Not: another action, another user, another actor, another tenant; and many entries after.
    await add(tenantId, by, 'sessions.revoked', 'u1', 3);
    await add(tenantId, by, 'user.updated', 'u2', 4);
    await add(tenantId, 'user:someone', 'user.updated', 'u1', 5);
    await add(other, by, 'user.updated', 'u1', 6);
    for (let i = 0; i < 30; i++) await add(tenantId, by, 'sessions.revoked', 'u1', 7 + i);
    const found = await log.byActorOn(tenantId, { actor: by, userId: 'u1', actions: ['user.created', 'user.updated'], since });
    expect(found.map((e) => [e.action, e.details.i])).toEqual([
      ['user.created', 1],
      ['user.updated', 2],
    ]);
    expect(found.map((e) => e.id)).toEqual(wanted.map((e) => e.id));
  });
});
