/** Email over SMTP with nodemailer. */
import { createRequire } from 'node:module';
import type { OutboundMessage } from '../channel.ts';
import { ProviderFailure, type DeliveryProvider } from '../provider.ts';

export interface SmtpConfig {
  name: string;
  type: 'smtp';
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  requireTls: boolean;
  user?: string | undefined;
  password?: string | undefined;
  from: string;
}

/** Email through any SMTP server, over a small pool of kept-open connections. */
export function createSmtpProvider(config: SmtpConfig, timeoutMs: number): DeliveryProvider {
  // Nodemailer loads only when an SMTP provider is configured.
  const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
  const transport = nodemailer.createTransport({
    host: config.host,
    port: config.port,
    secure: config.secure,
    requireTLS: config.requireTls,
    pool: true,
    maxConnections: 4,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    ...(config.user ? { auth: { user: config.user, pass: config.password ?? '' } } : {}),
    // Nodemailer logs nothing unless asked; keep it so, message bodies hold codes.
    logger: false,
    debug: false,
  });
  return {
    name: config.name,
    type: 'smtp',
    channel: 'email',
    async send(message: OutboundMessage) {
      try {
        await transport.sendMail({
          from: config.from,
          to: message.to,
          subject: message.subject ?? '',
          text: message.text,
          ...(message.html ? { html: message.html } : {}),
        });
      } catch (err) {
        const e = err as { responseCode?: number; code?: string };
        // A refusal of the recipient is that destination's problem, not the server's, whether permanent (550 no
        // such mailbox) or temporary (450 greylisting, recipient domain not found): whoever types an address
        // chooses how it is answered, and must not be able to open the provider's breaker for everyone's codes
        // with addresses at a domain that always answers 450 (round 28). The message still goes on to the next
        // provider. Only 421, the server closing the channel, speaks of the server itself.
        if (e.code === 'EENVELOPE' && e.responseCode && e.responseCode >= 400 && e.responseCode !== 421)
          throw new ProviderFailure('rejected', `SMTP ${e.responseCode}`);
        // A permanent refusal of the message itself after its data (554 for a domain the relay will not send to)
        // is about this message, one recipient's: the same reasoning (round 30: three 554s opened the breaker).
        if (e.code === 'EMESSAGE' && e.responseCode && e.responseCode >= 500) throw new ProviderFailure('rejected', `SMTP ${e.responseCode}`);
        throw new ProviderFailure('unavailable', e.responseCode ? `SMTP ${e.responseCode}` : (e.code ?? 'SMTP error'));
      }
    },
    close() {
      transport.close();
    },
  };
}
