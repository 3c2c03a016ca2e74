import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Clock } from '../../clock.ts';
import type { EphemeralStore, RateLimitOptions } from './ephemeral-store.ts';
import type { RedisEphemeralStore } from './redis-store.ts';

export type EphemeralTierName = 'redis' | 'durable' | 'memory';

export interface FailoverOptions {
  /** How long a tier that failed a command is passed over before it is tried again. */
  retryAfterMs?: number;
  /** Told when the tier that takes new writes changes (metrics, logs). */
  onServingChange?: (tier: EphemeralTierName, reason?: string) => void;
}

interface Tier {
  name: EphemeralTierName;
  store: EphemeralStore;
  /** A cheap local health signal (the Redis client's connection state), checked before each command. */
  connected: () => boolean;
  /** Monotonic ms until which the tier is skipped after a failed command. */
  skipUntil: number;
  /** Clock ms until which the tier may still hold live entries written while it served as the fallback. */
  mayHoldUntil: number;
}

/**
 * The ephemeral store of a cluster member: Redis first, then the durable
 * store's `ephemeral_fallback` table, then this node's memory. New writes go to
 * the first tier that answers; reads and single-use takes also look in the
 * lower tiers while they may still hold entries written during an outage, so
 * a flow or code created while Redis was away keeps working after it returns.
 *
 * Why this order: the durable tier is shared by every node, so flows move
 * between nodes and a `take` stays single-use cluster-wide; node memory is the
 * last resort when both stores are gone (a flow then has to finish on the node
 * that started it, which a load balancer with affinity gives).
 *
 * What it cannot do: entries that were only in Redis when it went away are not
 * readable until it returns (a flow in progress is restarted, a code sent is
 * sent again); counters restart in the tier that takes over. Rate limits are
 * not kept here: each Redis limiter carries a node-local insurance limiter.
 */
export class FailoverEphemeralStore implements EphemeralStore {
  readonly kind = 'redis' as const;
  private readonly tiers: Tier[];
  private readonly retryAfterMs: number;
  private serving: EphemeralTierName = 'redis';

  constructor(
    readonly redis: RedisEphemeralStore,
    fallbacks: { durable?: EphemeralStore; memory: EphemeralStore },
    private readonly clock: Clock,
    private readonly options: FailoverOptions = {},
  ) {
    this.retryAfterMs = options.retryAfterMs ?? 2000;
    const tier = (name: EphemeralTierName, store: EphemeralStore, connected: () => boolean = () => true): Tier => ({
      name,
      store,
      connected,
      skipUntil: 0,
      mayHoldUntil: 0,
    });
    this.tiers = [
      tier('redis', redis, () => redis.client.status === 'ready'),
      ...(fallbacks.durable ? [tier('durable', fallbacks.durable)] : []),
      tier('memory', fallbacks.memory),
    ];
  }

  servingFrom(): EphemeralTierName {
    return this.firstUsable()?.name ?? 'memory';
  }

  async get(key: string): Promise<unknown> {
    for (const tier of this.readable()) {
      const value = await this.attempt(tier, () => tier.store.get(key));
      if (value.ok && value.result !== undefined) return value.result;
    }
    return undefined;
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    const written = await this.write((store) => store.set(key, value, ttlMs), ttlMs);
    // A lower tier may hold an older copy from an outage: it must not come back
    // on a later read or take (a flow consumed here, completed again there).
    await this.clearBelow(written, key);
  }

