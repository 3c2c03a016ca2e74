import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams, isoTime, Nullable } from '../../http/api-schemas.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';

export type AppsApiDeps = AdminRouteDeps<'createApp' | 'listApps' | 'deleteApp'>;

/** The admin API's apps: register an OpenID Connect or API app (its secret shown once), list them, revoke one. */
export function appsApi(deps: AppsApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    const AppView = Type.Object({
      id: Type.String(),
      name: Type.String(),
      kind: Type.Union([Type.Literal('oidc'), Type.Literal('api')]),
      clientId: Nullable(Type.String()),
      redirectUris: Type.Array(Type.String()),
      firstParty: Type.Boolean(),
      public: Type.Boolean(),
      createdAt: Type.String(),
    });

    app.post(
      '/api/v1/admin/apps',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Register an app: `oidc` (answers clientId and clientSecret, shown once; none for a public client) or `api` (answers apiKey, shown once). An administrator's session only: `403` to an admin token",
          body: Type.Object({
            name: Type.String({ minLength: 1, maxLength: 200 }),
            kind: Type.Union([Type.Literal('oidc'), Type.Literal('api')]),
            redirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 20 })),
            firstParty: Type.Optional(Type.Boolean()),
            public: Type.Optional(Type.Boolean()),
          }),
          response: {
            201: Type.Object({
              id: Type.String(),
              clientId: Type.Optional(Type.String()),
              clientSecret: Type.Optional(Type.String()),
              apiKey: Type.Optional(Type.String()),
            }),
          },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        const { app: created, clientSecret, apiKey } = await admin.createApp(tenant, actor, request.body);
        reply.header('cache-control', 'no-store');
        return reply.code(201).send({
          id: created.id,
          ...(created.clientId ? { clientId: created.clientId } : {}),
          ...(clientSecret ? { clientSecret } : {}),
          ...(apiKey ? { apiKey } : {}),
        });
      },
    );

    app.get('/api/v1/admin/apps', { schema: { tags, security: bearer, response: { 200: Type.Array(AppView) } }, config }, async (request) => {
      const { tenant } = await deps.auth.requireAdmin(request);
      return (await admin.listApps(tenant)).map((a) => ({ ...a, createdAt: isoTime(a.createdAt) }));
    });

    app.delete(
      '/api/v1/admin/apps/:id',
      {
        schema: {
          tags,
          security: bearer,
          summary: "Revoke an app and its secret or key (an administrator's session only: `403` to an admin token)",
          params: IdParams,
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.deleteApp(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
