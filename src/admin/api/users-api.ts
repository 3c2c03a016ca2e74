import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminUser, adminUserView, IdParams, isoTime, MethodView, Nullable } from '../../http/api-schemas.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';
import { SigninRow, signinRow } from './signin-row.ts';

const UserBody = {
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  email: Type.Optional(Type.Union([Type.String({ maxLength: 320 }), Type.Null()])),
  phone: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
  admin: Type.Optional(Type.Boolean()),
  breakGlass: Type.Optional(Type.Boolean()),
};

export type UsersApiDeps = AdminRouteDeps<'createUser' | 'searchUsers' | 'userDetail' | 'updateUser' | 'deleteUser'>;

/** The admin API's users: create, search, look one up with everything about them, change and delete. */
export function usersApi(deps: UsersApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    app.post(
      '/api/v1/admin/users',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'Create a user, with or without a password. An administrator or break-glass account only by a person signed in with a second factor, not an admin token',
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
          summary:
            "Change contact details, status (disabling ends every session), admin or break-glass flags (making one ends every session of the account), or set a password (ends every session). An administrator's or break-glass account, or making one, only by a person signed in with a second factor, not an admin token",
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
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Delete a user, their methods and sessions. An administrator's or break-glass account only by a person signed in with a second factor, not an admin token",
          params: IdParams,
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        await admin.deleteUser(tenant, actor, request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
