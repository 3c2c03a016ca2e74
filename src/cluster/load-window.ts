import { sql } from 'kysely';
import type { Db } from '../store/durable/database.ts';

/**
 * Password checks per time bucket, summed over every node in the durable
 * store, so the cluster's peak over a long window survives restarts. Each node
 * adds what it counted in a bucket with one upsert at its heartbeat; nodes beat
 * on the same bucket boundaries, so a bucket's total is the cluster's load in
 * that interval.
 */
export class LoadWindow {
  constructor(
    private readonly db: Db,
    readonly bucketMs: number,
  ) {}

  bucketOf(at: number): number {
    return Math.floor(at / this.bucketMs) * this.bucketMs;
  }

  async add(bucketStart: number, checks: number): Promise<void> {
    if (checks <= 0) return;
    await this.db
      .insertInto('cluster_load')
      .values({ bucket_start: bucketStart, checks })
      .onConflict((oc) => oc.column('bucket_start').doUpdateSet({ checks: sql<number>`cluster_load.checks + excluded.checks` }))
      .execute();
  }

  /** The busiest bucket since `since`, in checks per second. */
  async peakPerSecond(since: number): Promise<number> {
    const row = await this.db
      .selectFrom('cluster_load')
      .select((eb) => eb.fn.max('checks').as('peak'))
      .where('bucket_start', '>=', since)
      .executeTakeFirst();
    return Number(row?.peak ?? 0) / (this.bucketMs / 1000);
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('cluster_load').where('bucket_start', '<', before).execute();
  }
}
