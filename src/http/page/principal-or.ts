import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal, RequestAuth } from '../authenticate.ts';
import type { NextPage } from './landing.ts';
import type { TenantLookup } from './tenant-lookup.ts';

/**
 * For the signed-in pages: the signed-in user of the tenant in the path, or
 * undefined after a redirect to that tenant's sign-in page (which comes back
 * to `next`).
 */
export function principalOr(deps: { auth: Pick<RequestAuth, 'findPrincipal'>; tenants: TenantLookup }) {
  return async (request: FastifyRequest, reply: FastifyReply, next: NextPage): Promise<Principal | undefined> => {
    const slug = (request.params as { tenant: string }).tenant;
    const principal = await deps.auth.findPrincipal(request);
    if (principal && principal.tenant.slug === slug) return principal;
    const tenant = await deps.tenants.require(slug);
    void reply.redirect(`/t/${tenant.slug}/signin?next=${next}`, 303);
    return undefined;
  };
}
