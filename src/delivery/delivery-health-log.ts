import type { Clock } from '../clock.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { Channel } from './channel.ts';
import type { DeliveryEvents } from './provider-chain.ts';

const HOUR_MS = 3_600_000;
/** A day and an hour: the oldest hour shown is whole until the chart moves past it. */
const KEEP_MS = 25 * HOUR_MS;

/** One provider's hour: messages it took, and attempts that failed or found its breaker open. */
export interface ProviderHour {
  start: number;
  delivered: number;
  failed: number;
}

export interface ProviderDay {
  channel: Channel;
  provider: string;
  hours: ProviderHour[];
}

/**
 * Each delivery provider's last day, an hour at a time, for the console's
 * overview: counters in the ephemeral store (Redis in a cluster, so every
 * node's sends add up), one per provider, hour and result, that expire on
 * their own after a day. A refused destination says nothing about the
 * provider and is not counted. Counting never holds up or fails a send: an
 * unreachable store loses a count, nothing more. Providers are the
 * deployment's, shared by its tenants, like the status page's channel health.
 */
export class DeliveryHealthLog {
  constructor(private readonly deps: { ephemeral: Pick<EphemeralStore, 'increment' | 'get'>; clock: Clock }) {}

  /** Delivery events that count each attempt; the rest of `next` hears of every event as before. */
  counting(next: DeliveryEvents): DeliveryEvents {
    return {
      attempt: (channel, provider, outcome, seconds, reason) => {
        if (outcome === 'delivered') this.count(channel, provider, 'delivered');
        else if (outcome === 'unavailable' || outcome === 'skipped') this.count(channel, provider, 'failed');
        next.attempt(channel, provider, outcome, seconds, reason);
      },
      breaker: (channel, provider, state) => next.breaker(channel, provider, state),
    };
  }

  /** The last 24 hours (the current one last) of each provider named. */
  async lastDay(providers: { channel: Channel; provider: string }[]): Promise<ProviderDay[]> {
    const until = Math.floor(this.deps.clock.now() / HOUR_MS) * HOUR_MS + HOUR_MS;
    const starts = Array.from({ length: 24 }, (_, i) => until - (24 - i) * HOUR_MS);
    const read = async (key: string) => {
      const value = await this.deps.ephemeral.get(key).catch(() => undefined);
      const n = Number(value);
      return Number.isFinite(n) && n > 0 ? n : 0;
    };
    return Promise.all(
      providers.map(async ({ channel, provider }) => ({
        channel,
        provider,
        hours: await Promise.all(
          starts.map(async (start) => {
            const [delivered, failed] = await Promise.all([read(key(start, channel, provider, 'delivered')), read(key(start, channel, provider, 'failed'))]);
            return { start, delivered, failed };
          }),
        ),
      })),
    );
  }

  private count(channel: Channel, provider: string, result: 'delivered' | 'failed'): void {
    const start = Math.floor(this.deps.clock.now() / HOUR_MS) * HOUR_MS;
    void this.deps.ephemeral.increment(key(start, channel, provider, result), KEEP_MS).catch(() => {});
  }
}

const key = (start: number, channel: Channel, provider: string, result: string) => `delivery-health:${start}:${channel}:${provider}:${result}`;
