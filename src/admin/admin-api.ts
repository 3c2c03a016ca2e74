import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../errors/app-error.ts';
import type { RequestAuth } from '../http/authenticate.ts';
import type { Users } from '../directory/users.ts';
import { AdminUser, adminUserView, IdParams, isoTime, MethodView, Nullable, SigninEventView, signinEventView } from '../http/api-schemas.ts';
import type { AdminSigninEvent } from '../activity/signin-events.ts';
import type { Administration } from './administration.ts';
import { sendSigninExport } from './csv.ts';
import { signinFilter } from './signin-filter.ts';
import { TOKEN_MAX_DAYS } from '../directory/admin-tokens.ts';

const bearer = [{ bearerAuth: [] }];
const config = { admissionClass: 'admin' as const };
// Getting locked-out people back in and shutting a compromised account: never starved by a sign-in surge.
const emergency = { admissionClass: 'admin-emergency' as const };

const UserBody = {
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  email: Type.Optional(Type.Union([Type.String({ maxLength: 320 }), Type.Null()])),
  phone: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
  admin: Type.Optional(Type.Boolean()),
  breakGlass: Type.Optional(Type.Boolean()),
};

const SigninRow = Type.Object({ ...SigninEventView.properties, userId: Nullable(Type.String()), username: Type.String() });
const signinRow = (e: AdminSigninEvent) => ({ ...signinEventView(e), userId: e.userId, username: e.username });

const SigninQuery = Type.Object({
  user: Type.Optional(Type.String({ maxLength: 256, description: 'a user id or username' })),
  outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
  method: Type.Optional(Type.String({ maxLength: 32 })),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('ndjson')])),
});

/** The export format an Accept header asks for, if any. */
const exportFormatAccepted = (accept: string | undefined) =>
  /\btext\/csv\b/.test(accept ?? '') ? 'csv' : /\bapplication\/x-ndjson\b/.test(accept ?? '') ? 'ndjson' : undefined;

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
  /** To find the user a sign-in log filter names. */
  users: Pick<Users, 'get' | 'findByUsername'>;
}

