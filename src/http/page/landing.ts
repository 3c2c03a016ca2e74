import type { Tenant } from '../../directory/tenant.ts';

/**
 * Pages a sign-in may return to. A fixed list: `next` can never become an open
 * redirect. `security-info-mfa` returns to security info after a sign-in that
 * proved a second factor (to change methods from a remembered browser).
 */
export const NEXT_PAGES = ['security-info', 'security-info-mfa', 'signins', 'admin'] as const;

/** Where a sign-in leads, the second factor must be proved in it: no remembered browser stands in. */
export const needsSecondFactor = (next: string | undefined) => next === 'admin' || next === 'security-info-mfa' || (next ?? '').startsWith('oidc-mfa:');
/** Or an OpenID Connect sign-in of an app waiting for the user (`oidc-mfa:` when the app asked for a second factor). */
export const OIDC_NEXT = /^oidc(-mfa)?:[A-Za-z0-9_-]{10,64}$/;
export type NextPage = (typeof NEXT_PAGES)[number] | `oidc:${string}` | `oidc-mfa:${string}`;

export function landingPath(tenant: Tenant, next?: NextPage): string {
  if (next && OIDC_NEXT.test(next)) return `/t/${tenant.slug}/oidc/interaction/${next.slice(next.indexOf(':') + 1)}`;
  if (next === 'admin') return `/t/${tenant.slug}/admin`;
  return next === 'signins' ? `/t/${tenant.slug}/my/signins` : `/t/${tenant.slug}/my/security-info`;
}
