/** Cluster membership: one heartbeat record per process, in Redis or the durable store. */
import type { Redis } from 'ioredis';
import { Type, type Static } from 'typebox';
import type { Db } from '../store/durable/database.ts';
import { parseJson } from '../store/parse-record.ts';

/** Members not heard from for this long are dropped from the list (a restarted node has a new name). */
export const FORGET_AFTER_MS = 60 * 60_000;

const MemberStateSchema = Type.Union([Type.Literal('up'), Type.Literal('draining'), Type.Literal('down')]);
export type MemberState = Static<typeof MemberStateSchema>;

/**
 * What one process says about itself at each heartbeat. Read back with this
 * schema: a record of another release (a rolling upgrade) or a damaged one is
 * left out of the view rather than trusted.
 */
const MemberRecordSchema = Type.Object({
  /** The process: the node's name, plus `#N` for worker N when a node runs several. */
  name: Type.String(),
  /** The node (machine) the process belongs to: losing a node loses all its processes. */
  node: Type.String(),
  state: MemberStateSchema,
  /** Password sign-ins per second this process can carry (its share of the node's). */
  capacityPerSecond: Type.Number(),
  /** Password checks per second over its last heartbeat interval. */
  loadPerSecond: Type.Number(),
  /** Epoch ms of the heartbeat. */
  lastSeen: Type.Number(),
  /** How often it promised to beat, so readers know when it is overdue. */
  heartbeatMs: Type.Number(),
});
export type MemberRecord = Static<typeof MemberRecordSchema>;
const parseMember = (json: string) => parseJson(MemberRecordSchema, json);

/**
 * Where heartbeats are kept: one Redis hash for the cluster when Redis is
 * configured, the durable store otherwise or while Redis is away. Readers
 * merge both and keep each member's latest record, so a member that moved to
 * the database during a Redis outage is not lost, nor shown twice.
 */
export class Membership {
  private static readonly KEY = 'cluster:members';

  constructor(
    private readonly db: Db,
    private readonly redis: Redis | undefined,
  ) {}

  async announce(record: MemberRecord): Promise<void> {
    if (this.redis) {
      try {
        // The hash goes away an hour after the last heartbeat of any member.
        const results = await this.redis.multi().hset(Membership.KEY, record.name, JSON.stringify(record)).pexpire(Membership.KEY, FORGET_AFTER_MS).exec();
        const failed = results?.find(([err]) => err);
        if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
        return;
      } catch {
        // Redis is away: the database keeps the heartbeat.
      }
    }
    const row = { name: record.name, record: JSON.stringify(record), last_seen: record.lastSeen };
    await this.db
      .insertInto('cluster_members')
      .values(row)
      .onConflict((oc) => oc.column('name').doUpdateSet({ record: row.record, last_seen: row.last_seen }))
      .execute();
  }

  /** Every member heard from since `since` (epoch ms), latest record each. */
  async members(since: number): Promise<MemberRecord[]> {
    const latest = new Map<string, MemberRecord>();
    const keep = (record: MemberRecord | undefined) => {
      if (!record) return;
      const known = latest.get(record.name);
      if (record.lastSeen >= since && (!known || known.lastSeen < record.lastSeen)) latest.set(record.name, record);
    };
    const [fromRedis, fromDb] = await Promise.allSettled([
      this.redis ? this.redis.hgetall(Membership.KEY) : Promise.resolve({}),
      this.db.selectFrom('cluster_members').select('record').where('last_seen', '>=', since).execute(),
    ]);
    if (fromRedis.status === 'fulfilled') for (const json of Object.values(fromRedis.value as Record<string, string>)) keep(parseMember(json));
    if (fromDb.status === 'fulfilled') for (const row of fromDb.value) keep(parseMember(row.record));
    if (fromRedis.status === 'rejected' && fromDb.status === 'rejected') throw fromDb.reason;
    return [...latest.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Forgets members not heard from since `before`: a restarted node comes back under a new name. */
  async prune(before: number): Promise<void> {
    if (this.redis) {
      const all = await this.redis.hgetall(Membership.KEY).catch(() => ({}) as Record<string, string>);
      const stale = Object.entries(all)
        .filter(([, json]) => (parseMember(json)?.lastSeen ?? 0) < before)
        .map(([name]) => name);
      if (stale.length > 0) await this.redis.hdel(Membership.KEY, ...stale).catch(() => 0);
    }
    await this.db.deleteFrom('cluster_members').where('last_seen', '<', before).execute();
  }
}