/** The admin API: a tenant's users, passes, sessions, sign-in and audit logs, policy and apps. */
export function adminApi(deps: AdminApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    const tags = ['admin'];

    app.post(
      '/api/v1/admin/users',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Create a user, with or without a password',
          body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 256 }), ...UserBody }),
          response: { 201: AdminUser },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return reply.code(201).send(adminUserView(await admin.createUser(tenant, actor, request.body)));
      },
    );

    app.get(
      '/api/v1/admin/users',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Search users by username or email; `next` is the `after` of the next page',
          querystring: Type.Object({
            q: Type.Optional(Type.String({ maxLength: 256 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
            after: Type.Optional(Type.String({ maxLength: 256 })),
          }),
          response: { 200: Type.Object({ items: Type.Array(AdminUser), next: Nullable(Type.String()) }) },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const limit = request.query.limit ?? 50;
        const users = await admin.searchUsers(tenant, request.query.q ?? '', limit + 1, request.query.after);
        const items = users.slice(0, limit).map(adminUserView);
        return { items, next: users.length > limit ? items.at(-1)!.username : null };
      },
    );

    app.get(
      '/api/v1/admin/users/:id',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'A user with their methods, active sessions, Temporary Access Pass and recent sign-ins',
          params: IdParams,
          response: {
            200: Type.Object({
              user: AdminUser,
              hasPassword: Type.Boolean(),
              methods: Type.Array(MethodView),
              sessions: Type.Array(
                Type.Object({
                  id: Type.String(),
                  scope: Type.String(),
                  amr: Type.Array(Type.String()),
                  createdAt: Type.String(),
                  lastSeenAt: Type.String(),
                  expiresAt: Type.String(),
                  ip: Nullable(Type.String()),
                  userAgent: Nullable(Type.String()),
                }),
              ),
              accessPass: Type.Union([
                Type.Object({ oneTime: Type.Boolean(), expiresAt: Type.String(), uses: Type.Integer(), createdBy: Type.String() }),
                Type.Null(),
              ]),
              recentSignins: Type.Array(SigninRow),
            }),
          },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const d = await admin.userDetail(tenant, request.params.id);
        return {
          user: adminUserView(d.user),
          hasPassword: d.hasPassword,
          methods: d.methods,
          sessions: d.sessions.map((s) => ({ ...s, createdAt: isoTime(s.createdAt), lastSeenAt: isoTime(s.lastSeenAt), expiresAt: isoTime(s.expiresAt) })),
          accessPass: d.accessPass && {
            oneTime: d.accessPass.oneTime,
            expiresAt: isoTime(d.accessPass.expiresAt),
            uses: d.accessPass.uses,
            createdBy: d.accessPass.createdBy,
          },
          recentSignins: d.recentSignins.map(signinRow),
        };
      },
    );

    app.patch(
      '/api/v1/admin/users/:id',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Change contact details, status (disabling ends every session), admin or break-glass flags, or set a password',
          params: IdParams,
          body: Type.Object({ ...UserBody, status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])) }),
          response: { 200: AdminUser },
        },
        config,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return adminUserView(await admin.updateUser(tenant, actor, request.params.id, request.body));
      },
    );

    app.delete(
      '/api/v1/admin/users/:id',
      { schema: { tags, security: bearer, summary: 'Delete a user, their methods and sessions', params: IdParams }, config },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.deleteUser(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );

    app.post(
      '/api/v1/admin/users/:id/reset-methods',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'Remove every method and end every session; the next sign-in must register a method',
          params: IdParams,
          response: { 200: Type.Object({ removed: Type.Integer(), sessionsEnded: Type.Integer() }) },
        },
        config: emergency,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return admin.resetMethods(tenant, actor, request.params.id);
      },
    );

    app.post(
      '/api/v1/admin/users/:id/revoke-sessions',
      {
        schema: {
          tags,
          security: bearer,
          summary: "End every one of the user's sessions",
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
          summary: 'Issue a Temporary Access Pass (shown once; replaces any active one); lifetime within the policy bounds',
          params: IdParams,
          body: Type.Optional(Type.Object({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43200 })), oneTime: Type.Optional(Type.Boolean()) })),
          response: { 201: Type.Object({ code: Type.String(), expiresAt: Type.String({ format: 'date-time' }), oneTime: Type.Boolean() }) },
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
      { schema: { tags, security: bearer, summary: "Revoke the user's Temporary Access Pass", params: IdParams }, config },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.revokePass(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );

    app.get(
      '/api/v1/admin/signins',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'The sign-in log, newest first, filtered by user (id or username), outcome, method and time, in pages (`next` is the `cursor` of the next page); `format=csv` or `format=ndjson` (or Accept: text/csv, application/x-ndjson) streams every match, with no cap',
          querystring: SigninQuery,
          response: { 200: Type.Object({ items: Type.Array(SigninRow), next: Nullable(Type.String()) }) },
        },
        config,
      },
      async (request, reply) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const filter = await signinFilter(deps.users, tenant, request.query);
        const format = request.query.format ?? exportFormatAccepted(request.headers.accept);
        if (format === 'csv' || format === 'ndjson') return sendSigninExport(reply, admin, tenant, filter, format);
        const page = await admin.signins(tenant, filter, request.query.limit ?? 100, request.query.cursor);
        return { items: page.items.map(signinRow), next: page.next };
      },
    );

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

    app.get(
      '/api/v1/admin/policy',
      {
        schema: { tags, security: bearer, summary: "The tenant's sign-in policy", response: { 200: Type.Object({}, { additionalProperties: true }) } },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        return tenant.policy;
      },
    );

    app.put(
      '/api/v1/admin/policy',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'Change the policy for everyone at once: fields left out keep their value. It is stored as a new policy version (with its diff, in `GET /admin/policy/versions`, audited as `policy.changed`); `400 invalid-policy` lists every problem; `409 canary-in-progress` while a policy version is on its canary (wait for its decision, or `POST /admin/policy/rollback`), then apply again',
          body: Type.Object({}, { additionalProperties: true }),
          response: { 200: Type.Object({}, { additionalProperties: true }) },
        },
        config,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        return admin.setPolicy(tenant, actor, request.body);
      },
    );

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
          summary: 'Register an app: `oidc` (answers clientId and clientSecret, shown once; none for a public client) or `api` (answers apiKey, shown once)',
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
      { schema: { tags, security: bearer, summary: 'Revoke an app and its secret or key', params: IdParams }, config },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.deleteApp(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );

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
      { schema: { tags, security: bearer, summary: 'Revoke an admin API token', params: IdParams }, config },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.revokeToken(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
