/** The out-of-band channels a one-time code can travel over. */
export const CHANNELS = ['sms', 'voice', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];

export const isChannel = (value: string): value is Channel => (CHANNELS as readonly string[]).includes(value);

/**
 * One message for one destination, already rendered for its channel: the
 * text of an SMS, the words a call reads out, or an email. Providers carry it
 * as it is and never log it: it holds a code.
 */
export interface OutboundMessage {
  channel: Channel;
  /** E.164 phone number or email address. */
  to: string;
  text: string;
  /** Email only. */
  subject?: string;
  html?: string;
}
