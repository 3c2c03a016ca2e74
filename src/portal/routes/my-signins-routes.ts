import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal, RequestAuth } from '../../http/authenticate.ts';
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
import { changePasswordView, passwordChangedView, reportedView, reportRefusedView, signinsView } from '../views/my-signins-views.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const EventParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const PAGE_SIZE = 20;

export interface MySigninsRoutesDeps {
  tenants: TenantLookup;
  auth: Pick<RequestAuth, 'findPrincipal'>;
  events: Pick<SigninEvents, 'listForUser'>;
  reports: Pick<SigninReports, 'report'>;
  passwords: Pick<PasswordChange, 'change'>;
}

/** My sign-ins (with "this wasn't me") and changing the password. */
export function mySigninsRoutes(deps: MySigninsRoutesDeps): FastifyPluginAsyncTypebox {
  const signedIn = principalOr(deps);
  return async (app) => {
    const viewer = (reply: FastifyReply, p: Principal): Viewer => ({ tenant: p.tenant, username: p.user.username, csrf: reply.generateCsrf() });

    app.get(
      '/t/:tenant/my/signins',
      { schema: { params: PageParams, querystring: Type.Object({ cursor: Field(200) }), hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'signins');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'view-signins')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        const page = await deps.events.listForUser(p.tenant.id, p.user.id, PAGE_SIZE, request.query.cursor);
        return sendPage(reply, signinsView({ ...viewer(reply, p), events: page.items, next: page.next }));
      },
    );

    app.post('/t/:tenant/my/signins/:id/report', formRoute(app, 'self-service', EventParams, Type.Object({ _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'signins');
      if (!p) return reply;
      try {
        const sessionsEnded = await deps.reports.report(p.tenant, p.user, p.session, request.params.id);
        return sendPage(reply, reportedView({ ...viewer(reply, p), sessionsEnded, minLength: PASSWORD_MIN }));
      } catch (err) {
        const { text, status } = shownError(err);
        const signInAgain = err instanceof AppError && err.code === 'reauthentication-required';
        return sendPage(reply, reportRefusedView({ ...viewer(reply, p), text, signInAgain }), status);
      }
    });

    app.get('/t/:tenant/my/password', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      // A registration session may not change the password: no form it could only be refused on.
      if (!sessionMay(p.session.scope, 'change-password')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
      return sendPage(reply, changePasswordView({ ...viewer(reply, p), minLength: PASSWORD_MIN }));
    });

    app.post(
      '/t/:tenant/my/password',
      formRoute(app, 'self-service', PageParams, Type.Object({ currentPassword: Field(1024), newPassword: Field(1024), _csrf: Field() }), { hashes: true }),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        try {
          await deps.passwords.change(p.tenant, p.user, p.session, request.body.currentPassword ?? '', request.body.newPassword ?? '', requestContext(request));
        } catch (err) {
          const { text, status } = shownError(err);
          return sendPage(reply, changePasswordView({ ...viewer(reply, p), minLength: PASSWORD_MIN, error: text }), status);
        }
        return sendPage(reply, passwordChangedView(viewer(reply, p)));
      },
    );
  };
}
