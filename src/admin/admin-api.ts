import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { usersApi, type UsersApiDeps } from './api/users-api.ts';
import { userAccessApi, type UserAccessApiDeps } from './api/user-access-api.ts';
import { signinLogApi, type SigninLogApiDeps } from './api/signin-log-api.ts';
import { auditLogApi, type AuditLogApiDeps } from './api/audit-log-api.ts';
import { policyApi, type PolicyApiDeps } from './api/policy-api.ts';
import { appsApi, type AppsApiDeps } from './api/apps-api.ts';
import { tokensApi, type TokensApiDeps } from './api/tokens-api.ts';

/** All that the admin API's modules are given together. */
export type AdminApiDeps = UsersApiDeps & UserAccessApiDeps & SigninLogApiDeps & AuditLogApiDeps & PolicyApiDeps & AppsApiDeps & TokensApiDeps;

/** The admin API: a tenant's users, passes, sessions, sign-in and audit logs, policy and apps (one file a resource, under api/). */
export function adminApi(deps: AdminApiDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    // In this order, the order of the paths in docs/openapi.json.
    await app.register(usersApi(deps));
    await app.register(userAccessApi(deps));
    await app.register(signinLogApi(deps));
    await app.register(auditLogApi(deps));
    await app.register(policyApi(deps));
    await app.register(appsApi(deps));
    await app.register(tokensApi(deps));
  };
}
