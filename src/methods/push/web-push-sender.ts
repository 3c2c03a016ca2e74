import webpush from 'web-push';
import type { VapidKeyPair } from './vapid-keys.ts';

/** A browser's push subscription, as `PushSubscription.toJSON()` gives it. */
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * The push services Steadfast sends to by default: the browsers' own (Chrome
 * and Edge, Firefox, Safari, Windows). The server posts to whatever endpoint a
 * paired device names, so anything else is refused: a device must not be able
 * to point the server at an internal address.
 */
export const DEFAULT_PUSH_SERVICES = [
  'fcm.googleapis.com',
  'updates.push.services.mozilla.com',
  'push.services.mozilla.com',
  'web.push.apple.com',
  'notify.windows.com',
];

export interface WebPushSenderOptions {
  vapid: () => Promise<VapidKeyPair>;
  /** `mailto:` or `https:` contact the push service can reach the operator at (RFC 8292). */
  subject: string;
  /** Hosts (and their subdomains) a subscription's endpoint may be on; `http:` is accepted only for loopback hosts listed here (tests). */
  allowedHosts: readonly string[];
  timeoutMs?: number;
}

export type SendResult = 'sent' | 'gone' | 'failed';

/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and message encryption (RFC 8291,
 * aes128gcm) by the `web-push` library. The library builds and encrypts the
 * request; the request itself goes out here, with a timeout, so a slow push
 * service costs a sign-in a bounded wait.
 */
export class WebPushSender {
  private readonly timeoutMs: number;

  constructor(private readonly options: WebPushSenderOptions) {
    this.timeoutMs = options.timeoutMs ?? 3000;
  }

  /** The subscription in a device's request, or undefined when it is malformed or names a push service not allowed here. */
  parse(value: unknown): WebPushSubscription | undefined {
    if (typeof value !== 'object' || value === null) return undefined;
    const { endpoint, keys } = value as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
    if (typeof endpoint !== 'string' || endpoint.length > 2048 || typeof keys !== 'object' || keys === null) return undefined;
    if (typeof keys.p256dh !== 'string' || !/^[A-Za-z0-9_-]{87}$/.test(keys.p256dh)) return undefined;
    if (typeof keys.auth !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(keys.auth)) return undefined;
    if (!this.allowed(endpoint)) return undefined;
    return { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
  }

  private allowed(endpoint: string): boolean {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return false;
    }
    const host = url.hostname.toLowerCase();
    const listed = this.options.allowedHosts.some((h) => host === h.toLowerCase() || host.endsWith(`.${h.toLowerCase()}`));
    if (!listed || url.username || url.password) return false;
    return url.protocol === 'https:' || (url.protocol === 'http:' && (host === '127.0.0.1' || host === 'localhost' || host === '[::1]'));
  }

  /** The key browsers subscribe with (`applicationServerKey`). */
  async publicKey(): Promise<string> {
    return (await this.options.vapid()).publicKey;
  }

  /**
   * Sends one encrypted message. `gone`: the push service says the
   * subscription no longer exists (404, 410); `failed`: anything else that
   * was not accepted, a timeout included.
   */
  async send(subscription: WebPushSubscription, payload: string, ttlSeconds: number): Promise<SendResult> {
    if (!this.allowed(subscription.endpoint)) return 'failed';
    const vapid = await this.options.vapid();
    const request = webpush.generateRequestDetails(subscription, payload, {
      vapidDetails: { subject: this.options.subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: ttlSeconds,
      contentEncoding: 'aes128gcm',
      urgency: 'high',
    });
    try {
      const response = await fetch(request.endpoint, {
        method: request.method,
        headers: request.headers as Record<string, string>,
        body: new Uint8Array(request.body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.body?.cancel();
      if (response.status === 404 || response.status === 410) return 'gone';
      return response.status >= 200 && response.status < 300 ? 'sent' : 'failed';
    } catch {
      return 'failed';
    }
  }
}
