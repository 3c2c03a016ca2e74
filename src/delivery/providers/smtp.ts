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
        // 5xx about the recipient (550 no such mailbox) is the destination's problem; the rest is the server's.
        if (e.responseCode && e.responseCode >= 500 && e.code === 'EENVELOPE') throw new ProviderFailure('rejected', `SMTP ${e.responseCode}`);
        throw new ProviderFailure('unavailable', e.responseCode ? `SMTP ${e.responseCode}` : (e.code ?? 'SMTP error'));
      }
    },
    close() {
      transport.close();
    },
  };
}
