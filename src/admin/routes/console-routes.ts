import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Administration } from '../administration.ts';
import type { Users } from '../../directory/users.ts';
import type { IssuedPassHolder } from '../issued-pass-holder.ts';
import type { ConsoleAccessDeps } from './console-access.ts';
import type { PageFlash } from '../../http/page/flash.ts';
import { usersRoutes } from './users-routes.ts';
import { signinLogRoutes } from './signin-log-routes.ts';
import { auditLogRoutes } from './audit-log-routes.ts';
import { policyRoutes } from './policy-routes.ts';
import { overviewRoutes, type OverviewRoutesDeps } from './overview-routes.ts';

export interface ConsoleRoutesDeps extends ConsoleAccessDeps, Omit<OverviewRoutesDeps, keyof ConsoleAccessDeps> {
  admin: Administration;
  users: Pick<Users, 'get' | 'findByUsername' | 'usernames'>;
  passes: Pick<IssuedPassHolder, 'hold' | 'take'>;
  publicUrl: string;
  flash: PageFlash;
}

/**
 * The admin console: an overview of the last day in charts, users (search, add, a user's methods, sessions, sign-ins
 * and the actions on them), the sign-in log with filters and CSV, the audit
 * log, and the policy editor. For users the tenant made administrators,
 * signed in with a second factor. Every action goes through the same
 * Administration service as the API, so it is audited the same way.
 */
export function consoleRoutes(deps: ConsoleRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(overviewRoutes(deps));
    await app.register(usersRoutes(deps));
    await app.register(signinLogRoutes(deps));
    await app.register(auditLogRoutes(deps));
    await app.register(policyRoutes(deps));
  };
}
