import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RequestAuth } from '../../http/authenticate.ts';
import type { ConfigVersions } from '../../config/config-versions.ts';
import { tenantScope } from '../../config/config-versions.ts';
import { principalOr } from '../../http/page/principal-or.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import { policyHistoryView } from '../views/policy-history-view.ts';

export interface PolicyHistoryDeps {
  auth: Pick<RequestAuth, 'findPrincipal' | 'requireAdministrator'>;
  tenants: TenantLookup;
  versions: Pick<ConfigVersions, 'list'>;
}

/** The console's policy history page (read only; changes go through the policy page, the API or the CLI). */
export function policyHistoryRoutes(deps: PolicyHistoryDeps): FastifyPluginAsyncTypebox {
  const signedIn = principalOr(deps);
  return async (app) => {
    app.get(
      '/t/:tenant/admin/policy/history',
      { schema: { params: Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) }), hide: true }, config: { admissionClass: 'admin' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'admin');
        if (!p) return reply;
        // Reading needs an administrator with a second factor, as every console page does.
        deps.auth.requireAdministrator(p, false);
        const versions = await deps.versions.list(tenantScope(p.tenant.id), 50);
        return sendPage(
          reply,
          signedInLayout({
            title: 'Policy history',
            tenant: p.tenant,
            username: p.user.username,
            csrf: reply.generateCsrf(),
            wide: true,
            body: policyHistoryView({ tenantSlug: p.tenant.slug, versions }),
          }),
        );
      },
    );
  };
}
