/**
 * The security headers every answer carries. They never vary per request, so
 * they are built once: a per-request middleware (helmet) re-derived the same
 * strings on every request, about a tenth of a TOTP verification's budget.
 * The set is helmet's defaults with a stricter CSP: pages load nothing from
 * other hosts, run no inline script or style, and cannot be framed.
 */
export function securityHeaders(options: { https: boolean }): Readonly<Record<string, string>> {
  return Object.freeze({ 'content-security-policy': contentSecurityPolicy(options), ...otherHeaders(options) });
}

/**
 * The pages' CSP. `formTargets` are origins a form on the page may end up at
 * through redirects (an app's callback after consent): Chromium applies
 * form-action to every redirect that follows a form post.
 */
export function contentSecurityPolicy(options: { https: boolean; formTargets?: string[] }): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    // The Steadfast Authenticator: its web app manifest and its service worker, from this origin only.
    "manifest-src 'self'",
    "worker-src 'self'",
    ["form-action 'self'", ...(options.formTargets ?? [])].join(' '),
    "frame-ancestors 'none'",
    "base-uri 'none'",
    ...(options.https ? ['upgrade-insecure-requests'] : []),
  ].join('; ');
}

function otherHeaders(options: { https: boolean }): Record<string, string> {
  return {
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-dns-prefetch-control': 'off',
    'x-download-options': 'noopen',
    'x-frame-options': 'DENY',
    'x-permitted-cross-domain-policies': 'none',
    'x-xss-protection': '0',
    ...(options.https ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}),
  };
}
