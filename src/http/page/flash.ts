/** Post-redirect-get for the pages: what a form post tells the page it redirects to, in a sealed, short-lived cookie. */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The cookie that carries a page's outcome across a post-redirect-get. */
export const FLASH_COOKIE = 'sf_flash';
/** Long enough for the redirect and a refresh or two of the page it leads to. */
const FLASH_LIFETIME_MS = 10 * 60_000;
const CONTEXT = 'page-flash';

/** What one form post leaves for the page its redirect leads to. */
export interface FlashData {
  notice?: { kind: 'error' | 'info'; text: string } | undefined;
  /** What the person typed (never a password), to fill the form in again. */
  values?: Record<string, string> | undefined;
  /** An error message per field name, shown at the field. */
  fieldErrors?: Record<string, string> | undefined;
  /** One-time values to show again on a refresh (new recovery codes). */
  secrets?: string[] | undefined;
  /** What the post produced for the page to show again on a refresh (where a code went, the number to match); never a secret the user types. */
  shown?: Record<string, string> | undefined;
  /** Which page it is for (a method id, "recovery-codes"); another page ignores it. */
  for?: string | undefined;
}

/** Seals and opens (the key ring): the flash is encrypted and authenticated, so it can be neither read nor forged. */
export interface Sealer {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): Buffer;
}

export interface PageFlash {
  /**
   * Leaves `data` for the next page of this session in this tenant. `sessionId`
   * is what binds it: a session's id, or on the sign-in pages (no session yet)
   * the sign-in flow's or a one-time attempt id carried in the page's address.
   */
  set(reply: FastifyReply, tenantSlug: string, sessionId: string, data: FlashData): void;
  /** What the last post left for this session, if anything; `keep` leaves it for a refresh too. */
  read(request: FastifyRequest, reply: FastifyReply, tenantSlug: string, sessionId: string, options?: { keep?: boolean }): FlashData | undefined;
  /** Forgets what was left (after a `read` that kept it). */
  clear(reply: FastifyReply, tenantSlug: string): void;
}

/**
 * Every page form post answers with a redirect (post-redirect-get), so Back
 * and refresh never post a form again. What the post has to tell the next page
 * (its outcome, the values typed, new recovery codes) goes in a short-lived
 * cookie sealed with the key ring: encrypted and authenticated, bound to the
 * session that made it (another session in the same browser cannot read it),
 * sent only to the tenant's pages, and gone after `FLASH_LIFETIME_MS`.
 */
export function pageFlash(deps: { sealer: Sealer; now: () => number; secure: boolean }): PageFlash {
  const path = (slug: string) => `/t/${slug}/`;
  return {
    set(reply, tenantSlug, sessionId, data) {
      const sealed = deps.sealer.seal(JSON.stringify({ ...data, sid: sessionId, exp: deps.now() + FLASH_LIFETIME_MS }), CONTEXT);
      reply.setCookie(FLASH_COOKIE, sealed, { httpOnly: true, sameSite: 'lax', secure: deps.secure, path: path(tenantSlug), maxAge: FLASH_LIFETIME_MS / 1000 });
    },
    clear(reply, tenantSlug) {
      reply.clearCookie(FLASH_COOKIE, { path: path(tenantSlug) });
    },
    read(request, reply, tenantSlug, sessionId, options = {}) {
      const sealed = request.cookies[FLASH_COOKIE];
      if (!sealed) return undefined;
      if (!options.keep) reply.clearCookie(FLASH_COOKIE, { path: path(tenantSlug) });
      try {
        const data = JSON.parse(deps.sealer.open(sealed, CONTEXT).toString('utf8')) as FlashData & { sid?: string; exp?: number };
        if (data.sid !== sessionId || typeof data.exp !== 'number' || data.exp < deps.now()) return undefined;
        return { notice: data.notice, values: data.values, fieldErrors: data.fieldErrors, secrets: data.secrets, shown: data.shown, for: data.for };
      } catch {
        // Tampered, from an older key ring, or not ours: as if there were none.
        return undefined;
      }
    },
  };
}
