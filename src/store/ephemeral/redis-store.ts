// Compare-and-set of a high-water mark: a script runs alone in Redis, so two
// nodes offering the same counter cannot both see it as new.
const RAISE_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

// DECR keeps the key's expiry; a key that is gone is not brought back at -1.
const GIVE_BACK_SCRIPT = `
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0`;

/** The cluster ephemeral store on Redis. */
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { EphemeralStore, RateLimitOptions } from './ephemeral-store.ts';

export interface RedisStoreOptions {
  url: string;
  /** Prefixes every key, so several deployments or test runs can share one Redis. */
  namespace?: string;
  commandTimeoutMs?: number;
  /**
   * Start even when Redis does not answer yet (the client keeps reconnecting):
   * a node with a fallback for Redis starts during an outage.
   */
  startWithoutRedis?: boolean;
}

// INCR and set the expiry only on creation, atomically: a plain INCR + PEXPIRE
// pair could leave a counter without expiry if the node died between the two.
const INCREMENT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/** The cluster ephemeral store on Redis. Commands fail fast instead of queueing while Redis is away. */
export class RedisEphemeralStore implements EphemeralStore {
  readonly kind = 'redis' as const;
  servingFrom = () => 'redis' as const;
  readonly client: Redis;

  private constructor(client: Redis) {
    this.client = client;
  }

  static async connect(options: RedisStoreOptions): Promise<RedisEphemeralStore> {
    const client = new Redis(options.url, {
      keyPrefix: `${options.namespace ?? 'sf'}:`,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      connectTimeout: 3000,
      // Commands issued in the same event-loop turn go out in one write: a
      // second-factor check makes about ten, and one syscall each was the
      // largest single cost of a TOTP verification on Redis (measured with
      // `npm run bench -- signin`).
      enableAutoPipelining: true,
    });
    // Connection errors surface on the commands that fail; the client keeps reconnecting.
    client.on('error', () => {});
    if (options.startWithoutRedis) client.connect().catch(() => {});
    else await client.connect();
    return new RedisEphemeralStore(client);
  }

  async get(key: string): Promise<unknown> {
    const raw = await this.client.get(key);
    return raw === null ? undefined : (JSON.parse(raw) as unknown);
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.client.set(key, JSON.stringify(value), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    const result = await this.client.set(key, JSON.stringify(value), 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return result === 'OK';
  }

  async take(key: string): Promise<unknown> {
    const raw = await this.client.getdel(key);
    return raw === null ? undefined : (JSON.parse(raw) as unknown);
  }

  async delete(key: string): Promise<void> {
    await this.client.del(key);
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const result = await this.client.eval(INCREMENT_SCRIPT, 1, key, Math.max(1, Math.ceil(ttlMs)));
    return Number(result);
  }

  async giveBack(key: string): Promise<void> {
    await this.client.eval(GIVE_BACK_SCRIPT, 1, key);
  }

  async raiseTo(key: string, value: number, ttlMs: number): Promise<boolean> {
    const result = await this.client.eval(RAISE_SCRIPT, 1, key, JSON.stringify(value), Math.max(1, Math.ceil(ttlMs)));
    return Number(result) === 1;
  }

  rateLimiter(options: RateLimitOptions): RateLimiterRedis {
    return new RateLimiterRedis({
      storeClient: this.client,
      keyPrefix: options.keyPrefix,
      points: options.points,
      duration: options.durationSeconds,
      blockDuration: options.blockSeconds,
      // While Redis is away each node counts in its own memory instead of
      // failing the request: limits then hold per node (an attacker spreading
      // guesses over N nodes gets N times the budget, for the outage only).
      insuranceLimiter: new RateLimiterMemory({
        keyPrefix: options.keyPrefix,
        points: options.points,
        duration: options.durationSeconds,
        blockDuration: options.blockSeconds,
      }),
    });
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
