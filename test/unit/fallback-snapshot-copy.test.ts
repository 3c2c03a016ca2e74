import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/durable/database.ts';
import { migrateToLatest } from '../../src/store/durable/database.ts';
import type { Database } from '../../src/store/durable/schema.ts';
import { FallbackSnapshot } from '../../src/store/fallback/fallback-snapshot.ts';
import { DurableFailover } from '../../src/store/fallback/durable-failover.ts';
import { OutageJournal } from '../../src/store/fallback/outage-journal.ts';
import { KeyRing } from '../../src/crypto/key-ring.ts';
import { ManualClock } from '../../src/clock.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA';
const open: { close(): Promise<void> }[] = [];

/** A database with the full schema and `count` users named user0…, standing in for PostgreSQL (its reads never leave the thread). */
async function sourceWithUsers(count: number): Promise<{ db: Db; sqlite: SqliteDatabase.Database }> {
  const sqlite = new SqliteDatabase(':memory:');
  sqlite.pragma('foreign_keys = OFF');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrateToLatest(db, 'sqlite');
  const insert = sqlite.prepare(
    'insert into users (id, tenant_id, username, password_hash, status, must_register, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) insert.run(`u${String(i).padStart(5, '0')}`, 't1', `user${i}`, HASH, 'active', 0, 1, 1);
  })();
  open.push({ close: () => db.destroy() });
  return { db, sqlite };
}

async function snapshotWith(usernames: string[]): Promise<FallbackSnapshot> {
  const snapshot = await FallbackSnapshot.create();
  const insert = snapshot.sqlite.prepare(
    'insert into users (id, tenant_id, username, password_hash, status, must_register, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  for (const name of usernames) insert.run(`old-${name}`, 't1', name, HASH, 'active', 0, 1, 1);
  open.push(snapshot);
  return snapshot;
}

const usernames = (snapshot: FallbackSnapshot) =>
  (snapshot.sqlite.prepare('select username from users order by username').all() as { username: string }[]).map((r) => r.username);
const userCount = (snapshot: FallbackSnapshot) => (snapshot.sqlite.prepare('select count(*) as n from users').get() as { n: number }).n;

afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

describe('the fallback snapshot written without holding the event loop', () => {
  it('takes a full copy in slices, giving the event loop back after each, and readers see the old copy until the new one is whole', async () => {
    const source = await sourceWithUsers(1200);
    const snapshot = await snapshotWith(['olive']);
    const seenAtPauses: number[] = [];
    const swapped = await snapshot.copyFrom(source.db, 1000, {
      sliceRows: 500,
      sliceMs: Number.POSITIVE_INFINITY,
      pause: async () => {
        // Between slices the snapshot in use is the old one, whole.
        expect(usernames(snapshot)).toEqual(['olive']);
        seenAtPauses.push(userCount(snapshot));
      },
    });
    expect(swapped).toBe(true);
    // 1,200 users read in pages of 500, written in slices of at most 500: three slices, a pause after each.
    expect(seenAtPauses).toEqual([1, 1, 1]);
    expect(userCount(snapshot)).toBe(1200);
    expect(usernames(snapshot)).not.toContain('olive');
    expect(snapshot.syncedAt).toBe(1000);
  });

  it('ends a slice when its time is up, before its rows are all written (a slower machine gets smaller slices)', async () => {
    const source = await sourceWithUsers(1200);
    const snapshot = await snapshotWith([]);
    let pauses = 0;
    await snapshot.copyFrom(source.db, 1000, {
      sliceRows: 500,
      // No time at all: every slice writes one step of 50 rows (at least one step is always written).
      sliceMs: 0,
      pause: async () => {
        pauses++;
      },
    });
    expect(pauses).toBe(1200 / 50);
    expect(userCount(snapshot)).toBe(1200);
  });

  it('lets other callbacks run while a copy is under way, even when every read answers at once', async () => {
    const source = await sourceWithUsers(1200);
    const snapshot = await snapshotWith([]);
    let copying = true;
    let ranDuringCopy = false;
    setImmediate(() => (ranDuringCopy = copying));
    await snapshot.copyFrom(source.db, 1000);
    copying = false;
    expect(ranDuringCopy).toBe(true);
    expect(userCount(snapshot)).toBe(1200);
  });

  it('drops a copy it may not swap in (the node began signing in from the snapshot meanwhile) and keeps the one in use', async () => {
    const source = await sourceWithUsers(10);
    const snapshot = await snapshotWith(['olive']);
    snapshot.syncedAt = 5;
    expect(await snapshot.copyFrom(source.db, 1000, { swapIf: () => false })).toBe(false);
    expect(usernames(snapshot)).toEqual(['olive']);
    expect(snapshot.syncedAt).toBe(5);
  });

  it('brings rows named by the change feed up to date in slices: changed ones replaced, vanished ones removed', async () => {
    const source = await sourceWithUsers(1200);
    const snapshot = await snapshotWith([]);
    await snapshot.copyFrom(source.db, 1000);
    source.sqlite.prepare("update users set username = 'renamed' where id = 'u00007'").run();
    source.sqlite.prepare("delete from users where id in ('u00001', 'u00002')").run();
    const ids = (source.sqlite.prepare('select id from users').all() as { id: string }[]).map((r) => r.id).concat(['u00001', 'u00002']);
    let pauses = 0;
    await snapshot.refreshRows(source.db, 'users', ids, 2000, {
      sliceRows: 500,
      sliceMs: Number.POSITIVE_INFINITY,
      pause: async () => {
        pauses++;
      },
    });
    // 1,200 ids in slices of 500: a pause after each.
    expect(pauses).toBe(3);
    expect(userCount(snapshot)).toBe(1198);
    expect(usernames(snapshot)).toContain('renamed');
    expect(snapshot.sqlite.prepare("select 1 from users where id in ('u00001', 'u00002')").all()).toEqual([]);
  });
});

describe('a full copy beside the change feed', () => {
  it('brings a row the feed named during the copy up to date in the new copy (it may have been read before it changed)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steadfast-copy-feed-'));
    const source = await sourceWithUsers(1200);
    // The feed's table as PostgreSQL has it (its triggers are PostgreSQL's; here the test writes the feed).
    source.sqlite.exec('create table change_feed (seq integer primary key autoincrement, tbl text not null, row_id text not null, at integer not null)');
    const failover = new DurableFailover({
      clock: new ManualClock(),
      keyRing: new KeyRing(randomBytes(32)),
      node: 'node-a',
      snapshotFile: join(dir, 'snapshot.sealed'),
      journal: new OutageJournal(':memory:', new KeyRing(randomBytes(32)), 'node-a'),
    });
    try {
      await failover.start(source.db);
      const copying = failover.fullCopy();
      // The copy has read the users and writes them in slices; meanwhile a user is renamed and the feed polled.
      await new Promise((resolve) => setImmediate(resolve));
      source.sqlite.prepare("update users set username = 'renamed' where id = 'u00007'").run();
      source.sqlite.prepare("insert into change_feed (tbl, row_id, at) values ('users', 'u00007', 1)").run();
      await failover.pollOnce();
      await copying;
      expect(failover.snapshot!.sqlite.prepare("select username from users where id = 'u00007'").get()).toEqual({ username: 'renamed' });
      expect(userCount(failover.snapshot!)).toBe(1200);
    } finally {
      await failover.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
