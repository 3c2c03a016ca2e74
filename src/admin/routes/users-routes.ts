import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal } from '../../http/authenticate.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import type { Administration, IssuedPass } from '../administration.ts';
import type { IssuedPassHolder } from '../issued-pass-holder.ts';
import type { Notice } from '../views/console-layout.ts';
import type { FlashData, PageFlash } from '../../http/page/flash.ts';
import { usersView } from '../views/users-view.ts';
import { userDetailView } from '../views/user-detail-view.ts';
import { confirmUserActionView, type ConfirmedUserAction } from '../views/confirm-user-action-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const UserParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const ActionBody = Type.Object({ _csrf: Field(), minutes: Field(10), oneTime: Field(5), confirm: Field(5), pass: Field(5) });

export interface UsersRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'searchUsers' | 'createUser' | 'userDetail' | 'issuePass' | 'revokePass' | 'resetMethods' | 'revokeSessions' | 'updateUser'>;
  passes: Pick<IssuedPassHolder, 'hold' | 'take'>;
  // This service's address, for the sign-in address an administrator passes on with a pass.
  publicUrl: string;
  // What an action's post tells the page it redirects to (post-redirect-get), bound to the administrator's session.
  flash: PageFlash;
}

/**
 * The console's users: search, add, one user's page, and the actions on a
 * user (issue or revoke a Temporary Access Pass, reset methods, end sessions,
 * disable, enable). Every action goes through Administration, as the API's do,
 * so it is audited the same way.
 */
