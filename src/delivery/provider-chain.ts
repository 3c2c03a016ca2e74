/** A channel's providers in order of preference, each behind a timeout and a circuit breaker. */
import CircuitBreaker from 'opossum';
import type { Channel, OutboundMessage } from './channel.ts';
import { ProviderFailure, failureForNetworkError, type DeliveryProvider } from './provider.ts';
import type { BreakerSettings } from './delivery-config.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ProviderHealth {
  name: string;
  type: string;
  state: BreakerState;
}

export interface ChannelHealth {
  /** up: every provider closed; degraded: some open; down: none can take a message now. */
  state: 'up' | 'degraded' | 'down';
  providers: ProviderHealth[];
}

/** What the chain reports, for metrics and logs; never the message. */
export interface DeliveryEvents {
  attempt(channel: Channel, provider: string, outcome: 'delivered' | 'unavailable' | 'rejected' | 'skipped', seconds: number, reason?: string): void;
  breaker(channel: Channel, provider: string, state: BreakerState): void;
}

/** Every provider of the channel failed or was skipped; `reasons` name each, without content. */
export class ChannelDown extends Error {
  constructor(
    readonly channel: Channel,
    readonly reasons: string[],
  ) {
    super(`no ${channel} provider could take the message (${reasons.join('; ')})`);
  }
}

interface Link {
  provider: DeliveryProvider;
  breaker: CircuitBreaker<[OutboundMessage], void>;
  timeoutMs: number;
}

export interface SendOptions {
  /**
   * Mail nobody is waiting for at a page (a security notice, to whatever
   * address an account holds): sent only through a provider whose breaker is
   * closed, and its failures never count against the breaker. An address at
   * a domain whose server stalls then cannot open a provider that everyone's
   * sign-in codes share (round 29: a tenant's admin token did, with passes
   * issued to accounts given such addresses).
   */
  background?: boolean;
}

/**
 * A channel's providers in order of preference, each behind a timeout and a
 * circuit breaker. A send tries them in order within the same request: a
 * failure or timeout moves on to the next, an open breaker is skipped without
 * a call, and after `resetAfterMs` one probe is let through to see whether
 * the provider is back.
 */
export class ProviderChain {
  private readonly links: Link[];

  constructor(
    readonly channel: Channel,
    providers: { provider: DeliveryProvider; breaker: BreakerSettings }[],
    private readonly events: DeliveryEvents,
  ) {
    this.links = providers.map(({ provider, breaker: settings }) => {
      const action = (message: OutboundMessage) => provider.send(message, AbortSignal.timeout(settings.timeoutMs));
      const breaker = new CircuitBreaker(action, {
        timeout: settings.timeoutMs,
        errorThresholdPercentage: settings.errorPercent,
        volumeThreshold: settings.volumeThreshold,
        rollingCountTimeout: settings.windowMs,
        resetTimeout: settings.resetAfterMs,
        // A refused destination says nothing about the provider's health.
        errorFilter: (err: unknown) => err instanceof ProviderFailure && err.kind === 'rejected',
        name: `${channel}:${provider.name}`,
      });
      // opossum opens on the share of failures in its window; this adds the run of failures in a row.
      let inARow = 0;
      breaker.on('success', () => {
        inARow = 0;
      });
      breaker.on('failure', () => {
        if (++inARow >= settings.consecutiveFailures && !breaker.opened) breaker.open();
      });
      breaker.on('open', () => {
        inARow = 0;
        events.breaker(channel, provider.name, 'open');
      });
      breaker.on('halfOpen', () => events.breaker(channel, provider.name, 'half-open'));
      breaker.on('close', () => events.breaker(channel, provider.name, 'closed'));
      return { provider, breaker, timeoutMs: settings.timeoutMs };
    });
  }

  get configured(): boolean {
    return this.links.length > 0;
  }

  /** Whether a send could go out now: some provider is closed, or half-open and waiting for its probe. */
  get available(): boolean {
    return this.links.some((l) => l.breaker.closed || l.breaker.pendingClose);
  }

  /** Sends through the first provider that takes the message; the name of that provider. */
  async send(message: OutboundMessage, options: SendOptions = {}): Promise<string> {
    const reasons: string[] = [];
    for (const { provider, breaker, timeoutMs } of this.links) {
      // A half-open breaker's one probe is kept for a code: a background send waits for it to close.
      if (!breaker.closed && (options.background || !breaker.pendingClose)) {
        this.events.attempt(this.channel, provider.name, 'skipped', 0, 'breaker open');
        reasons.push(`${provider.name}: breaker open`);
        continue;
      }
      const started = performance.now();
      try {
        if (options.background) await withDeadline(provider.send(message, AbortSignal.timeout(timeoutMs)), timeoutMs);
        else await breaker.fire(message);
        this.events.attempt(this.channel, provider.name, 'delivered', (performance.now() - started) / 1000);
        return provider.name;
      } catch (err) {
        const failure = toFailure(err);
        this.events.attempt(this.channel, provider.name, failure.kind, (performance.now() - started) / 1000, failure.reason);
        reasons.push(`${provider.name}: ${failure.reason}`);
      }
    }
    throw new ChannelDown(this.channel, reasons);
  }

  health(): ChannelHealth {
    const providers = this.links.map(({ provider, breaker }) => ({ name: provider.name, type: provider.type, state: stateOf(breaker) }));
    const open = providers.filter((p) => p.state === 'open').length;
    const state = !this.available ? 'down' : open > 0 ? 'degraded' : 'up';
    return { state, providers };
  }

  async close(): Promise<void> {
    for (const { provider, breaker } of this.links) {
      breaker.shutdown();
      await provider.close?.();
    }
  }
}

/**
 * A send given up after `ms` whatever the provider does: the abort signal is a request, and a server that keeps
 * an SMTP conversation alive a line at a time never lets an idle timeout fire (round 30: one notice to such a
 * server held every notice on the node). What the provider does after is its own.
 */
function withDeadline(send: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProviderFailure('unavailable', 'timed out')), ms);
  });
  return Promise.race([send, deadline]).finally(() => clearTimeout(timer));
}

function stateOf(breaker: CircuitBreaker): BreakerState {
  if (breaker.closed) return 'closed';
  return breaker.halfOpen || breaker.pendingClose ? 'half-open' : 'open';
}

function toFailure(err: unknown): ProviderFailure {
  if (err instanceof ProviderFailure) return err;
  const code = (err as { code?: string }).code;
  if (code === 'ETIMEDOUT') return new ProviderFailure('unavailable', 'timed out');
  // Another request's probe is in flight on a half-open breaker.
  if (code === 'EOPENBREAKER') return new ProviderFailure('unavailable', 'breaker open');
  return failureForNetworkError(err);
}
