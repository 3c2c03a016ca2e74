import { sql } from 'kysely';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Clock } from '../../clock.ts';
import type { Db } from '../durable/database.ts';
import type { EphemeralStore, RateLimitOptions } from './ephemeral-store.ts';

const SWEEP_EVERY_MS = 60_000;

/**
 * Ephemeral entries in the durable store's `ephemeral_fallback` table: the
 * tier a Redis-backed node falls back to while Redis is unreachable. Shared by
 * every node on the same database, so flows still move between nodes and
 * single-use values (`take`) stay single-use cluster-wide: `take` is one
 * DELETE … RETURNING, so of racing nodes exactly one gets the row.
 */
export class DurableEphemeralStore implements EphemeralStore {
  readonly kind = 'durable' as const;
  servingFrom = () => 'durable' as const;
  private lastSweep = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async get(key: string): Promise<unknown> {
    const row = await this.db
      .selectFrom('ephemeral_fallback')
      .select('value')
      .where('key', '=', key)
      .where('expires_at', '>', this.clock.now())
      .executeTakeFirst();
    return row ? (JSON.parse(row.value) as unknown) : undefined;
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    this.maybeSweep();
    const expiresAt = this.clock.now() + Math.max(1, Math.ceil(ttlMs));
    const json = JSON.stringify(value);
    await this.db
      .insertInto('ephemeral_fallback')
      .values({ key, value: json, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: json, expires_at: expiresAt }))
      .execute();
  }

  async setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    this.maybeSweep();
    const now = this.clock.now();
    const expiresAt = now + Math.max(1, Math.ceil(ttlMs));
    const json = JSON.stringify(value);
    // An expired row counts as absent: replace it only while it is still expired,
    // so two racing callers cannot both win (the WHERE is checked under the row lock).
    const result = await this.db
      .insertInto('ephemeral_fallback')
      .values({ key, value: json, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value: json, expires_at: expiresAt }).where('ephemeral_fallback.expires_at', '<=', now))
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async take(key: string): Promise<unknown> {
    const row = await this.db.deleteFrom('ephemeral_fallback').where('key', '=', key).returning(['value', 'expires_at']).executeTakeFirst();
    if (!row || Number(row.expires_at) <= this.clock.now()) return undefined;
    return JSON.parse(row.value) as unknown;
  }

  async delete(key: string): Promise<void> {
    await this.db.deleteFrom('ephemeral_fallback').where('key', '=', key).execute();
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    this.maybeSweep();
    const now = this.clock.now();
    const expiresAt = now + Math.max(1, Math.ceil(ttlMs));
    // One statement, so concurrent increments on several nodes never lose a count;
    // an expired counter starts again at 1 with a fresh expiry, as a Redis key would.
    const result = await sql<{ value: string }>`
      insert into ephemeral_fallback (key, value, expires_at) values (${key}, '1', ${expiresAt})
      on conflict (key) do update set
        value = case when ephemeral_fallback.expires_at <= ${now} then '1' else cast(cast(ephemeral_fallback.value as integer) + 1 as text) end,
        expires_at = case when ephemeral_fallback.expires_at <= ${now} then excluded.expires_at else ephemeral_fallback.expires_at end
      returning value`.execute(this.db);
    return Number(result.rows[0]?.value ?? 1);
  }

  async giveBack(key: string): Promise<void> {
    await sql`
      update ephemeral_fallback set value = cast(cast(value as integer) - 1 as text)
      where key = ${key} and expires_at > ${this.clock.now()} and cast(value as integer) > 0`.execute(this.db);
  }

  async raiseTo(key: string, value: number, ttlMs: number): Promise<boolean> {
    this.maybeSweep();
    const now = this.clock.now();
    const expiresAt = now + Math.max(1, Math.ceil(ttlMs));
    const json = JSON.stringify(value);
    // One statement: the WHERE is checked under the row lock, so of racing nodes with the same value one wins.
    const result = await this.db
      .insertInto('ephemeral_fallback')
      .values({ key, value: json, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet({ value: json, expires_at: expiresAt })
          .where((eb) => eb.or([eb('ephemeral_fallback.expires_at', '<=', now), eb(sql<number>`cast(ephemeral_fallback.value as bigint)`, '<', value)])),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Limits are not kept here: the failover store gives each Redis limiter a node-local insurance limiter instead. */
  rateLimiter(options: RateLimitOptions): RateLimiterMemory {
    return new RateLimiterMemory({
      keyPrefix: options.keyPrefix,
      points: options.points,
      duration: options.durationSeconds,
      blockDuration: options.blockSeconds,
    });
  }

  async ping(): Promise<void> {
    await this.db.selectFrom('ephemeral_fallback').select('key').limit(1).execute();
  }

  async close(): Promise<void> {}

  /** Removes expired rows now and then, in the background; a failure only means the next write tries again. */
  private maybeSweep(): void {
    const now = this.clock.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    this.db
      .deleteFrom('ephemeral_fallback')
      .where('expires_at', '<=', now)
      .execute()
      .catch(() => {});
  }
}
