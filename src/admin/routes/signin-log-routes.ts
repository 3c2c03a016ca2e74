import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import { isoTime } from '../../http/api-schemas.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { Users } from '../../directory/users.ts';
import type { AdminSigninEvent } from '../../activity/signin-events.ts';
import type { Administration } from '../administration.ts';
import { sendSigninExport } from '../csv.ts';
import { signinFilter } from '../signin-filter.ts';
import { signinLogView, type SigninLogQuery } from '../views/signin-log-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const LogQuery = Type.Object({ user: Field(256), outcome: Field(10), method: Field(32), since: Field(40), until: Field(40), cursor: Field(200) });
const PAGE_SIZE = 50;

export interface SigninLogRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'signins' | 'exportSignins'>;
  users: Pick<Users, 'get' | 'findByUsername'>;
}

/** A date from a date picker (YYYY-MM-DD, a whole UTC day) or a full date-time, as the API filter takes it. */
function dayBound(value: string | undefined, end: boolean): string | undefined {
  if (!value) return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = Date.parse(`${value}T00:00:00Z`);
    if (Number.isNaN(start)) throw new AppError('invalid-request', `${value} is not a date`);
    return isoTime(end ? start + 86_400_000 : start);
  }
  return value;
}

/** The console's sign-in log, filtered by user, outcome, method and days, and its CSV download. */
export function signinLogRoutes(deps: SigninLogRoutesDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  const { adminOr, viewer } = consoleAccess(deps);
  const logFilter = (tenant: Tenant, q: SigninLogQuery) =>
    signinFilter(deps.users, tenant, {
      user: q.user?.trim() || undefined,
      outcome: q.outcome === 'success' || q.outcome === 'failure' ? q.outcome : undefined,
      method: q.method || undefined,
      since: dayBound(q.since, false),
      until: dayBound(q.until, true),
    });
  return async (app) => {
    app.get('/t/:tenant/admin/signins', consoleView(PageParams, LogQuery), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const q = request.query;
      let items: AdminSigninEvent[] = [];
      let next: string | null = null;
      let error: string | undefined;
      try {
        ({ items, next } = await admin.signins(p.tenant, await logFilter(p.tenant, q), PAGE_SIZE, q.cursor));
      } catch (err) {
        error = shownError(err).text;
      }
      return sendPage(reply, signinLogView({ ...viewer(reply, p), q, items, next, error }), error ? 400 : 200);
    });

    app.get('/t/:tenant/admin/signins.csv', consoleView(PageParams, LogQuery), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      return sendSigninExport(reply, admin, p.tenant, await logFilter(p.tenant, request.query), 'csv');
    });
  };
}
