import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.ts';

const PREFIX = 'sfb_';
// How long a browser stays known to an account after a complete sign-in there.
const LIFETIME_MS = 90 * 86_400_000;

/**
 * A mark a browser keeps after a complete sign-in (cookie `sf_known`): "this
 * account has signed in here". It grants nothing; it only puts the browser's
 * guesses in the account's familiar budget (see abuse-limits.ts), so an
 * attacker spraying the account from elsewhere cannot lock its owner out.
 * Stateless: an HMAC (key derived from the master key) over the account and
 * the expiry, so it survives restarts and cannot be made for another account;
 * ending all of the user's sessions voids every mark issued before
 * (`users.known_browsers_reset_at`).
 */
export class KnownBrowsers {
  constructor(
    private readonly key: Buffer,
    private readonly clock: Clock,
  ) {}

  issue(tenantId: string, userId: string): { token: string; expiresAt: number } {
    const expiresAt = this.clock.now() + LIFETIME_MS;
    const body = `${accountTag(tenantId, userId)}.${Math.floor(expiresAt / 1000)}`;
    return { token: `${PREFIX}${body}.${this.mac(body)}`, expiresAt };
  }

  /**
   * Whether the mark was issued to this account, has not expired, and was
   * issued after `voidBefore` (when the user's sessions were last all ended).
   */
  recognises(token: string | undefined, tenantId: string, userId: string, voidBefore: number | null = null): boolean {
    if (!token?.startsWith(PREFIX) || token.length > 200) return false;
    const [tag, expires, mac] = token.slice(PREFIX.length).split('.');
    if (!tag || !expires || !mac || !/^\d{1,12}$/.test(expires)) return false;
    const expected = Buffer.from(this.mac(`${tag}.${expires}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    const issuedAt = Number(expires) * 1000 - LIFETIME_MS;
    return tag === accountTag(tenantId, userId) && Number(expires) * 1000 > this.clock.now() && (voidBefore === null || issuedAt > voidBefore);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

const accountTag = (tenantId: string, userId: string) => createHash('sha256').update(`${tenantId}|${userId}`).digest('base64url').slice(0, 22);
