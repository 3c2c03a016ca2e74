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
