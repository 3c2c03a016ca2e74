import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, type Selectable } from 'kysely';
import type { KeyRing } from '../../crypto/key-ring.ts';
import type { Db } from '../durable/database.ts';
import { migrateToLatest } from '../durable/database.ts';
import type { Database } from '../durable/schema.ts';

/** The tables sign-in needs to verify a returning user, and nothing else (no events, audit, tokens, OIDC records). */
export const SNAPSHOT_TABLES = [
  'tenants',
  'users',
  'credentials',
  'recovery_codes',
  'access_passes',
  'apps',
  'sessions',
  'remembered_devices',
  'oidc_keys',
] as const;
export type SnapshotTable = (typeof SNAPSHOT_TABLES)[number];
/** Tables the change feed names by `id` (oidc_keys rotate rarely: the periodic full copy carries them). */
export const FED_TABLES = ['tenants', 'users', 'credentials', 'recovery_codes', 'access_passes', 'apps', 'sessions', 'remembered_devices'] as const;
export type FedTable = (typeof FED_TABLES)[number];

const FILE_CONTEXT = 'fallback-snapshot:v1';
const COPY_BATCH = 2000;

/**
 * The node's local copy of what verification needs, for sign-in while the
 * database does not answer (issue 12). An in-memory SQLite database with the
 * full schema (so every query the domain makes runs unchanged) holding only
 * SNAPSHOT_TABLES. Secrets in those rows are what the database holds: sealed
 * TOTP secrets and destinations, Argon2id hashes, token hashes, never clear.
 * On disk it is one file, the whole database sealed with the key ring
 * (AES-256-GCM, the master key's envelope), so a copied file opens nowhere
 * without the master key, and a torn or edited file does not open at all.
 */
export class FallbackSnapshot {
  readonly db: Db;
  /** Clock ms of the database state this copy reflects (last full copy or change-feed poll that reached the database). */
  syncedAt = 0;
  private dirty = false;
  private saving: Promise<boolean> = Promise.resolve(false);

  private constructor(readonly sqlite: SqliteDatabase.Database) {
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  }

  /** An empty snapshot with the current schema. */
  static async create(): Promise<FallbackSnapshot> {
    return FallbackSnapshot.prepare(new SqliteDatabase(':memory:'));
  }

  /** The snapshot sealed in `file`, or undefined when there is none or it does not open with this key ring. */
  static async restore(file: string, keyRing: KeyRing): Promise<FallbackSnapshot | undefined> {
    if (!existsSync(file)) return undefined;
    try {
      const { syncedAt, sealed } = readSealedFile(readFileSync(file));
      const snapshot = await FallbackSnapshot.prepare(new SqliteDatabase(keyRing.open(sealed, FILE_CONTEXT)));
      snapshot.syncedAt = syncedAt;
      return snapshot;
    } catch {
      return undefined;
    }
  }

  private static async prepare(sqlite: SqliteDatabase.Database): Promise<FallbackSnapshot> {
    // A partial copy: rows may name rows the snapshot does not hold (events, audit).
    sqlite.pragma('foreign_keys = OFF');
    const snapshot = new FallbackSnapshot(sqlite);
    await migrateToLatest(snapshot.db, 'sqlite');
    return snapshot;
  }

  /** Replaces the whole copy with the database's current rows (at start, and now and then as a safety net). */
  async copyFrom(source: Db, at: number): Promise<void> {
    const fresh: { table: SnapshotTable; rows: Record<string, unknown>[] }[] = [];
    for (const table of SNAPSHOT_TABLES) fresh.push({ table, rows: await readAll(source, table, at) });
    // Swapped in one SQLite transaction: a reader never sees half a copy.
    this.sqlite.transaction(() => {
      for (const { table, rows } of fresh) {
        this.sqlite.prepare(`delete from ${table}`).run();
        for (const row of rows) this.upsertRow(table, row);
      }
    })();
    this.syncedAt = at;
    this.dirty = true;
  }

