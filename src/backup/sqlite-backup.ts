/** Backups of the embedded SQLite store: a consistent copy while the node writes, verified and restored with a manifest. */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from '../store/durable/schema.ts';
import type { Db } from '../store/durable/database.ts';
import { migrations } from '../store/durable/migrations/index.ts';
import { masterKeysNeeded } from './master-keys-needed.ts';

/** Written into every backup, so `verify` and `restore` know what they hold. */
export interface BackupManifest {
  format: 1;
  createdAt: string;
  steadfastVersion: string;
  /** The last migration the backed-up store had. */
  schema: string;
  /** Ids of the master keys the data needs (never the keys). */
  masterKeysNeeded: string[];
}

export interface BackupContents {
  manifest: BackupManifest;
  bytes: number;
  counts: { tenants: number; users: number; credentials: number; signinEvents: number; auditEntries: number };
}

export class BackupError extends Error {}

const MANIFEST_TABLE = 'steadfast_backup';
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A read-only Kysely over an SQLite file, for looking into a backup without changing a byte of it. */
function openReadOnly(path: string): { db: Db; sqlite: SqliteDatabase.Database; close: () => Promise<void> } {
  const sqlite = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, sqlite, close: () => db.destroy() };
}

/**
 * A consistent copy of the embedded store while the node runs: `VACUUM INTO`
 * reads the database in one read transaction (a snapshot; writers go on in
 * the WAL meanwhile) and writes a compact new file. Written beside the target
 * and renamed into place once complete and on disk, so a file at `target` is
 * always a whole backup. The master key is not in the database and so never
 * in a backup: it must be kept on its own.
 */
export async function createSqliteBackup(sourcePath: string, target: string): Promise<BackupContents> {
  if (!existsSync(sourcePath)) throw new BackupError(`no embedded store at ${sourcePath}; check STEADFAST_DATA_DIR`);
  if (existsSync(target)) throw new BackupError(`${target} already exists; choose a new file name`);
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.partial`;
  rmSync(partial, { force: true });
  const source = new SqliteDatabase(sourcePath, { readonly: true, fileMustExist: true });
  try {
    source.pragma('busy_timeout = 10000');
    source.prepare('VACUUM INTO ?').run(partial);
  } finally {
    source.close();
  }
  try {
    const copy = new SqliteDatabase(partial);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: copy }) });
    try {
      const manifest: BackupManifest = {
        format: 1,
        createdAt: new Date().toISOString(),
        steadfastVersion: VERSION,
        schema: lastMigration(copy),
        masterKeysNeeded: await masterKeysNeeded(db),
      };
      copy.exec(`create table ${MANIFEST_TABLE} (key text primary key, value text not null)`);
      copy.prepare(`insert into ${MANIFEST_TABLE} (key, value) values ('manifest', ?)`).run(JSON.stringify(manifest));
      // A backup is one file: no WAL beside it.
      copy.pragma('journal_mode = DELETE');
    } finally {
      await db.destroy();
    }
    const fd = openSync(partial, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(partial, target);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  return inspectBackup(target);
}

/** Checks a backup file whole (SQLite's integrity check, the manifest, a known schema) and says what it holds. */
export async function inspectBackup(path: string): Promise<BackupContents> {
  if (!existsSync(path)) throw new BackupError(`${path} does not exist`);
  let opened: ReturnType<typeof openReadOnly>;
  try {
    opened = openReadOnly(path);
    opened.sqlite.pragma('schema_version');
  } catch (err) {
    throw new BackupError(`${path} is not an SQLite database (${(err as Error).message})`);
  }
  try {
    const { sqlite, db } = opened;
    const integrity = sqlite.pragma('integrity_check') as { integrity_check: string }[];
    if (integrity.length !== 1 || integrity[0]?.integrity_check !== 'ok') {
      throw new BackupError(
        `${path} is damaged: ${integrity
          .slice(0, 3)
          .map((r) => r.integrity_check)
          .join('; ')}`,
      );
    }
    const hasManifest = sqlite.prepare(`select 1 from sqlite_master where type = 'table' and name = ?`).get(MANIFEST_TABLE);
    if (!hasManifest) throw new BackupError(`${path} is not a Steadfast backup (no manifest); make one with steadfast backup create`);
    const row = sqlite.prepare(`select value from ${MANIFEST_TABLE} where key = 'manifest'`).get() as { value: string } | undefined;
    const manifest = JSON.parse(row?.value ?? '{}') as BackupManifest;
    if (manifest.format !== 1) throw new BackupError(`${path} has a backup format this Steadfast does not know`);
    if (!(manifest.schema in migrations)) {
      throw new BackupError(
        `${path} was made by a newer Steadfast (schema ${manifest.schema}, Steadfast ${manifest.steadfastVersion}); restore it with that version or later`,
      );
    }
    const count = async (table: 'tenants' | 'users' | 'credentials' | 'signin_events' | 'audit_log') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      manifest,
      bytes: statSync(path).size,
      counts: {
        tenants: await count('tenants'),
        users: await count('users'),
        credentials: await count('credentials'),
        signinEvents: await count('signin_events'),
        auditEntries: await count('audit_log'),
      },
    };
  } finally {
    await opened.close();
  }
}

/** Opens a backup read-only for further checks (the audit chain), closing it after `use`. */
export async function withBackup<T>(path: string, use: (db: Db) => Promise<T>): Promise<T> {
  const opened = openReadOnly(path);
  try {
    return await use(opened.db);
  } finally {
    await opened.close();
  }
}

/**
 * Puts a checked backup in place as the store at `targetPath`, which must not
 * exist yet (restore goes into an empty data dir). Copied beside it and
 * renamed, so a half-copied store never sits where a node would open it.
 */
export async function restoreSqliteBackup(path: string, targetPath: string): Promise<void> {
  for (const existing of [targetPath, `${targetPath}-wal`, `${targetPath}-shm`]) {
    if (existsSync(existing))
      throw new BackupError(`${existing} exists: restore goes into an empty data dir; move the current one away or point STEADFAST_DATA_DIR at a new one`);
  }
  mkdirSync(dirname(targetPath), { recursive: true, mode: 0o700 });
  const partial = `${targetPath}.restoring`;
  copyFileSync(path, partial);
  try {
    const db = new SqliteDatabase(partial);
    try {
      db.exec(`drop table ${MANIFEST_TABLE}`);
    } finally {
      db.close();
    }
    renameSync(partial, targetPath);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
}

function lastMigration(sqlite: SqliteDatabase.Database): string {
  const row = sqlite.prepare('select name from steadfast_migrations order by name desc limit 1').get() as { name: string } | undefined;
  if (!row) throw new BackupError('the store has no migrations recorded; run steadfast migrate first');
  return row.name;
}
