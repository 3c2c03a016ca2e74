/** The cluster ephemeral store on Redis. */
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { EphemeralStore, RateLimitOptions } from './ephemeral-store.ts';

export interface RedisStoreOptions {
  url: string;
  /** Prefixes every key, so several deployments or test runs can share one Redis. */
  namespace?: string;
  commandTimeoutMs?: number;
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
    await client.connect();
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

  rateLimiter(options: RateLimitOptions): RateLimiterRedis {
    return new RateLimiterRedis({
      storeClient: this.client,
      keyPrefix: options.keyPrefix,
      points: options.points,
      duration: options.durationSeconds,
      blockDuration: options.blockSeconds,
    });
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
