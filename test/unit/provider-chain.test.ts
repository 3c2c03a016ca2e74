import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChannelDown, ProviderChain, type DeliveryEvents } from '../../src/delivery/provider-chain.ts';
import { ProviderFailure, type DeliveryProvider } from '../../src/delivery/provider.ts';
import type { BreakerSettings } from '../../src/delivery/delivery-config.ts';

type Outcome = 'ok' | 'unavailable' | 'rejected' | 'hang' | 'deaf';

/** A provider whose next answers the test sets. */
function fakeProvider(name: string) {
  const state = { outcome: 'ok' as Outcome, calls: 0 };
  const provider: DeliveryProvider = {
    name,
    type: 'fake',
    channel: 'sms',
    async send(_message, signal) {
      state.calls++;
      if (state.outcome === 'unavailable') throw new ProviderFailure('unavailable', 'HTTP 503');
      if (state.outcome === 'rejected') throw new ProviderFailure('rejected', 'HTTP 400');
      // Deaf: never answers, and takes no notice of the abort signal (a server keeping the conversation alive).
      if (state.outcome === 'deaf') await new Promise(() => {});
      if (state.outcome === 'hang')
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new ProviderFailure('unavailable', 'timed out'))));
    },
  };
  return { provider, state };
}

const settings: BreakerSettings = { timeoutMs: 100, errorPercent: 50, volumeThreshold: 10, consecutiveFailures: 3, windowMs: 60_000, resetAfterMs: 200 };
const message = { channel: 'sms' as const, to: '+447700900123', text: 'x' };
const quiet: DeliveryEvents = { attempt: () => {}, breaker: () => {} };
const chains: ProviderChain[] = [];
const chainOf = (...providers: DeliveryProvider[]) => {
  const chain = new ProviderChain(
    'sms',
    providers.map((provider) => ({ provider, breaker: settings })),
    quiet,
  );
  chains.push(chain);
  return chain;
};
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(chains.splice(0).map((c) => c.close()));
});

describe('provider chain', () => {
  it('moves on to the next provider when one fails, within the same send', async () => {
    const a = fakeProvider('a');
    const b = fakeProvider('b');
    a.state.outcome = 'unavailable';
    expect(await chainOf(a.provider, b.provider).send(message)).toBe('b');
    expect([a.state.calls, b.state.calls]).toEqual([1, 1]);
  });

  it('opens after three failures in a row even after many successes, then skips the provider without calling it', async () => {
    const a = fakeProvider('a');
    const b = fakeProvider('b');
    const chain = chainOf(a.provider, b.provider);
    for (let i = 0; i < 50; i++) await chain.send(message);
    a.state.outcome = 'hang';
    for (let i = 0; i < 3; i++) expect(await chain.send(message)).toBe('b');
    expect(chain.health().providers[0]!.state).toBe('open');
    const calls = a.state.calls;
    expect(await chain.send(message)).toBe('b');
    expect(a.state.calls).toBe(calls);
  });

  it('sends in the background only through a closed breaker, gives up at the timeout even on a deaf provider, and never counts it', async () => {
    const a = fakeProvider('a');
    const b = fakeProvider('b');
    const chain = chainOf(a.provider, b.provider);
    a.state.outcome = 'deaf';
    for (let i = 0; i < 5; i++) expect(await chain.send(message, { background: true })).toBe('b');
    expect(chain.health().providers[0]!.state).toBe('closed');
    a.state.outcome = 'unavailable';
    b.state.outcome = 'unavailable';
    for (let i = 0; i < 5; i++) await expect(chain.send(message, { background: true })).rejects.toBeInstanceOf(ChannelDown);
    expect(chain.health().state).toBe('up');
    // Codes do count; with the breakers open, a background send skips them without a call.
    for (let i = 0; i < 3; i++) await expect(chain.send(message)).rejects.toBeInstanceOf(ChannelDown);
    expect(chain.health().state).toBe('down');
    const calls = a.state.calls + b.state.calls;
    await expect(chain.send(message, { background: true })).rejects.toBeInstanceOf(ChannelDown);
    expect(a.state.calls + b.state.calls).toBe(calls);
  });

  it('does not count refused destinations against the provider', async () => {
    const a = fakeProvider('a');
    const chain = chainOf(a.provider);
    a.state.outcome = 'rejected';
    for (let i = 0; i < 20; i++) await expect(chain.send(message)).rejects.toBeInstanceOf(ChannelDown);
    expect(chain.health()).toEqual({ state: 'up', providers: [{ name: 'a', type: 'fake', state: 'closed' }] });
  });

  it('is unavailable with every breaker open, and lets one probe through after the reset time', async () => {
    // The breaker's reset is a timer inside opossum: faked, so the test moves time instead of waiting for it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const a = fakeProvider('a');
    const chain = chainOf(a.provider);
    a.state.outcome = 'unavailable';
    for (let i = 0; i < 3; i++) await expect(chain.send(message)).rejects.toBeInstanceOf(ChannelDown);
    expect(chain.available).toBe(false);
    expect(chain.health().state).toBe('down');
    await expect(chain.send(message)).rejects.toThrow(/breaker open/);

    vi.advanceTimersByTime(settings.resetAfterMs - 1);
    expect(chain.available).toBe(false);
    vi.advanceTimersByTime(1);
    expect(chain.available).toBe(true);
    expect(chain.health().providers[0]!.state).toBe('half-open');
    // A failed probe opens it again at once.
    await expect(chain.send(message)).rejects.toBeInstanceOf(ChannelDown);
    expect(chain.available).toBe(false);

    vi.advanceTimersByTime(settings.resetAfterMs - 1);
    await expect(chain.send(message)).rejects.toThrow(/breaker open/);
    vi.advanceTimersByTime(1);
    a.state.outcome = 'ok';
    expect(await chain.send(message)).toBe('a');
    expect(chain.health().state).toBe('up');
  });
});
