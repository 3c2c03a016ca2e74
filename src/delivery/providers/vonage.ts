/** Vonage's SMS API (or a stand-in speaking it). */
import type { OutboundMessage } from '../channel.ts';
import { ProviderFailure, type DeliveryProvider } from '../provider.ts';
import { callVendor, form } from './http.ts';

export interface VonageConfig {
  name: string;
  type: 'vonage';
  /** https://rest.nexmo.com, or a stand-in. */
  baseUrl: string;
  apiKey: string;
  apiSecret: string;
  from: string;
}

// Vonage answers 200 and puts the outcome in each message's `status`. These
// concern the destination or the text; the rest are the account's or Vonage's.
const DESTINATION_STATUSES = new Set(['3', '6', '7', '29']);

interface VonageAnswer {
  messages?: { status?: string }[];
}

/** Vonage (Nexmo) SMS API: POST /sms/json. */
export function createVonageProvider(config: VonageConfig): DeliveryProvider {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  return {
    name: config.name,
    type: 'vonage',
    channel: 'sms',
    async send(message: OutboundMessage, signal: AbortSignal) {
      const body = form({
        api_key: config.apiKey,
        api_secret: config.apiSecret,
        from: config.from,
        // Vonage wants the number without the leading plus.
        to: message.to.replace(/^\+/, ''),
        text: message.text,
        type: /^[\x20-\x7e\n]*$/.test(message.text) ? 'text' : 'unicode',
      });
      const { json } = await callVendor(`${config.baseUrl}/sms/json`, { method: 'POST', headers, body, signal });
      const statuses = ((json as VonageAnswer | undefined)?.messages ?? []).map((m) => String(m.status ?? ''));
      if (statuses.length === 0) throw new ProviderFailure('unavailable', 'no message status in the answer');
      const failed = statuses.find((s) => s !== '0');
      if (failed !== undefined) throw new ProviderFailure(DESTINATION_STATUSES.has(failed) ? 'rejected' : 'unavailable', `status ${failed}`);
    },
  };
}
