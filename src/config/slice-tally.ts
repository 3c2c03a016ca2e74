/** The canary comparison of the whole cluster: each node's slice and rest counts, published to the shared store and summed. */
import type { Redis } from 'ioredis';
import { Type } from 'typebox';
import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import { parseJson } from '../store/parse-record.ts';
import type { Slice, SliceStats } from './slice-health.ts';

const Count = Type.Integer({ minimum: 0 });
const SliceStatsSchema = Type.Object({
  requests: Count,
  serverErrors: Count,
  unavailable: Count,
  steps: Type.Record(Type.String(), Type.Object({ total: Count, failed: Count })),
  deliveries: Type.Object({ attempts: Count, failures: Count }),
  breakerOpens: Count,
  latenciesMs: Type.Array(Type.Number({ minimum: 0 }), { maxItems: 5000 }),
});
/** One node's counts for one canary, since the canary began; read back with this schema (another release's record is left out). */
const TallyRecordSchema = Type.Object({ node: Type.String(), at: Type.Number(), canary: SliceStatsSchema, stable: SliceStatsSchema });

/** Latencies each node publishes per slice: the newest ones, enough for a p99 and small enough to publish every few seconds. */
export const PUBLISHED_LATENCIES = 500;
/** Tallies outlive their canary by this long, then go (a bake lasts at most a day). */
const KEEP_MS = 2 * 86_400_000;

export interface ClusterStats {
  canary: SliceStats;
  stable: SliceStats;
  /** How many node instances' counts are in the sum. */
  nodes: number;
}

/**
 * Where nodes meet to judge a canary together. On each judging round a node
 * publishes what it counted for each canary baking (its counts since the
 * canary began, replacing its previous record), then reads every node's
 * record and judges their sum: every node compares the same cluster-wide
 * figures, so a canary whose failures all land on one node is judged on them
 * by every node, and the nodes agree. (Which node then records the decision
 * is settled by the version's conditional state change, not here.)
 *
 * Kept in one Redis hash per canary when Redis is configured, in the durable
 * store otherwise or while Redis is away; readers merge both and keep each
 * node's latest record, as cluster membership does.
 */
export class SliceTally {
  constructor(
    private readonly deps: {
      db: Db;
      redis: Redis | undefined;
      clock: Clock;
      /** This node instance, unique per process start (two processes of one host must not overwrite each other). */
      node: string;
    },
  ) {}

  private static key(scope: string, version: number): string {
    return `canary:tally:${scope}:${version}`;
  }

  /** Publishes this node's counts for a canary. */
  async publish(scope: string, version: number, stats: Record<Slice, SliceStats>): Promise<void> {
    const at = this.deps.clock.now();
    const record = JSON.stringify({ node: this.deps.node, at, canary: trimmed(stats.canary), stable: trimmed(stats.stable) });
    if (this.deps.redis) {
      try {
        const key = SliceTally.key(scope, version);
        const results = await this.deps.redis.multi().hset(key, this.deps.node, record).pexpire(key, KEEP_MS).exec();
        const failed = results?.find(([err]) => err);
        if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
        return;
      } catch {
        // Redis is away: the database keeps the tally.
      }
    }
    await this.deps.db
      .insertInto('canary_tallies')
      .values({ scope, version, node: this.deps.node, record, updated_at: at })
      .onConflict((oc) => oc.columns(['scope', 'version', 'node']).doUpdateSet({ record, updated_at: at }))
      .execute();
    await this.deps.db
      .deleteFrom('canary_tallies')
      .where('updated_at', '<', at - KEEP_MS)
      .execute();
  }

  /**
   * The sum over every node that published for this canary. `own` (this
   * node's counts now) stands in for its record when publishing failed, so a
   * node never judges without what it saw itself.
   */
  async read(scope: string, version: number, own?: Record<Slice, SliceStats>): Promise<ClusterStats> {
    const latest = new Map<string, { at: number; canary: SliceStats; stable: SliceStats }>();
    const keep = (json: string) => {
      const record = parseJson(TallyRecordSchema, json);
      if (!record) return;
      const known = latest.get(record.node);
      if (!known || known.at < record.at) latest.set(record.node, record);
    };
    const [fromRedis, fromDb] = await Promise.allSettled([
      this.deps.redis ? this.deps.redis.hgetall(SliceTally.key(scope, version)) : Promise.resolve({}),
      this.deps.db.selectFrom('canary_tallies').select('record').where('scope', '=', scope).where('version', '=', version).execute(),
    ]);
    if (fromRedis.status === 'fulfilled') for (const json of Object.values(fromRedis.value as Record<string, string>)) keep(json);
    if (fromDb.status === 'fulfilled') for (const row of fromDb.value) keep(row.record);
    if (fromRedis.status === 'rejected' && fromDb.status === 'rejected') throw fromDb.reason;
    if (own) latest.set(this.deps.node, { at: this.deps.clock.now(), canary: own.canary, stable: own.stable });
    const records = [...latest.values()];
    return { canary: sum(records.map((r) => r.canary)), stable: sum(records.map((r) => r.stable)), nodes: records.length };
  }
}

function trimmed(stats: SliceStats): SliceStats {
  return { ...stats, latenciesMs: stats.latenciesMs.slice(-PUBLISHED_LATENCIES).map((ms) => Math.round(ms)) };
}

function sum(all: SliceStats[]): SliceStats {
  const total: SliceStats = {
    requests: 0,
    serverErrors: 0,
    unavailable: 0,
    steps: {},
    deliveries: { attempts: 0, failures: 0 },
    breakerOpens: 0,
    latenciesMs: [],
  };
  for (const s of all) {
    total.requests += s.requests;
    total.serverErrors += s.serverErrors;
    total.unavailable += s.unavailable;
    for (const [step, c] of Object.entries(s.steps)) {
      const t = (total.steps[step] ??= { total: 0, failed: 0 });
      t.total += c.total;
      t.failed += c.failed;
    }
    total.deliveries.attempts += s.deliveries.attempts;
    total.deliveries.failures += s.deliveries.failures;
    total.breakerOpens += s.breakerOpens;
    total.latenciesMs.push(...s.latenciesMs);
  }
  return total;
}
