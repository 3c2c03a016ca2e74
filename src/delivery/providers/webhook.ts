import { createHmac, randomUUID } from 'node:crypto';
import type { Channel, OutboundMessage } from '../channel.ts';
import type { DeliveryProvider } from '../provider.ts';
import { callVendor } from './http.ts';

export interface WebhookConfig {
  name: string;
  type: 'webhook';
  url: string;
  /** Shared with the receiver, which checks X-Steadfast-Signature with it. */
  secret: string;
}

/** `sha256=` and the hex HMAC-SHA256 of the exact request body under the shared secret. */
export const webhookSignature = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/**
 * Any gateway: a JSON POST `{id, channel, to, text, subject?, html?, timestamp}`
 * signed in `X-Steadfast-Signature`. The id lets a receiver drop repeats; the
 * timestamp (seconds) lets it refuse old replays.
 */
export function createWebhookProvider(channel: Channel, config: WebhookConfig, now: () => number): DeliveryProvider {
  return {
    name: config.name,
    type: 'webhook',
    channel,
    async send(message: OutboundMessage, signal: AbortSignal) {
      const body = JSON.stringify({
        id: randomUUID(),
        channel: message.channel,
        to: message.to,
        text: message.text,
        ...(message.subject ? { subject: message.subject, html: message.html } : {}),
        timestamp: Math.floor(now() / 1000),
      });
      await callVendor(config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-steadfast-signature': webhookSignature(config.secret, body), 'user-agent': 'steadfast-delivery' },
        body,
        signal,
      });
    },
  };
}
