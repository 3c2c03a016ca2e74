import { CHANNELS, type Channel, type OutboundMessage } from './channel.ts';
import type { DeliveryConfig, ProviderConfig } from './delivery-config.ts';
import { ProviderChain, type ChannelHealth, type DeliveryEvents, type SendOptions } from './provider-chain.ts';
import type { DeliveryProvider } from './provider.ts';
import { createTwilioProvider } from './providers/twilio.ts';
import { createVonageProvider } from './providers/vonage.ts';
import { createWebhookProvider } from './providers/webhook.ts';
import { createSmtpProvider } from './providers/smtp.ts';
import { loadVendorHttp } from './providers/http.ts';

/** The one place vendors are known: adding a vendor is a file in `providers/`, its config, and one line here. */
function createProvider(channel: Channel, config: ProviderConfig, now: () => number): DeliveryProvider {
  if (config.type !== 'smtp') loadVendorHttp();
  switch (config.type) {
    case 'twilio':
      return createTwilioProvider(channel, config);
    case 'vonage':
      return createVonageProvider(config);
    case 'webhook':
      return createWebhookProvider(channel, config, now);
    case 'smtp':
      return createSmtpProvider(config, config.breaker.timeoutMs);
  }
}

/** What the rest of Steadfast uses of delivery: one `Delivery`, or several behind a canary (config/runtime-config.ts). */
export type DeliveryPort = Pick<Delivery, 'configured' | 'available' | 'send' | 'health'>;

/** Out-of-band delivery over every configured channel. */
export class Delivery {
  private readonly chains: Record<Channel, ProviderChain>;

  constructor(config: DeliveryConfig['channels'], events: DeliveryEvents, now: () => number = Date.now) {
    const chain = (channel: Channel) =>
      new ProviderChain(
        channel,
        config[channel].map((p) => ({ provider: createProvider(channel, p, now), breaker: p.breaker })),
        events,
      );
    this.chains = { sms: chain('sms'), voice: chain('voice'), email: chain('email') };
  }

  /** A channel with at least one provider in the configuration. */
  configured(channel: Channel): boolean {
    return this.chains[channel].configured;
  }

  available(channel: Channel): boolean {
    return this.chains[channel].available;
  }

  /** Sends through the channel's first working provider; throws ChannelDown when none took it. */
  send(message: OutboundMessage, options?: SendOptions): Promise<string> {
    return this.chains[message.channel].send(message, options);
  }

  /** Health of every configured channel. */
  health(): Partial<Record<Channel, ChannelHealth>> {
    return Object.fromEntries(CHANNELS.filter((c) => this.configured(c)).map((c) => [c, this.chains[c].health()]));
  }

  async close(): Promise<void> {
    await Promise.all(CHANNELS.map((c) => this.chains[c].close()));
  }
}
