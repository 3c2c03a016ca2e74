import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Clock } from '../../clock.ts';
import type { EphemeralStore, RateLimitOptions } from './ephemeral-store.ts';

interface Entry {
  json: string;
  expiresAt: number;
}

const SWEEP_EVERY_MS = 30_000;

/** The single-node ephemeral store. Values are kept as JSON so callers never share mutable objects. */
export class MemoryEphemeralStore implements EphemeralStore {
  readonly kind = 'memory' as const;
  servingFrom = () => 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  async get(key: string): Promise<unknown> {
    const entry = this.live(key);
    return entry ? (JSON.parse(entry.json) as unknown) : undefined;
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    this.entries.set(key, { json: JSON.stringify(value), expiresAt: this.clock.now() + ttlMs });
  }

  async setIfAbsent(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async take(key: string): Promise<unknown> {
    const entry = this.live(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    return JSON.parse(entry.json) as unknown;
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const entry = this.live(key);
    const next = entry ? Number(JSON.parse(entry.json)) + 1 : 1;
    this.entries.set(key, { json: String(next), expiresAt: entry?.expiresAt ?? this.clock.now() + ttlMs });
    return next;
  }

  async giveBack(key: string): Promise<void> {
    const entry = this.live(key);
    const count = entry ? Number(JSON.parse(entry.json)) : 0;
    if (entry && count > 0) this.entries.set(key, { json: String(count - 1), expiresAt: entry.expiresAt });
  }

  async raiseTo(key: string, value: number, ttlMs: number): Promise<boolean> {
    const entry = this.live(key);
    if (entry && Number(JSON.parse(entry.json)) >= value) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  rateLimiter(options: RateLimitOptions): RateLimiterMemory {
    return new RateLimiterMemory({
      keyPrefix: options.keyPrefix,
      points: options.points,
      duration: options.durationSeconds,
      blockDuration: options.blockSeconds,
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
