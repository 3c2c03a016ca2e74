/** Twilio's SMS and voice API (or a stand-in speaking it). */
import type { Channel, OutboundMessage } from '../channel.ts';
import type { DeliveryProvider } from '../provider.ts';
import { basicAuth, callVendor, form } from './http.ts';

export interface TwilioConfig {
  name: string;
  type: 'twilio';
  /** https://api.twilio.com, or a stand-in. */
  baseUrl: string;
  accountSid: string;
  authToken: string;
  from: string;
}

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Twilio's REST API: Messages for SMS, Calls with inline TwiML for voice (the
 * words are said twice, with a pause, so a person can write the code down).
 */
export function createTwilioProvider(channel: Channel, config: TwilioConfig): DeliveryProvider {
  const account = `${config.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}`;
  const headers = {
    authorization: basicAuth(config.accountSid, config.authToken),
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  return {
    name: config.name,
    type: 'twilio',
    channel,
    async send(message: OutboundMessage, signal: AbortSignal) {
      if (channel === 'voice') {
        const say = `<Say>${escapeXml(message.text)}</Say>`;
        const twiml = `<Response>${say}<Pause length="1"/>${say}</Response>`;
        await callVendor(`${account}/Calls.json`, { method: 'POST', headers, body: form({ To: message.to, From: config.from, Twiml: twiml }), signal });
      } else {
        await callVendor(`${account}/Messages.json`, {
          method: 'POST',
          headers,
          body: form({ To: message.to, From: config.from, Body: message.text }),
          signal,
        });
      }
    },
  };
}
