import type { Insertable } from 'kysely';
import type { Db } from './database.ts';
import type { Database } from './schema.ts';

type Table = keyof Database;

interface PendingInsert {
  table: Table;
  row: Insertable<Database[Table]>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PendingWrite {
  lockKey: string;
  statement: (db: Db) => Promise<unknown>;
  result?: unknown;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
}

const MAX_BATCH = 200;

/**
 * Group commit for the writes of the sign-in hot path: every write asked for
 * during one turn of the event loop is made in a single transaction, and each
 * caller's promise settles when that transaction has committed. Nobody is told
 * "written" (or "yours") before it is, but ten concurrent sign-ins cost one
 * commit instead of thirty, and on SQLite the commit is most of a write's price.
 *
 * - `insert`: rows that are only ever inserted (sessions, sign-in events), one
 *   multi-row INSERT per table.
 * - `write`: a guarded statement whose outcome its caller needs (a TOTP step
 *   claimed: `UPDATE … WHERE last_step < step`). It is its own statement, so
 *   its guard is checked against every write committed before it, this batch's
 *   included: of two claims of one step, in one batch or in two, exactly one
 *   updates the row. On PostgreSQL the row stays locked until the commit, so a
 *   claim from another node waits and then sees the step taken. The writes of a
 *   batch run in `lockKey` order, so two nodes' batches lock rows in the same
 *   order and cannot deadlock on each other.
 */
export class GroupCommit {
  private inserts: PendingInsert[] = [];
  private writes: PendingWrite[] = [];
  private scheduled = false;

  constructor(private readonly db: Db) {}

  insert<T extends Table>(table: T, row: Insertable<Database[T]>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.inserts.push({ table, row: row as Insertable<Database[Table]>, resolve, reject });
      this.schedule();
    });
  }

  /** Runs `statement` in the next batch's transaction; settles with its result once that has committed. */
  write<R>(lockKey: string, statement: (db: Db) => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.writes.push({ lockKey, statement, resolve: resolve as (result: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.inserts.length > 0 || this.writes.length > 0) {
      const writes = this.writes.splice(0, MAX_BATCH);
      const inserts = this.inserts.splice(0, MAX_BATCH - writes.length);
      try {
        await this.commit(writes, inserts);
        for (const w of writes) w.resolve(w.result);
        for (const p of inserts) p.resolve();
      } catch (err) {
        for (const w of writes) w.reject(err);
        for (const p of inserts) p.reject(err);
      }
    }
  }

  private async commit(writes: PendingWrite[], inserts: PendingInsert[]): Promise<void> {
    const byTable = new Map<Table, Insertable<Database[Table]>[]>();
    for (const p of inserts) {
      const rows = byTable.get(p.table);
      if (rows) rows.push(p.row);
      else byTable.set(p.table, [p.row]);
    }
    // Stable: claims of the same row keep the order they were asked in.
    writes.sort((a, b) => (a.lockKey < b.lockKey ? -1 : a.lockKey > b.lockKey ? 1 : 0));
    const run = async (db: Db) => {
      for (const w of writes) w.result = await w.statement(db);
      for (const [table, rows] of byTable)
        await db
          .insertInto(table)
          .values(rows as never)
          .execute();
    };
    if (writes.length + byTable.size === 1) await run(this.db);
    else await this.db.transaction().execute(run);
  }
}