export function usersRoutes(deps: UsersRoutesDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  const { adminOr, viewer, actor } = consoleAccess(deps);
  return async (app) => {
    const base = (p: Principal) => `/t/${p.tenant.slug}/admin`;
    const holding = (p: Principal, userId: string) => ({ tenantId: p.tenant.id, adminId: p.user.id, userId });

    /** Leaves what a post has to say for the page at `to` (in the flash bound to this session) and goes there. */
    const go = (reply: FastifyReply, p: Principal, to: string, data: FlashData) => {
      deps.flash.set(reply, p.tenant.slug, p.session.id, data);
      return reply.redirect(to, 303);
    };
    const userPath = (p: Principal, id: string) => `${base(p)}/users/${encodeURIComponent(id)}`;

    const userPage = async (reply: FastifyReply, p: Principal, id: string, notice?: Notice, issued?: IssuedPass) =>
      sendPage(
        reply,
        userDetailView({
          ...viewer(reply, p),
          detail: await admin.userDetail(p.tenant, id),
          tap: p.tenant.policy.tap,
          notice,
          issued,
          signinUrl: `${deps.publicUrl.replace(/\/+$/, '')}/t/${p.tenant.slug}/signin/tap`,
        }),
      );

    app.get('/t/:tenant/admin', consoleView(PageParams, Type.Object({ q: Field(256) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
      const mine = flash?.for === 'users' ? flash : undefined;
      const q = request.query.q ?? '';
      return sendPage(
        reply,
        usersView({
          ...viewer(reply, p),
          q,
          users: await admin.searchUsers(p.tenant, q, 50),
          notice: mine?.notice,
          values: mine?.values,
          addError: mine?.fieldErrors?.['new-username'],
        }),
      );
    });

    app.post(
      '/t/:tenant/admin/users',
      formRoute(app, 'admin', PageParams, Type.Object({ username: Field(256), email: Field(320), _csrf: Field() })),
      async (request, reply) => {
        const p = await adminOr(request, reply, { change: true });
        if (!p) return reply;
        try {
          const user = await admin.createUser(p.tenant, actor(p), { username: request.body.username ?? '', email: request.body.email?.trim() || undefined });
          return go(reply, p, userPath(p, user.id), {
            for: `user:${user.id}`,
            notice: { kind: 'info', text: `User ${user.username} added. Issue a Temporary Access Pass so they can sign in.` },
          });
        } catch (err) {
          const { text } = shownError(err);
          // What was typed stays, with the reason at the username.
          return go(reply, p, base(p), {
            for: 'users',
            notice: { kind: 'error', text },
            values: { username: request.body.username ?? '', email: request.body.email ?? '' },
            fieldErrors: { 'new-username': text },
          });
        }
      },
    );

    app.get('/t/:tenant/admin/users/:id', consoleView(UserParams, Type.Object({ issued: Field(40) })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
      const notice = flash?.for === `user:${request.params.id}` ? flash.notice : undefined;
      const issued = await deps.passes.take(holding(p, request.params.id), request.query.issued);
      if (request.query.issued && !issued)
        return userPage(reply, p, request.params.id, { kind: 'info', text: 'The pass was shown once and is not shown again. Issue a new one if it was lost.' });
      // A pass issued with another action (a reset) says what that action did first.
      const issuedNotice: Notice = { kind: 'info', text: `${notice?.kind === 'info' ? `${notice.text} ` : ''}Temporary Access Pass issued.` };
      return userPage(reply, p, request.params.id, issued ? issuedNotice : notice, issued);
    });

    /**
     * Runs an action on a user and shows their page with the outcome. A
     * `confirmed` action (reset methods, disable) has a page that says what it
     * will do (GET at the same address); only that page's post, which says
     * `confirm=yes`, runs it, and any other post goes to that page.
     */
    const userAction = (
      path: string,
      run: (
        p: Principal,
        id: string,
        body: { minutes?: string | undefined; oneTime?: string | undefined; pass?: string | undefined },
      ) => Promise<{ notice: string; issued?: IssuedPass }>,
      admissionClass: 'admin' | 'admin-emergency' = 'admin',
      confirmed?: ConfirmedUserAction,
    ) => {
      if (confirmed) {
        app.get(`/t/:tenant/admin/users/:id/${path}`, consoleView(UserParams, Type.Object({})), async (request, reply) => {
          const p = await adminOr(request, reply);
          if (!p) return reply;
          const detail = await admin.userDetail(p.tenant, request.params.id);
          const passesAllowed = p.tenant.policy.allowedMethods.includes('tap');
          return sendPage(reply, confirmUserActionView({ ...viewer(reply, p), detail, action: confirmed, passesAllowed }));
        });
      }
      app.post(`/t/:tenant/admin/users/:id/${path}`, formRoute(app, admissionClass, UserParams, ActionBody), async (request, reply) => {
        const p = await adminOr(request, reply, { change: true });
        if (!p) return reply;
        const { id } = request.params;
        if (confirmed && request.body.confirm !== 'yes') return reply.redirect(`${base(p)}/users/${encodeURIComponent(id)}/${path}`, 303);
        try {
          const { notice, issued } = await run(p, id, request.body);
          if (issued) {
            if (notice) deps.flash.set(reply, p.tenant.slug, p.session.id, { for: `user:${id}`, notice: { kind: 'info', text: notice } });
            return reply.redirect(`${userPath(p, id)}?issued=${await deps.passes.hold(holding(p, id), issued)}`, 303);
          }
          return go(reply, p, userPath(p, id), { for: `user:${id}`, notice: { kind: 'info', text: notice } });
        } catch (err) {
          const { text } = shownError(err);
          // An unknown user (or one of another tenant) has no page to go back to.
          if (err instanceof AppError && err.code === 'not-found') return go(reply, p, base(p), { for: 'users', notice: { kind: 'error', text } });
          return go(reply, p, userPath(p, id), { for: `user:${id}`, notice: { kind: 'error', text } });
        }
      });
    };

    userAction(
      'tap',
      async (p, id, body) => {
        const minutes = body.minutes ? Number(body.minutes) : undefined;
        if (minutes !== undefined && !Number.isInteger(minutes)) throw new AppError('invalid-request', 'enter the lifetime as a whole number of minutes');
        const issued = await admin.issuePass(p.tenant, actor(p), id, { minutes, oneTime: body.oneTime === 'on' });
        // (The page that shows the pass says it was issued.)
        return { notice: '', issued };
      },
      'admin-emergency',
    );
    userAction('tap/revoke', async (p, id) => {
      await admin.revokePass(p.tenant, actor(p), id);
      return { notice: 'Temporary Access Pass revoked.' };
    });
    userAction(
      'reset-methods',
      async (p, id, body) => {
        // The confirmation page offers a one-time pass to register with (checked unless it cannot be given): after a
        // reset the password alone registers nothing.
        const pass = body.pass === 'on' ? { oneTime: true } : undefined;
        const { removed, sessionsEnded, pass: issued } = await admin.resetMethods(p.tenant, actor(p), id, { pass });
        const notice = `Methods reset: ${removed} removed, ${sessionsEnded} sessions ended.`;
        if (issued) return { notice, issued };
        return { notice: `${notice} Their password no longer sets up a method: issue a Temporary Access Pass, or set a new password, to let them register.` };
      },
      'admin-emergency',
      'reset-methods',
    );
    userAction('revoke-sessions', async (p, id) => ({ notice: `${await admin.revokeSessions(p.tenant, actor(p), id)} sessions ended.` }), 'admin-emergency');
    userAction(
      'disable',
      async (p, id) => {
        if (id === p.user.id) throw new AppError('invalid-state', 'you cannot disable your own account');
        await admin.updateUser(p.tenant, actor(p), id, { status: 'disabled' });
        return { notice: 'Account disabled; every session ended.' };
      },
      'admin',
      'disable',
    );
    userAction('enable', async (p, id) => {
      await admin.updateUser(p.tenant, actor(p), id, { status: 'active' });
      return { notice: 'Account enabled.' };
    });
  };
}
