/** Opens the durable store (SQLite file or PostgreSQL) with Kysely, and migrates it. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Kysely, Migrator, SqliteDialect, sql, type Dialect, type MigrationResultSet } from 'kysely';
import type { Database } from './schema.ts';
import { migrations } from './migrations/index.ts';
import { startCheckpointer } from './sqlite-checkpointer.ts';
import { OwnSchemaPostgresDialect } from './own-schema-introspector.ts';

export type Db = Kysely<Database>;
export type Engine = 'sqlite' | 'postgres';

export interface DurableStore {
  db: Db;
  /** PostgreSQL itself, never the local fallback (the fallback's own work: change feed, replay, probes). */
  primaryDb?: Db;
  engine: Engine;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDurableOptions {
  /** postgres://… selects PostgreSQL; otherwise the SQLite file at `sqlitePath`. */
  databaseUrl?: string;
  sqlitePath: string;
  /** PostgreSQL only: a schema to work in (tests use one per suite). */
  pgSchema?: string;
  poolSize?: number;
  /** SQLite only: checkpoint the WAL from a worker thread (servers; not one-shot commands). */
  backgroundCheckpoint?: boolean;
  /** PostgreSQL only: wraps the dialect the domain's `db` uses (the outage fallback routes through it). */
  wrapDialect?: (dialect: Dialect) => Dialect;
}

export function openDurableStore(options: OpenDurableOptions): DurableStore {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options);
  return openSqlite(options.sqlitePath, options.backgroundCheckpoint ?? false);
}

function openSqlite(path: string, backgroundCheckpoint: boolean): DurableStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  // WAL lets the CLI read and write while a server runs on the same file;
  // synchronous=NORMAL is durable across process crashes in WAL mode.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const checkpointer = backgroundCheckpoint && path !== ':memory:' ? startCheckpointer(sqlite, path) : undefined;
  return {
    db,
    engine: 'sqlite',
    async ping() {
      sqlite.prepare('select 1').get();
    },
    async close() {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh; preparing costs more than running most
 * of ours. The same SQL text (parameters are bound, never inlined) reuses its
 * prepared statement. better-sqlite3 runs synchronously, so one statement is
 * never used by two queries at once.
 */
export function withStatementCache(sqlite: SqliteDatabase.Database): { close(): void; prepare(text: string): SqliteDatabase.Statement } {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (!statement) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
        statement = sqlite.prepare(text);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

// int8 (bigint) columns hold epoch milliseconds, well inside Number's safe range.
const INT8_OID = 20;

function openPostgres(url: string, options: OpenDurableOptions): DurableStore {
  // Loaded only for PostgreSQL, so a command on the embedded store starts faster.
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 3000,
    statement_timeout: 5000,
    ...(options.pgSchema ? { options: `-c search_path=${options.pgSchema}` } : {}),
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // A client checked out (between two statements of a transaction) when the database goes away emits
  // 'error' with no listener of the pool's: that would crash the node at the very moment its local
  // fallback should take over. The statement in flight still fails, and the fallback sees that.
  pool.on('connect', (client) => client.on('error', () => {}));
  const dialect = new OwnSchemaPostgresDialect({ pool });
  const primaryDb = new Kysely<Database>({ dialect });
  const db = options.wrapDialect ? new Kysely<Database>({ dialect: options.wrapDialect(dialect) }) : primaryDb;
  return {
    db,
    primaryDb,
    engine: 'postgres',
    async ping() {
      await sql`select 1`.execute(primaryDb);
    },
    async close() {
      // The wrapped Kysely shares the pool and leaves ending it to the primary one.
      if (db !== primaryDb) await db.destroy();
      await primaryDb.destroy();
    },
  };
}

/** The migrator over Steadfast's migrations and its own bookkeeping tables (in `schema`, on PostgreSQL). */
export function steadfastMigrator(db: Db, schema?: string): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'steadfast_migrations',
    migrationLockTableName: 'steadfast_migrations_lock',
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
}

export async function migrateToLatest(db: Db, engine: Engine): Promise<MigrationResultSet> {
  // On PostgreSQL the migrator looks for its tables across all schemas: name
  // ours, or another deployment's tables in a neighbouring schema would fool it.
  const schema = engine === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema : undefined;
  const result = await steadfastMigrator(db, schema).migrateToLatest();
  if (result.error) throw result.error instanceof Error ? result.error : new Error(String(result.error));
  return result;
}

/**
 * True when this run applied the migration that keyed the audit chain: the
 * one moment chains written before keying (plain SHA-256) are keyed. Never
 * again afterwards, so a chain an intruder rewrote with plain hashes is not
 * blessed by the next start (see AuditLog.keyLegacyChains).
 */
export function keysAuditChains(result: MigrationResultSet): boolean {
  return (result.results ?? []).some((r) => r.migrationName === AUDIT_KEYING_MIGRATION && r.status === 'Success');
}

export const AUDIT_KEYING_MIGRATION = '006-retention-and-keyed-audit';
