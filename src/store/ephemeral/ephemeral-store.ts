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
  readonly kind: 'memory' | 'redis';
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
  rateLimiter(options: RateLimitOptions): RateLimiterAbstract;
  ping(): Promise<void>;
  close(): Promise<void>;
}
