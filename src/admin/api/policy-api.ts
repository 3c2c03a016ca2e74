import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';

export type PolicyApiDeps = AdminRouteDeps<'setPolicy'>;

/** The admin API's sign-in policy: read it, or change it for everyone at once. */
export function policyApi(deps: PolicyApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    app.get(
      '/api/v1/admin/policy',
      {
        schema: { tags, security: bearer, summary: "The tenant's sign-in policy", response: { 200: Type.Object({}, { additionalProperties: true }) } },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        return tenant.policy;
      },
    );

    app.put(
      '/api/v1/admin/policy',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Change the policy for everyone at once: fields left out keep their value. It is stored as a new policy version (with its diff, in `GET /admin/policy/versions`, audited as `policy.changed`); `400 invalid-policy` lists every problem; `409 canary-in-progress` while a policy version is on its canary (wait for its decision, or `POST /admin/policy/rollback`), then apply again. An administrator's session only: `403` to an admin token, which reads the policy",
          body: Type.Object({}, { additionalProperties: true }),
          response: { 200: Type.Object({}, { additionalProperties: true }) },
        },
        config,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return admin.setPolicy(tenant, actor, request.body);
      },
    );
  };
}
