import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sendPage } from '../../http/page/send-page.ts';
import type { Administration } from '../administration.ts';
import { auditLogView } from '../views/audit-log-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const PAGE_SIZE = 50;

export interface AuditLogRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'auditLog'>;
}

/** The console's audit log, newest first, optionally of one user, a page at a time. */
export function auditLogRoutes(deps: AuditLogRoutesDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer } = consoleAccess(deps);
  return async (app) => {
    app.get('/t/:tenant/admin/audit', consoleView(PageParams, Type.Object({ before: Field(20), user: Field(64) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const before = request.query.before && /^\d{1,15}$/.test(request.query.before) ? Number(request.query.before) : undefined;
      const user = request.query.user || undefined;
      const entries = await deps.admin.auditLog(p.tenant, { limit: PAGE_SIZE, before, userId: user });
      return sendPage(reply, auditLogView({ ...viewer(reply, p), entries, pageSize: PAGE_SIZE, user }));
    });
  };
}
