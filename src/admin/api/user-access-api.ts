import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams } from '../../http/api-schemas.ts';
import { bearer, config, emergency, tags, type AdminRouteDeps } from './route-options.ts';

const PassOptionsBody = Type.Object({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43200 })), oneTime: Type.Optional(Type.Boolean()) });
const IssuedPassBody = Type.Object({ code: Type.String(), expiresAt: Type.String({ format: 'date-time' }), oneTime: Type.Boolean() });

export type UserAccessApiDeps = AdminRouteDeps<'resetMethods' | 'revokeSessions' | 'issuePass' | 'revokePass'>;

/** The admin API's way into and out of an account: reset its methods, end its sessions, issue or revoke a Temporary Access Pass. */
export function userAccessApi(deps: UserAccessApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    app.post(
      '/api/v1/admin/users/:id/reset-methods',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Remove every method and end every session, and revoke a Temporary Access Pass that was used; the next sign-in must register a method, and the password as it stands registers none (a pass, or a password set since, does). With `pass`, a Temporary Access Pass is issued once the reset is done (shown once, as POST .../tap). An administrator's, only by a person signed in with a second factor, not an admin token",
          params: IdParams,
          body: Type.Optional(Type.Object({ pass: Type.Optional(PassOptionsBody) })),
          response: { 200: Type.Object({ removed: Type.Integer(), sessionsEnded: Type.Integer(), pass: Type.Optional(IssuedPassBody) }) },
        },
        config: emergency,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        const reset = await admin.resetMethods(tenant, actor, request.params.id, { pass: request.body?.pass });
        if (reset.pass) reply.header('cache-control', 'no-store');
        return reset;
      },
    );

    app.post(
      '/api/v1/admin/users/:id/revoke-sessions',
      {
        schema: {
          tags,
          security: bearer,
          summary: "End every one of the user's sessions, and revoke a Temporary Access Pass that was used",
          params: IdParams,
          response: { 200: Type.Object({ sessionsEnded: Type.Integer() }) },
        },
        config: emergency,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return { sessionsEnded: await admin.revokeSessions(tenant, actor, request.params.id) };
      },
    );

    app.post(
      '/api/v1/admin/users/:id/tap',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Issue a Temporary Access Pass (shown once; replaces any active one); lifetime within the policy bounds. For an administrator, only by a person signed in with a second factor, not an admin token; never for the caller's own account (403)",
          params: IdParams,
          body: Type.Optional(PassOptionsBody),
          response: { 201: IssuedPassBody },
        },
        config: emergency,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        const issued = await admin.issuePass(tenant, actor, request.params.id, { minutes: request.body?.minutes, oneTime: request.body?.oneTime });
        reply.header('cache-control', 'no-store');
        return reply.code(201).send(issued);
      },
    );

    app.delete(
      '/api/v1/admin/users/:id/tap',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Revoke the user's Temporary Access Pass. If it was used, every session of the user ends too, with what they gave (apps' tokens, admin tokens)",
          params: IdParams,
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.revokePass(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
