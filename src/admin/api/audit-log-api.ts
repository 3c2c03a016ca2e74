import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isoTime, Nullable } from '../../http/api-schemas.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';

export type AuditLogApiDeps = AdminRouteDeps<'auditLog'>;

/** The admin API's audit log, newest first, a page at a time. */
export function auditLogApi(deps: AuditLogApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    app.get(
      '/api/v1/admin/audit',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'The audit log, newest first; `next` is the `before` of the next page',
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
            before: Type.Optional(Type.Integer({ minimum: 1 })),
            user: Type.Optional(Type.String({ maxLength: 64 })),
            action: Type.Optional(Type.String({ maxLength: 64 })),
          }),
          response: {
            200: Type.Object({
              items: Type.Array(
                Type.Object({
                  id: Type.String(),
                  seq: Type.Integer(),
                  at: Type.String(),
                  actor: Type.String(),
                  action: Type.String(),
                  targetUserId: Nullable(Type.String()),
                  details: Type.Object({}, { additionalProperties: true }),
                  hash: Type.String(),
                }),
              ),
              next: Type.Union([Type.Integer(), Type.Null()]),
            }),
          },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const limit = request.query.limit ?? 100;
        const entries = await admin.auditLog(tenant, { limit, before: request.query.before, userId: request.query.user, action: request.query.action });
        return { items: entries.map((e) => ({ ...e, at: isoTime(e.at) })), next: entries.length === limit ? entries.at(-1)!.seq : null };
      },
    );
  };
}
