import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { IdParams, Nullable } from '../../http/api-schemas.ts';
import { TOKEN_MAX_DAYS } from '../../directory/admin-tokens.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';

export type TokensApiDeps = AdminRouteDeps<'listTokens' | 'createToken' | 'revokeToken'>;

/** The admin API's tokens: list them (never the secret), create one (people only, not tokens), revoke one. */
export function tokensApi(deps: TokensApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    const TokenView = Type.Object({
      id: Type.String(),
      name: Nullable(Type.String()),
      role: Type.String(),
      createdAt: Type.String(),
      createdBy: Nullable(Type.String()),
      expiresAt: Nullable(Type.String()),
      lastUsedAt: Nullable(Type.String()),
      revokedAt: Nullable(Type.String()),
    });

    app.get(
      '/api/v1/admin/tokens',
      {
        schema: {
          tags,
          security: bearer,
          summary: "The tenant's admin API tokens: who made each, when it expires, when it was last used; never the secret",
          response: { 200: Type.Array(TokenView) },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        return admin.listTokens(tenant);
      },
    );

    app.post(
      '/api/v1/admin/tokens',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Create an admin API token (shown once). Only a person signed in with a second factor can: a token cannot mint tokens',
          body: Type.Object({
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            days: Type.Optional(Type.Integer({ minimum: 1, maximum: TOKEN_MAX_DAYS })),
          }),
          response: { 201: Type.Object({ id: Type.String(), token: Type.String(), expiresAt: Type.String() }) },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        // A leaked token must not be able to outlive its own revocation by minting successors.
        if (!actor.startsWith('user:'))
          throw new AppError('forbidden', 'tokens are created by an administrator signed in with a second factor, or with steadfast token create');
        reply.header('cache-control', 'no-store');
        return reply.code(201).send(await admin.createToken(tenant, actor, request.body));
      },
    );

    app.delete(
      '/api/v1/admin/tokens/:id',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Revoke an admin API token',
          description:
            'Revokes the token as leaked: the passes it issued are revoked, and on every account it created, changed, reset or gave a pass, what was set up since it first did is taken back (sessions ended, methods added since removed, a password set since cleared; audited as access.taken-back). A token already revoked with the authority of its maker, which took back its passes only, may be revoked again as leaked. A token retired by plan is left to expire.',
          params: IdParams,
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.revokeToken(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
