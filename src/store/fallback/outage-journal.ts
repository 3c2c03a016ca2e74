import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import SqliteDatabase from 'better-sqlite3';
import type { KeyRing } from '../../crypto/key-ring.ts';

/** A write made during an outage, to be made again in the database when it returns. */
export type JournalPayload =
  /** A statement compiled for PostgreSQL, parameters as JSON (buffers tagged). */
  | { kind: 'sql'; sql: string; parameters: unknown[] }
  /** An audit entry: appended again through the audit log, so it joins the tenant's chain where it then ends. */
  | { kind: 'audit'; tenantId: string; entry: Record<string, unknown> };

export interface JournalEntry {
  seq: number;
  /** Unique across nodes (node name + random): the database remembers which ids it has applied. */
  id: string;
  at: number;
  payload: JournalPayload;
}

const CONTEXT = 'outage-journal:v1';

/**
 * The node's local journal of writes made while the database was unreachable
 * (sign-in events, sessions, TOTP steps, used codes and passes, audit entries).
 * A SQLite file in the data dir, fsynced on every append (synchronous=FULL), so
 * an entry acknowledged to a user survives a crash of the node. Each entry is
 * sealed with the key ring: the journal holds session token hashes and
 * personal data (addresses, user agents) that must not lie around in clear.
 */
export class OutageJournal {
  private readonly sqlite: SqliteDatabase.Database;
  private readonly appendStatement: SqliteDatabase.Statement;

  constructor(
    file: string,
    private readonly keyRing: KeyRing,
    private readonly node: string,
  ) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.sqlite = new SqliteDatabase(file);
    this.sqlite.pragma('journal_mode = WAL');
    this.sqlite.pragma('synchronous = FULL');
    this.sqlite.exec(
      'create table if not exists journal (seq integer primary key autoincrement, id text not null unique, at integer not null, sealed text not null)',
    );
    this.appendStatement = this.sqlite.prepare('insert into journal (id, at, sealed) values (?, ?, ?)');
  }

  /** Appends entries in one local transaction (all of a database transaction's writes, or none). */
  append(at: number, payloads: JournalPayload[]): void {
    if (payloads.length === 0) return;
    this.sqlite.transaction(() => {
      for (const payload of payloads) {
        const id = `${this.node}:${randomUUID()}`;
        this.appendStatement.run(id, at, this.keyRing.seal(JSON.stringify(payload, jsonReplacer), `${CONTEXT}:${id}`));
      }
    })();
  }

  /** The oldest entries, in the order they were written. */
  head(limit: number): JournalEntry[] {
    const rows = this.sqlite.prepare('select seq, id, at, sealed from journal order by seq limit ?').all(limit) as {
      seq: number;
      id: string;
      at: number;
      sealed: string;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      id: r.id,
      at: r.at,
      payload: JSON.parse(this.keyRing.open(r.sealed, `${CONTEXT}:${r.id}`).toString('utf8'), jsonReviver) as JournalPayload,
    }));
  }

  /**
   * Forgets entries once the database has them, in one local transaction: one
   * fsync for a whole batch instead of one per entry (each blocks the event
   * loop, and a replay forgets thousands while the node serves sign-ins). A
   * crash before it commits only offers the entries again, and the database
   * skips them (`outage_replays`).
   */
  remove(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    const statement = this.sqlite.prepare('delete from journal where seq = ?');
    this.sqlite.transaction(() => {
      for (const seq of seqs) statement.run(seq);
    })();
  }

  get depth(): number {
    return (this.sqlite.prepare('select count(*) as n from journal').get() as { n: number }).n;
  }

  close(): void {
    this.sqlite.close();
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $buffer: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  return value;
}

function jsonReviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && '$buffer' in value) return Buffer.from(String((value as { $buffer: string }).$buffer), 'base64');
  if (value && typeof value === 'object' && '$bigint' in value) return BigInt(String((value as { $bigint: string }).$bigint));
  return value;
}
