/**
 * The names of the cookies that carry authority. Over https they take the
 * `__Host-` prefix: a browser then accepts them only from this exact host,
 * marked secure, for path `/`, so a sibling subdomain cannot plant a session
 * or a CSRF secret of its own (cookie tossing). Plain http (a laptop, tests)
 * cannot use the prefix and keeps the bare names.
 */
export function cookieNames(publicUrl: string): { session: string; csrf: string } {
  const prefix = publicUrl.startsWith('https:') ? '__Host-' : '';
  return { session: `${prefix}sf_session`, csrf: `${prefix}sf_csrf` };
}

/** The remembered-browser cookie (see sessions/remembered-devices.ts); sent only to the tenant's sign-in pages. */
export const DEVICE_COOKIE = 'sf_device';
/** An app's sign-in to go back to after registering a first method (pages and the OIDC interaction share it). */
export const CONTINUE_COOKIE = 'sf_continue';
/** oidc-provider's session cookie (its default name; the value is the session's id). */
export const OIDC_SESSION_COOKIE = '_session';
/** The known-browser mark (see signin/known-browsers.ts). */
export const KNOWN_BROWSER_COOKIE = 'sf_known';