  /** Brings rows named by the change feed up to date: present ones replaced, vanished (or no longer wanted) ones removed. */
  async refreshRows(source: Db, table: FedTable, ids: string[], at: number): Promise<void> {
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < ids.length; i += 500) rows.push(...(await readSome(source, table, ids.slice(i, i + 500), at)));
    this.sqlite.transaction(() => {
      const keep = new Set(rows.map((r) => r.id as string));
      for (const id of ids) if (!keep.has(id)) this.sqlite.prepare(`delete from ${table} where id = ?`).run(id);
      for (const row of rows) this.upsertRow(table, row);
    })();
    this.dirty = true;
  }

  /**
   * Writes the sealed file when anything changed since the last save: to a
   * temporary file, then renamed over, so a crash leaves the old file whole.
   * Only the copy of the database image is made on the event loop; sealing
   * and writing run on libuv's thread pool (done in line, they held the event
   * loop for 0.3 to 0.8 s every five seconds on the outage bench, the largest
   * part of its p99). Saves run one after another.
   */
  save(file: string, keyRing: KeyRing): Promise<boolean> {
    const next = this.saving.catch(() => false).then(() => this.write(file, keyRing));
    this.saving = next;
    return next;
  }

  private async write(file: string, keyRing: KeyRing): Promise<boolean> {
    if (!this.dirty) return false;
    this.dirty = false;
    try {
      const syncedAt = this.syncedAt;
      const { head, body } = await keyRing.sealLarge(this.sqlite.serialize(), FILE_CONTEXT);
      await mkdir(dirname(file), { recursive: true });
      // Each worker of a node its own temporary file: they share the data dir.
      const temporary = `${file}.${process.pid}-${threadId}.tmp`;
      await writeFile(temporary, [Buffer.from(`${JSON.stringify({ syncedAt, head })}\n`), body], { mode: 0o600 });
      await rename(temporary, file);
      return true;
    } catch (error) {
      // Not on disk: the next save tries again.
      this.dirty = true;
      throw error;
    }
  }

  /** Marks the copy as changed by a local write (made during an outage), so the next save keeps it. */
  touched(): void {
    this.dirty = true;
  }

  async close(): Promise<void> {
    await this.saving.catch(() => false);
    await this.db.destroy();
  }

  private upsertRow(table: SnapshotTable, row: Record<string, unknown>): void {
    const columns = Object.keys(row);
    const values = columns.map((c) => toSqlite(row[c]));
    this.sqlite.prepare(`insert or replace into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`).run(...values);
  }
}

/**
 * The sealed file: a line of JSON (`syncedAt`, and `head`, the envelope of
 * KeyRing.sealLarge), then the sealed database image as bytes. A file written
 * by an earlier release is one JSON object with the whole sealed value
 * (`data`), and still opens.
 */
function readSealedFile(raw: Buffer): { syncedAt: number; sealed: string } {
  const newline = raw.indexOf(0x0a);
  if (newline < 0) {
    const whole = JSON.parse(raw.toString('utf8')) as { syncedAt: number; data: string };
    return { syncedAt: whole.syncedAt, sealed: whole.data };
  }
  const header = JSON.parse(raw.subarray(0, newline).toString('utf8')) as { syncedAt: number; head: string };
  return { syncedAt: header.syncedAt, sealed: `${header.head}.${raw.subarray(newline + 1).toString('base64url')}` };
}

/** Only what verification needs: active credentials, live sessions, passes and devices not revoked. */
function readAll(source: Db, table: SnapshotTable, at: number): Promise<Record<string, unknown>[]> {
  return paged(async (offset) => {
    const rows = await wanted(source, table, at)
      .orderBy((table === 'oidc_keys' ? 'kid' : 'id') as never)
      .limit(COPY_BATCH)
      .offset(offset)
      .execute();
    return rows as Record<string, unknown>[];
  });
}

async function readSome(source: Db, table: FedTable, ids: string[], at: number): Promise<Record<string, unknown>[]> {
  return (await wanted(source, table, at)
    .where('id' as never, 'in', ids as never)
    .execute()) as Record<string, unknown>[];
}

function wanted(source: Db, table: SnapshotTable, at: number) {
  const q = source.selectFrom(table as 'users').selectAll();
  switch (table) {
    case 'credentials':
      return q.where('state' as never, '=', 'active' as never);
    case 'sessions':
      return q.where('revoked_at' as never, 'is', null).where('expires_at' as never, '>', at as never);
    case 'access_passes':
      return q.where('revoked_at' as never, 'is', null).where('expires_at' as never, '>', at as never);
    case 'remembered_devices':
    case 'apps':
      return q.where('revoked_at' as never, 'is', null);
    default:
      return q;
  }
}

async function paged(page: (offset: number) => Promise<Record<string, unknown>[]>): Promise<Record<string, unknown>[]> {
  const all: Record<string, unknown>[] = [];
  for (let offset = 0; ; offset += COPY_BATCH) {
    const rows = await page(offset);
    all.push(...rows);
    if (rows.length < COPY_BATCH) return all;
  }
}

function toSqlite(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

export type SnapshotRow<T extends SnapshotTable> = Selectable<Database[T]>;
