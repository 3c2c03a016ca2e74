import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RequestAuth } from '../http/authenticate.ts';
import type { Users } from '../directory/users.ts';
import type { Administration } from './administration.ts';
import { usersApi } from './api/users-api.ts';
import { userAccessApi } from './api/user-access-api.ts';
import { signinLogApi } from './api/signin-log-api.ts';
import { auditLogApi } from './api/audit-log-api.ts';
import { policyApi } from './api/policy-api.ts';
import { appsApi } from './api/apps-api.ts';
import { tokensApi } from './api/tokens-api.ts';

export interface AdminApiDeps {
  auth: Pick<RequestAuth, 'requireAdmin'>;
  admin: Pick<
    Administration,
    | 'createUser'
    | 'searchUsers'
    | 'userDetail'
    | 'updateUser'
    | 'deleteUser'
    | 'resetMethods'
    | 'revokeSessions'
    | 'issuePass'
    | 'revokePass'
    | 'signins'
    | 'exportSignins'
    | 'auditLog'
    | 'setPolicy'
    | 'createApp'
    | 'listApps'
    | 'deleteApp'
    | 'listTokens'
    | 'createToken'
    | 'revokeToken'
  >;
  // To find the user a sign-in log filter names.
  users: Pick<Users, 'get' | 'findByUsername'>;
}

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