  async setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    for (const tier of this.readable().slice(1)) {
      const held = await this.attempt(tier, () => tier.store.get(key));
      if (held.ok && held.result !== undefined) return false;
    }
    let stored = false;
    await this.write(async (store) => {
      stored = await store.setIfAbsent(key, value, ttlMs);
    }, ttlMs);
    return stored;
  }

  async take(key: string): Promise<unknown> {
    // Taken from every tier that may hold it, so no copy survives for a second take.
    let found: unknown;
    for (const tier of this.readable()) {
      const value = await this.attempt(tier, () => tier.store.take(key));
      if (value.ok && value.result !== undefined && found === undefined) found = value.result;
    }
    return found;
  }

  async delete(key: string): Promise<void> {
    for (const tier of this.readable()) await this.attempt(tier, () => tier.store.delete(key));
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    let count = 0;
    await this.write(async (store) => {
      count = await store.increment(key, ttlMs);
    }, ttlMs);
    return count;
  }

  /** On every tier that may hold the counter, as `delete` does: a count taken during an outage is given back where it was taken. */
  async giveBack(key: string): Promise<void> {
    for (const tier of this.readable()) await this.attempt(tier, () => tier.store.giveBack(key));
  }

  async raiseTo(key: string, value: number, ttlMs: number): Promise<boolean> {
    // A lower tier may hold a higher mark from an outage (Redis came back empty): it still counts.
    for (const tier of this.readable().slice(1)) {
      const held = await this.attempt(tier, () => tier.store.get(key));
      if (held.ok && typeof held.result === 'number' && held.result >= value) return false;
    }
    let raised = false;
    await this.write(async (store) => {
      raised = await store.raiseTo(key, value, ttlMs);
    }, ttlMs);
    return raised;
  }

  /** Redis-backed, with this node's memory as insurance: limits keep holding (per node) while Redis is away. */
  rateLimiter(options: RateLimitOptions): RateLimiterAbstract {
    return this.redis.rateLimiter(options);
  }

  /** Reports Redis itself: the status page says it is down even while the fallback serves. */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    for (const tier of this.tiers) await tier.store.close();
  }

  private usable(tier: Tier): boolean {
    return tier.connected() && tier.skipUntil <= performance.now();
  }

  private firstUsable(): Tier | undefined {
    return this.tiers.find((t) => this.usable(t));
  }

  /** The first usable tier, then every lower usable tier that may still hold outage entries. */
  private readable(): Tier[] {
    const first = this.firstUsable();
    if (!first) return [];
    const now = this.clock.now();
    return this.tiers.filter((t) => t === first || (this.tiers.indexOf(t) > this.tiers.indexOf(first) && t.mayHoldUntil > now && this.usable(t)));
  }

  private async write(op: (store: EphemeralStore) => Promise<void>, ttlMs: number): Promise<Tier> {
    let lastError: unknown;
    for (const tier of this.tiers) {
      if (!this.usable(tier)) continue;
      const done = await this.attempt(tier, () => op(tier.store));
      if (!done.ok) {
        lastError = done.error;
        continue;
      }
      if (tier !== this.tiers[0]) tier.mayHoldUntil = Math.max(tier.mayHoldUntil, this.clock.now() + ttlMs);
      this.note(tier.name);
      return tier;
    }
    throw lastError instanceof Error ? lastError : new Error('no ephemeral store is answering');
  }

  private async clearBelow(written: Tier, key: string): Promise<void> {
    const now = this.clock.now();
    for (const tier of this.tiers.slice(this.tiers.indexOf(written) + 1)) {
      if (tier.mayHoldUntil > now && this.usable(tier)) await this.attempt(tier, () => tier.store.delete(key));
    }
  }

  private async attempt<R>(tier: Tier, op: () => Promise<R>): Promise<{ ok: true; result: R } | { ok: false; error: unknown }> {
    try {
      return { ok: true, result: await op() };
    } catch (error) {
      // Monotonic time, not the injected clock: this is a retry back-off for a
      // connection, and a test's frozen clock must not keep a tier out forever.
      tier.skipUntil = performance.now() + this.retryAfterMs;
      this.note(this.firstUsable()?.name ?? 'memory', (error as Error).message);
      return { ok: false, error };
    }
  }

  private note(tier: EphemeralTierName, reason?: string): void {
    if (tier === this.serving) return;
    this.serving = tier;
    this.options.onServingChange?.(tier, reason);
  }
}
