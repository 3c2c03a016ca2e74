import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import SqliteDatabase from 'better-sqlite3';
import type { KeyRing } from '../../crypto/key-ring.ts';
import { startCheckpointer, type Checkpointer } from '../durable/sqlite-checkpointer.ts';

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
 * A SQLite file in the data dir. An append is written at once (in the same
 * turn as the snapshot write it goes with) and is durable when the promise it
 * returns settles: its caller answers the user only then, so an entry
 * acknowledged to a user survives a crash of the node. Each entry is sealed
 * with the key ring: the journal holds session token hashes and personal data
 * (addresses, user agents) that must not lie around in clear.
 *
 * Group commit, off the event loop: SQLite does not sync on commit
 * (synchronous=NORMAL); the write-ahead log is flushed with fdatasync on
 * libuv's thread pool, one flush for every append made while the previous one
 * was under way. That is what synchronous=FULL does, without its price: one
 * blocking fsync per append (measured at 8 ms median, 28 ms p99 on the bench
 * machine's disk, three per sign-in) held the event loop for a third of each
 * second at the outage bench's load. Checkpoints (which sync too) run in a
 * worker thread of their own, not in the append that crosses the threshold.
 */
export class OutageJournal {
  private readonly sqlite: SqliteDatabase.Database;
  private readonly appendStatement: SqliteDatabase.Statement;
  /** The write-ahead log, opened to flush it (none for an in-memory journal). */
  private readonly wal: number | undefined;
  private flushing: Promise<void> | undefined;
  private nextFlush: Promise<void> | undefined;
  private readonly checkpointer: Checkpointer | undefined;

  constructor(
    file: string,
    private readonly keyRing: KeyRing,
    private readonly node: string,
  ) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.sqlite = new SqliteDatabase(file);
    this.sqlite.pragma('journal_mode = WAL');
    // Commits reach the log without a sync; `durable` flushes it (off the event loop) before anyone is answered.
    this.sqlite.pragma('synchronous = NORMAL');
    this.sqlite.exec(
      'create table if not exists journal (seq integer primary key autoincrement, id text not null unique, at integer not null, sealed text not null)',
    );
    this.appendStatement = this.sqlite.prepare('insert into journal (id, at, sealed) values (?, ?, ?)');
    // The log file exists from the first write on, and stays the same file while this connection is open.
    this.wal = file === ':memory:' ? undefined : openSync(`${file}-wal`, 'r+');
    this.checkpointer = file === ':memory:' ? undefined : startCheckpointer(this.sqlite, file);
  }

  /**
   * Appends entries in one local transaction (all of a database transaction's
   * writes, or none), at once; the promise settles when they are on disk.
   */
  append(at: number, payloads: JournalPayload[]): Promise<void> {
    if (payloads.length === 0) return Promise.resolve();
    this.sqlite.transaction(() => {
      for (const payload of payloads) {
        const id = `${this.node}:${randomUUID()}`;
        this.appendStatement.run(id, at, this.keyRing.seal(JSON.stringify(payload, jsonReplacer), `${CONTEXT}:${id}`));
      }
    })();
    return this.durable();
  }

  /**
   * Settles when everything appended so far is on disk. A flush under way may
   * have started before the latest append, so those who come during it share
   * the next one: one flush per round, however many appends it carries.
   */
  durable(): Promise<void> {
    if (this.wal === undefined) return Promise.resolve();
    if (!this.flushing) {
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
      });
      return this.flushing;
    }
    this.nextFlush ??= this.flushing
      .catch(() => {})
      .then(() => {
        this.nextFlush = undefined;
        return this.durable();
      });
    return this.nextFlush;
  }

  private flush(): Promise<void> {
    const wal = this.wal!;
    return new Promise((resolve, reject) => fdatasync(wal, (error) => (error ? reject(error) : resolve())));
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

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.wal !== undefined) closeSync(this.wal);
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
