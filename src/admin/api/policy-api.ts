/** The admin API's sign-in policy: read it, change it for everyone at once, and ask whom a change would strand. */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { METHOD_TYPES } from '../../methods/registry.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';

export type PolicyApiDeps = AdminRouteDeps<'setPolicy' | 'strandedUsers'>;

/** Users named in one answer of `GET /admin/policy/stranded`; `count` is of all of them. */
const STRANDED_LISTED = 500;

const StrandedUsers = Type.Object({
  allowedMethods: Type.Array(Type.String(), { description: 'The method types asked about: the query’s, or the policy’s now' }),
  count: Type.Integer({ description: 'Active users with sign-in methods, none of them of these types' }),
  users: Type.Array(Type.Object({ id: Type.String(), username: Type.String() }), {
    description: `The first ${STRANDED_LISTED} of them by username`,
  }),
});

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

    app.get(
      '/api/v1/admin/policy/stranded',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'Users a policy leaves without a usable method: active users whose every method is of a type it does not allow. They sign in with a Temporary Access Pass only, until one is issued or their method allowed again. `allowedMethods` (comma-separated types) asks about a policy before it is saved; without it, the policy now. `400 invalid-request` names a type that does not exist',
          querystring: Type.Object({ allowedMethods: Type.Optional(Type.String({ maxLength: 500 })) }),
          response: { 200: StrandedUsers },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const asked = request.query.allowedMethods;
        const allowedMethods =
          asked === undefined
            ? tenant.policy.allowedMethods
            : asked
                .split(',')
                .map((t) => t.trim())
                .filter(Boolean);
        const unknown = allowedMethods.filter((t) => !(METHOD_TYPES as readonly string[]).includes(t));
        if (unknown.length > 0) throw new AppError('invalid-request', `no such method type: ${unknown.join(', ')} (the types are ${METHOD_TYPES.join(', ')})`);
        return { allowedMethods, ...(await admin.strandedUsers(tenant, allowedMethods, STRANDED_LISTED)) };
      },
    );

    app.put(
      '/api/v1/admin/policy',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Change the policy for everyone at once: fields left out keep their value. It is stored as a new policy version (with its diff, in `GET /admin/policy/versions`, audited as `policy.changed`); `400 invalid-policy` lists every problem; `409 canary-in-progress` while a policy version is on its canary (wait for its decision, or `POST /admin/policy/rollback`), then apply again. A change of `allowedMethods` can leave users with no usable method: `GET /admin/policy/stranded?allowedMethods=…` names them before or after. An administrator's session only: `403` to an admin token, which reads the policy",
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
