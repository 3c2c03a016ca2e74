/** The ephemeral store interface: short-lived shared state any node can read. */
import type { RateLimiterAbstract } from 'rate-limiter-flexible';

export interface RateLimitOptions {
  /** Names the counter family; keys are scoped under it. */
  keyPrefix: string;
  points: number;
  /** Seconds after which an unblocked counter resets. */
  durationSeconds: number;
  /** Seconds a key stays blocked once its points are used up. */
  blockSeconds: number;
}

/**
 * Short-lived shared state: sign-in flows, counters, nonces and rate limits.
 * In-process for a single node, Redis for a cluster, so any node can carry on
 * a flow another node started. Values are JSON.
 */
export interface EphemeralStore {
  readonly kind: 'memory' | 'redis' | 'durable';
  /** Which store takes new entries right now (a cluster member falls back from Redis while it is away). */
  servingFrom(): 'memory' | 'redis' | 'durable';
  /**
   * What is stored under `key`, unchecked: callers parse it with the record's
   * schema (`parseRecord`), so a value of another release or a damaged one reads
   * as absent instead of being trusted by a cast.
   */
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
  /** Stores only when the key is absent; true when this call stored it. */
  setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<boolean>;
  /** Reads and deletes in one step: of racing callers exactly one gets the value. */
  take(key: string): Promise<unknown>;
  delete(key: string): Promise<void>;
  /** Adds one and returns the new count; the expiry is set when the key is created. */
  increment(key: string, ttlMs: number): Promise<number>;
  /**
   * Takes one back from a counter `increment` keeps (something counted that
   * turned out not to happen), keeping its expiry; never below zero, and a
   * counter that has expired stays gone.
   */
  giveBack(key: string): Promise<void>;
  /**
   * Compare-and-set of a high-water mark, in one step: stores `value` (with a
   * fresh expiry) when it is above the number held under `key` or nothing is
   * held, and answers whether it did. Of racing callers with the same value
   * exactly one gets true (a WebAuthn signature counter seen on two nodes).
   */
  raiseTo(key: string, value: number, ttlMs: number): Promise<boolean>;
  rateLimiter(options: RateLimitOptions): RateLimiterAbstract;
  ping(): Promise<void>;
  close(): Promise<void>;
}
