import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sendPage } from '../../http/page/send-page.ts';
import type { Users } from '../../directory/users.ts';
import { isTokenActor } from '../../directory/admin-tokens.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { AuditEntry } from '../../activity/audit-log.ts';
import type { Administration } from '../administration.ts';
import { auditLogView, type NamedAuditEntry } from '../views/audit-log-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const PAGE_SIZE = 50;

export interface AuditLogRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'auditLog' | 'listTokens'>;
  users: Pick<Users, 'usernames'>;
}

/** The console's audit log, newest first, optionally of one user, a page at a time, with people named. */
export function auditLogRoutes(deps: AuditLogRoutesDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer } = consoleAccess(deps);

  /**
   * Who each entry names, in two queries for the page (never one per entry),
   * both scoped by the tenant: the users acting or acted on, and the tenant's
   * admin tokens (few) for entries an API token made.
   */
  const named = async (tenant: Tenant, entries: AuditEntry[], extraUserId?: string): Promise<{ entries: NamedAuditEntry[]; names: Map<string, string> }> => {
    const userIds = entries.flatMap((e) => [e.targetUserId, e.actor.startsWith('user:') ? e.actor.slice(5) : null]).filter((x): x is string => x !== null);
    if (extraUserId) userIds.push(extraUserId);
    const needTokens = entries.some((e) => isTokenActor(e.actor));
    const [names, tokens] = await Promise.all([deps.users.usernames(tenant.id, userIds), needTokens ? deps.admin.listTokens(tenant) : Promise.resolve([])]);
    const tokenNames = new Map(tokens.map((t) => [t.id, t.name]));
    const by = (actor: string): string => {
      if (actor.startsWith('user:')) return names.get(actor.slice(5)) ?? 'a user no longer here';
      if (isTokenActor(actor)) {
        const name = tokenNames.get(actor.slice(12));
        return name ? `API token "${name}"` : 'an API token';
      }
      if (actor === 'cli') return 'the command line';
      if (actor === 'system') return 'Steadfast';
      return actor;
    };
    return {
      entries: entries.map((entry) => ({ entry, by: by(entry.actor), whom: entry.targetUserId ? (names.get(entry.targetUserId) ?? null) : null })),
      names,
    };
  };

  return async (app) => {
    app.get('/t/:tenant/admin/audit', consoleView(PageParams, Type.Object({ before: Field(20), user: Field(64) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const before = request.query.before && /^\d{1,15}$/.test(request.query.before) ? Number(request.query.before) : undefined;
      const user = request.query.user || undefined;
      const raw = await deps.admin.auditLog(p.tenant, { limit: PAGE_SIZE, before, userId: user });
      const { entries, names } = await named(p.tenant, raw, user);
      return sendPage(reply, auditLogView({ ...viewer(reply, p), entries, pageSize: PAGE_SIZE, user, userName: user ? names.get(user) : undefined }));
    });
  };
}
