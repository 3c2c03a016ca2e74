import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, type Selectable } from 'kysely';
import type { KeyRing } from '../../crypto/key-ring.ts';
import type { Db } from '../durable/database.ts';
import { migrateToLatest, withStatementCache } from '../durable/database.ts';
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
/** Rows read from the database per page of a full copy (keyset pages, one table at a time): a page's rows are parsed in one go. */
const COPY_BATCH = 500;
/**
 * The most rows written into the snapshot per slice (one SQLite transaction)
 * before the event loop is given back, and the most time a slice takes. SQLite
 * runs on the thread that serves requests: a full copy written in one go held
 * it for 83 ms (CPU) at 3,300 rows and for 1.9 s at 50,000 (a statement
 * prepared per row), at start and every quarter of an hour.
 */
export const COPY_SLICE_ROWS = 500;
export const COPY_SLICE_MS = 4;

/** How a long piece of snapshot work gives the event loop back between slices. */
export type Pause = () => Promise<void>;
const nextTurn: Pause = () => new Promise((resolve) => setImmediate(resolve));

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
  /** Clock ms of the database state this copy reflects (last full copy or change-feed poll that reached the database). */
  syncedAt = 0;
  private dirty = false;
  private saving: Promise<boolean> = Promise.resolve(false);
  private current: { sqlite: SqliteDatabase.Database; db: Db; upserts: StatementCache };

  private constructor(
    sqlite: SqliteDatabase.Database,
    /** The schema without rows, as a SQLite image: a full copy starts from it. */
    private readonly emptyImage: Buffer,
  ) {
    this.current = FallbackSnapshot.open(sqlite);
  }

  /** The SQLite database the fallback reads (a full copy replaces it with another). */
  get sqlite(): SqliteDatabase.Database {
    return this.current.sqlite;
  }

  get db(): Db {
    return this.current.db;
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
    // The empty schema's image is made once, at start: migrating a database runs in one turn of the event loop.
    const empty = new SqliteDatabase(':memory:');
    const emptyDb = new Kysely<Database>({ dialect: new SqliteDialect({ database: empty }) });
    await migrateToLatest(emptyDb, 'sqlite');
    const emptyImage = empty.serialize();
    await emptyDb.destroy();
    const snapshot = new FallbackSnapshot(partialCopy(sqlite), emptyImage);
    await migrateToLatest(snapshot.db, 'sqlite');
    return snapshot;
  }

  private static open(sqlite: SqliteDatabase.Database) {
    return { sqlite, db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), upserts: new StatementCache(sqlite) };
  }

  /**
   * Takes the database's current rows again (at start, and now and then as a
   * safety net under the change feed), without holding the event loop: the
   * rows are read a page at a time and written into a new database in slices
   * of `sliceRows`, the event loop given back (`pause`) after each. The new
   * database replaces the one in use in one step, so a reader never sees half
   * a copy; when `swapIf` says no at that moment (the node began signing in
   * from the snapshot meanwhile, and may have written to it), the copy is
   * dropped and the one in use kept. Answers whether it was swapped in.
   */
  async copyFrom(source: Db, at: number, options: SliceOptions & { swapIf?: () => boolean } = {}): Promise<boolean> {
    const inSlices = slicer(options);
    const fresh = FallbackSnapshot.open(partialCopy(new SqliteDatabase(this.emptyImage)));
    let swapped = false;
    try {
      for (const table of SNAPSHOT_TABLES) {
        for await (const rows of pagesOf(source, table, at)) {
          await inSlices(rows.length, (from, to) =>
            fresh.sqlite.transaction(() => {
              for (let i = from; i < to; i++) fresh.upserts.upsert(table, rows[i]!);
            })(),
          );
        }
      }
      if (options.swapIf && !options.swapIf()) return false;
      const previous = this.current;
      this.current = fresh;
      swapped = true;
      this.syncedAt = at;
      this.dirty = true;
      await previous.db.destroy();
      return true;
    } finally {
      if (!swapped) await fresh.db.destroy();
    }
  }

  /**
   * Brings rows named by the change feed up to date: present ones replaced,
   * vanished (or no longer wanted) ones removed, in slices of `sliceRows` with
   * the event loop given back between them (each row is whole at every moment).
   */
  async refreshRows(source: Db, table: FedTable, ids: string[], at: number, options: SliceOptions = {}): Promise<void> {
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < ids.length; i += 500) rows.push(...(await readSome(source, table, ids.slice(i, i + 500), at)));
    const keep = new Set(rows.map((r) => r.id as string));
    const gone = ids.filter((id) => !keep.has(id));
    await slicer(options)(gone.length + rows.length, (from, to) => {
      const { sqlite, upserts } = this.current;
      sqlite.transaction(() => {
        for (let i = from; i < to; i++) {
          if (i < gone.length) upserts.remove(table, gone[i]!);
          else upserts.upsert(table, rows[i - gone.length]!);
        }
      })();
      this.dirty = true;
    });
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
}

