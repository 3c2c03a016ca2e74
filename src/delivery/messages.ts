/** The words of every code message, per channel, naming who sends it and how long it lives. */
import type { Channel, OutboundMessage } from './channel.ts';

export interface CodeMessage {
  channel: Channel;
  to: string;
  code: string;
  /** Shown so the person knows who is asking. */
  tenantName: string;
  /** The host of the sign-in pages, for the origin-bound SMS line. */
  host: string;
  lifetimeMinutes: number;
}

const spoken = (code: string) => code.split('').join(', ');
const escapeHtml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The words of a code message for its channel. The SMS ends with the
 * origin-bound line `@host #code` (WICG sms-one-time-codes), which lets
 * browsers fill the code in on that site only and nowhere else.
 */
export function renderCodeMessage(m: CodeMessage): OutboundMessage {
  const base = { channel: m.channel, to: m.to };
  if (m.channel === 'sms') {
    return {
      ...base,
      text: `${m.code} is your ${m.tenantName} verification code. It expires in ${m.lifetimeMinutes} minutes. Never share it.\n\n@${m.host} #${m.code}`,
    };
  }
  if (m.channel === 'voice') {
    return { ...base, text: `This is ${m.tenantName}. Your verification code is ${spoken(m.code)}. Again, your code is ${spoken(m.code)}.` };
  }
  const text = `Your ${m.tenantName} verification code is ${m.code}.\n\nIt expires in ${m.lifetimeMinutes} minutes. If you did not try to sign in, ignore this email and consider changing your password.`;
  return {
    ...base,
    subject: `Your ${m.tenantName} verification code`,
    text,
    html: `<p>Your ${escapeHtml(m.tenantName)} verification code is</p><p style="font-size:1.6em;letter-spacing:.2em"><strong>${m.code}</strong></p><p>It expires in ${m.lifetimeMinutes} minutes. If you did not try to sign in, ignore this email and consider changing your password.</p>`,
  };
}
