import { AppError } from '../../errors/app-error.ts';
import type { Tenant, Tenants } from '../../directory/tenants.ts';

/** A tenant by the slug in a page's path, or a 404 problem. */
export interface TenantLookup {
  require(slug: string): Promise<Tenant>;
}

export function tenantLookup(tenants: Pick<Tenants, 'findBySlug'>): TenantLookup {
  return {
    async require(slug) {
      const tenant = await tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    },
  };
}