export interface SliceOptions {
  /** The most rows per slice (default COPY_SLICE_ROWS). */
  sliceRows?: number;
  /** The most milliseconds per slice (default COPY_SLICE_MS); a slice always writes at least one row. */
  sliceMs?: number;
  pause?: Pause;
}

/**
 * Runs `write(from, to)` over `count` items in slices of at most `sliceRows`
 * items and about `sliceMs` (the clock is read every few rows), pausing
 * between slices: a slower machine gets smaller slices, not longer holds.
 */
function slicer(options: SliceOptions): (count: number, write: (from: number, to: number) => void) => Promise<void> {
  const sliceRows = Math.max(1, options.sliceRows ?? COPY_SLICE_ROWS);
  const sliceMs = options.sliceMs ?? COPY_SLICE_MS;
  const pause = options.pause ?? nextTurn;
  const step = Math.min(sliceRows, 50);
  return async (count, write) => {
    let from = 0;
    while (from < count) {
      const started = performance.now();
      const end = Math.min(count, from + sliceRows);
      let to = from;
      do {
        const next = Math.min(end, to + step);
        write(to, next);
        to = next;
      } while (to < end && performance.now() - started < sliceMs);
      from = to;
      await pause();
    }
  };
}

/** A partial copy: rows may name rows the snapshot does not hold (events, audit). */
function partialCopy(sqlite: SqliteDatabase.Database): SqliteDatabase.Database {
  sqlite.pragma('foreign_keys = OFF');
  return sqlite;
}

/** The snapshot's writes, each statement prepared once per table and set of columns (preparing cost more than the write). */
class StatementCache {
  // The durable store's own cache of prepared statements: the same SQL text reuses its statement.
  private readonly statements: ReturnType<typeof withStatementCache>;

  constructor(sqlite: SqliteDatabase.Database) {
    this.statements = withStatementCache(sqlite);
  }

  upsert(table: SnapshotTable, row: Record<string, unknown>): void {
    const columns = Object.keys(row);
    const text = `insert or replace into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`;
    this.statements.prepare(text).run(...columns.map((c) => toSqlite(row[c])));
  }

  remove(table: FedTable, id: string): void {
    this.statements.prepare(`delete from ${table} where id = ?`).run(id);
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

/** Only what verification needs (active credentials, live sessions, passes and devices not revoked), a keyset page at a time. */
async function* pagesOf(source: Db, table: SnapshotTable, at: number): AsyncGenerator<Record<string, unknown>[]> {
  const key = table === 'oidc_keys' ? 'kid' : 'id';
  let after: unknown;
  for (;;) {
    let query = wanted(source, table, at);
    if (after !== undefined) query = query.where(key as never, '>', after as never);
    const rows = (await query
      .orderBy(key as never)
      .limit(COPY_BATCH)
      .execute()) as Record<string, unknown>[];
    if (rows.length > 0) yield rows;
    if (rows.length < COPY_BATCH) return;
    after = rows.at(-1)![key];
  }
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

function toSqlite(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

export type SnapshotRow<T extends SnapshotTable> = Selectable<Database[T]>;
