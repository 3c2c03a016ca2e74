import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal, RequestAuth } from '../../http/authenticate.ts';
import { isAdmin } from '../../http/page/is-admin.ts';
import { requestContext } from '../../http/request-context.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { principalOr } from '../../http/page/principal-or.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import type { SigninEvents } from '../../activity/signin-events.ts';
import type { SigninReports } from '../../activity/signin-report.ts';
import { PASSWORD_MIN } from '../../directory/password-rules.ts';
import type { PasswordChange } from '../../signin/password-change.ts';
import { sessionMay } from '../../sessions/session-scope.ts';
import type { Viewer } from '../views/security-info-views.ts';
import { changePasswordView, confirmReportView, reportedView, signinsView } from '../views/my-signins-views.ts';
import type { FlashData, PageFlash } from '../../http/page/flash.ts';
import { thisSignin } from './this-signin.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const EventParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const PAGE_SIZE = 20;

export interface MySigninsRoutesDeps {
  tenants: TenantLookup;
  auth: Pick<RequestAuth, 'findPrincipal'>;
  events: Pick<SigninEvents, 'listForUser'>;
  reports: Pick<SigninReports, 'report'>;
  passwords: Pick<PasswordChange, 'change' | 'setFirst' | 'hasPassword'>;
  flash: PageFlash;
}

/**
 * My sign-ins (with "this wasn't me", after a page that says what it does)
 * and setting or changing the password. Every post answers with a redirect.
 */
export function mySigninsRoutes(deps: MySigninsRoutesDeps): FastifyPluginAsyncTypebox {
  const signedIn = principalOr(deps);
  return async (app) => {
    const viewer = (reply: FastifyReply, p: Principal): Viewer => ({
      tenant: p.tenant,
      username: p.user.username,
      csrf: reply.generateCsrf(),
      admin: isAdmin(p),
    });
    const go = (reply: FastifyReply, p: Principal, to: string, data?: FlashData) => {
      if (data) deps.flash.set(reply, p.tenant.slug, p.session.id, data);
      return reply.redirect(to, 303);
    };

    app.get(
      '/t/:tenant/my/signins',
      { schema: { params: PageParams, querystring: Type.Object({ cursor: Field(200) }), hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'signins');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'view-signins')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        const page = await deps.events.listForUser(p.tenant.id, p.user.id, PAGE_SIZE, request.query.cursor);
        const yours = thisSignin(page.items, p.session, { ip: request.ip, userAgent: request.headers['user-agent'] ?? null });
        return sendPage(reply, signinsView({ ...viewer(reply, p), events: page.items, next: page.next, thisSignin: yours }));
      },
    );

    // "This wasn't me" signs the user out everywhere else and tells the administrator: a page says so first.
    app.get(
      '/t/:tenant/my/signins/:id/report',
      { schema: { params: EventParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'signins');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'report-signin')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
        const mine = flash?.for === request.params.id ? flash : undefined;
        return sendPage(
          reply,
          confirmReportView({ ...viewer(reply, p), id: request.params.id, error: mine?.notice?.text, signInAgain: mine?.values?.signInAgain === 'yes' }),
        );
      },
    );

    app.post('/t/:tenant/my/signins/:id/report', formRoute(app, 'self-service', EventParams, Type.Object({ _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'signins');
      if (!p) return reply;
      if (!sessionMay(p.session.scope, 'report-signin')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
      try {
        const outcome = await deps.reports.report(p.tenant, p.user, p.session, request.params.id);
        return go(reply, p, `/t/${p.tenant.slug}/my/signins/reported`, {
          for: 'reported',
          values: {
            sessionsEnded: String(outcome.sessionsEnded),
            methodsRemoved: String(outcome.methodsRemoved),
            methodsLeft: String(outcome.methodsLeft),
            passRevoked: outcome.passRevoked ? 'yes' : 'no',
          },
        });
      } catch (err) {
        const { text } = shownError(err);
        const signInAgain = err instanceof AppError && err.code === 'reauthentication-required';
        return go(reply, p, `/t/${p.tenant.slug}/my/signins/${request.params.id}/report`, {
          for: request.params.id,
          notice: { kind: 'error', text },
          values: { signInAgain: signInAgain ? 'yes' : 'no' },
        });
      }
    });

    app.get(
      '/t/:tenant/my/signins/reported',
      { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'signins');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'view-signins')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id, { keep: true });
        const reported = flash?.for === 'reported';
        const sessionsEnded = reported ? Number(flash.values?.sessionsEnded ?? 0) : undefined;
        const methodsRemoved = reported ? Number(flash.values?.methodsRemoved ?? 0) : 0;
        const noMethodLeft = reported && flash.values?.methodsLeft === '0';
        const passRevoked = reported && flash.values?.passRevoked === 'yes';
        return sendPage(
          reply,
          reportedView({
            ...viewer(reply, p),
            sessionsEnded,
            methodsRemoved,
            passRevoked,
            noMethodLeft,
            minLength: PASSWORD_MIN,
            hasPassword: await deps.passwords.hasPassword(p.tenant, p.user),
          }),
        );
      },
    );

    app.get('/t/:tenant/my/password', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      // A registration session may not change the password: no form it could only be refused on.
      if (!sessionMay(p.session.scope, 'change-password')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
      const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
      const mine = flash?.for === 'password' ? flash : undefined;
      return sendPage(
        reply,
        changePasswordView({
          ...viewer(reply, p),
          minLength: PASSWORD_MIN,
          hasPassword: await deps.passwords.hasPassword(p.tenant, p.user),
          error: mine?.notice?.text,
          fieldErrors: mine?.fieldErrors,
          signInAgain: mine?.values?.signInAgain === 'recent' || mine?.values?.signInAgain === 'second-factor' ? mine.values.signInAgain : undefined,
        }),
      );
    });

    app.post(
      '/t/:tenant/my/password',
      formRoute(app, 'self-service', PageParams, Type.Object({ currentPassword: Field(1024), newPassword: Field(1024), _csrf: Field() }), { hashes: true }),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'change-password')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        // Which it is follows from the account, never from the form: a form without the current password
        // cannot change an existing one.
        const first = !(await deps.passwords.hasPassword(p.tenant, p.user));
        const next = request.body.newPassword ?? '';
        try {
          if (first) await deps.passwords.setFirst(p.tenant, p.user, p.session, next, requestContext(request));
          else await deps.passwords.change(p.tenant, p.user, p.session, request.body.currentPassword ?? '', next, requestContext(request));
        } catch (err) {
          const { text } = shownError(err);
          const field = err instanceof AppError && err.code === 'invalid-credentials' ? 'current-password' : 'new-password';
          // Refused for a sign-in too long ago, or one without a second factor: the page offers the sign-in it needs.
          const signInAgain = !(err instanceof AppError)
            ? ''
            : err.code === 'reauthentication-required'
              ? 'recent'
              : err.code === 'second-factor-required'
                ? 'second-factor'
                : '';
          // Passwords are never carried to the next page; the reason is, at its field.
          return go(reply, p, `/t/${p.tenant.slug}/my/password`, {
            for: 'password',
            notice: { kind: 'error', text },
            fieldErrors: { [field]: text },
            values: { signInAgain },
          });
        }
        const done = first
          ? 'Password set. Next time, sign in with your username and this password, then your sign-in method.'
          : 'Your password was changed and your other sessions were ended.';
        return go(reply, p, `/t/${p.tenant.slug}/my/security-info`, { notice: { kind: 'info', text: done } });
      },
    );
  };
}
