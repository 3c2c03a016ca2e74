import type { Insertable } from 'kysely';
import type { Db } from './database.ts';
import type { Database } from './schema.ts';

type Table = keyof Database;

interface Pending {
  table: Table;
  row: Insertable<Database[Table]>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_BATCH = 200;

/**
 * Group commit for rows that are only ever inserted (sessions, sign-in
 * events): every insert asked for during one turn of the event loop is written
 * in a single transaction, one multi-row INSERT per table, and each caller's
 * promise settles when that transaction has committed. Nobody is told
 * "written" before it is, but ten concurrent sign-ins cost one commit instead
 * of twenty, and on SQLite the commit is most of an insert's price.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly db: Db) {}

  insert<T extends Table>(table: T, row: Insertable<Database[T]>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ table, row: row as Insertable<Database[Table]>, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      try {
        await this.write(batch);
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    const byTable = new Map<Table, Insertable<Database[Table]>[]>();
    for (const p of batch) byTable.set(p.table, [...(byTable.get(p.table) ?? []), p.row]);
    const insertAll = async (db: Db) => {
      for (const [table, rows] of byTable)
        await db
          .insertInto(table)
          .values(rows as never)
          .execute();
    };
    if (byTable.size === 1) await insertAll(this.db);
    else await this.db.transaction().execute(insertAll);
  }
}
