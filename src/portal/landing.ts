import type { Tenant } from '../directory/tenants.ts';

/** Pages a sign-in may return to. A fixed list: `next` can never become an open redirect. */
export const NEXT_PAGES = ['security-info', 'signins', 'admin'] as const;
export type NextPage = (typeof NEXT_PAGES)[number];

export function landingPath(tenant: Tenant, next?: NextPage): string {
  if (next === 'admin') return `/t/${tenant.slug}/admin`;
  return next === 'signins' ? `/t/${tenant.slug}/my/signins` : `/t/${tenant.slug}/my/security-info`;
}
