import type { TenantPolicy } from './tenant-policy.ts';

export type { TenantPolicy };

/**
 * A tenant: an organisation with its own users, methods, policy and apps.
 * A type of its own, apart from the Tenants repository and the policy's
 * validation, so that methods and sessions can name it without depending on
 * either.
 */
export interface Tenant {
  id: string;
  slug: string;
  name: string;
  policy: TenantPolicy;
  createdAt: number;
}
