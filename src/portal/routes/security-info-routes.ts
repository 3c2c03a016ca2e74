import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal, RequestAuth } from '../../http/authenticate.ts';
import { CONTINUE_COOKIE } from '../../http/cookie-names.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { landingPath, OIDC_NEXT, type NextPage } from '../../http/page/landing.ts';
import { principalOr } from '../../http/page/principal-or.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import type { MethodManagement } from '../../methods/method-management.ts';
import { methodName } from '../../methods/registry.ts';
import type { Sessions } from '../../sessions/sessions.ts';
import { codeSetupView, overviewView, pairingView, recoveryCodesView, totpSetupView, type Notice, type Viewer } from '../views/security-info-views.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const MethodParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const Csrf = Type.Object({ _csrf: Field() });

export interface SecurityInfoRoutesDeps {
  tenants: TenantLookup;
  auth: Pick<RequestAuth, 'findPrincipal'>;
  management: MethodManagement;
  sessions: Pick<Sessions, 'isRecent' | 'authenticate'>;
  /** How long a sent confirmation code lives, for the words on the page. */
  codeLifetimeMinutes: number;
}

/**
 * The user's security info: their methods; add a passkey, a security key, an
 * authenticator app, a phone, an email address or recovery codes; rename,
 * make default, remove. Every rule (scope, recent sign-in, second factor,
 * the last method) is MethodManagement's; these handlers render its answers.
 */
export function securityInfoRoutes(deps: SecurityInfoRoutesDeps): FastifyPluginAsyncTypebox {
  const signedIn = principalOr(deps);
  return async (app) => {
    const form = <P extends TSchema, B extends TSchema>(params: P, body: B) => formRoute(app, 'self-service', params, body);
    const viewer = (reply: FastifyReply, p: Principal): Viewer => ({ tenant: p.tenant, username: p.user.username, csrf: reply.generateCsrf() });

    const overview = async (reply: FastifyReply, p: Principal, notice?: Notice, status = 200) => {
      const methods = (await deps.management.list(p.tenant, p.user)).filter((m) => m.state === 'active');
      const registering = p.session.scope === 'register';
      const waiting = reply.request.cookies[CONTINUE_COOKIE];
      const continueTo = waiting && OIDC_NEXT.test(waiting) ? landingPath(p.tenant, waiting as NextPage) : undefined;
      // Changes need a recent sign-in and, once there is a method, a second factor proved in it (not a remembered browser).
      const provedFactor = registering || p.session.amr.includes('mfa') || methods.length === 0;
      const canChange = deps.sessions.isRecent(p.session) && provedFactor;
      return sendPage(
        reply,
        overviewView({ ...viewer(reply, p), notice, registering, continueTo, canChange, needsSecondFactor: !provedFactor, methods, addable: deps.management.addable(p.tenant, p.session) }),
        status,
      );
    };

    const totpSetup = (reply: FastifyReply, p: Principal, id: string, details: Record<string, unknown>, error?: string, status = 200) =>
      sendPage(reply, totpSetupView({ ...viewer(reply, p), id, qrCodeSvg: String(details.qrCodeSvg), secret: String(details.secret), error }), status);

    const codeSetup = (reply: FastifyReply, p: Principal, id: string, channel: string, to: string, notice?: Notice, status = 200) =>
      sendPage(reply, codeSetupView({ ...viewer(reply, p), id, channel, to, lifetimeMinutes: Math.round(deps.codeLifetimeMinutes), notice }), status);

    /** The overview with an expected failure in words; anything else goes on to the error handler. */
    const failed = (reply: FastifyReply, p: Principal, err: unknown) => {
      const { text, status } = shownError(err);
      return overview(reply, p, { kind: 'error', text }, status);
    };

    /** Registers a phone number or an email address and shows where its code went. */
    const addDestination = async (reply: FastifyReply, p: Principal, channel: 'sms' | 'voice' | 'email', to: string) => {
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, channel, { to }, reply.request.ip);
        return await codeSetup(reply, p, enrolment.id, channel, String(enrolment.to));
      } catch (err) {
        return failed(reply, p, err);
      }
    };

    /** A phone number or address of this user still waiting for its code. */
    const pendingDestination = async (p: Principal, id: string) =>
      (await deps.management.list(p.tenant, p.user)).find((m) => m.id === id && m.state === 'pending' && m.to !== undefined);
    const expired = (reply: FastifyReply, p: Principal) => overview(reply, p, { kind: 'error', text: 'That confirmation has expired. Add the method again.' }, 404);

    /** Runs a change and shows the overview with its outcome. */
    const change = async (reply: FastifyReply, p: Principal, done: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        return failed(reply, p, err);
      }
      // The session may have changed (a registration session becomes a full one).
      const session = await deps.sessions.authenticate(p.token);
      return overview(reply, session ? { ...p, session } : p, { kind: 'info', text: done });
    };

    app.get('/t/:tenant/my/security-info', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      return p ? overview(reply, p) : reply;
    });

    app.post('/t/:tenant/my/security-info/webauthn', form(PageParams, Type.Object({ label: Field(100), kind: Field(20), attestation: Field(70000), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const added = request.body.kind === 'security-key' ? 'Security key added.' : 'Passkey added.';
      return change(reply, p, added, async () => {
        let attestation: unknown;
        try {
          attestation = JSON.parse(request.body.attestation ?? '');
        } catch {
          throw new AppError('invalid-request', 'the authenticator response was not readable; try again');
        }
        await deps.management.enrol(p.tenant, p.user, p.session, 'webauthn', { label: request.body.label?.trim() || undefined, attestation });
      });
    });

    app.post('/t/:tenant/my/security-info/totp', form(PageParams, Type.Object({ label: Field(100), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'totp', { label: request.body.label?.trim() || undefined });
        return await totpSetup(reply, p, enrolment.id, enrolment);
      } catch (err) {
        return failed(reply, p, err);
      }
    });

    app.post('/t/:tenant/my/security-info/pair', form(PageParams, Type.Object({ label: Field(100), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'push', { label: request.body.label?.trim() || undefined });
        // The pairing link is a one-time secret: not for any cache.
        reply.header('cache-control', 'no-store');
        return await sendPage(reply, pairingView({ ...viewer(reply, p), pairingUrl: String(enrolment.pairingUrl), qrCodeSvg: String(enrolment.qrCodeSvg), minutes: Number(enrolment.lifetimeMinutes) }));
      } catch (err) {
        return failed(reply, p, err);
      }
    });

    app.post('/t/:tenant/my/security-info/totp/:id/confirm', form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        await deps.management.confirm(p.tenant, p.user, p.session, request.params.id, request.body.code?.trim() ?? '');
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid-code') {
          const details = await deps.management.setupDetails(p.tenant, p.user, request.params.id);
          return totpSetup(reply, p, request.params.id, details, "That code didn't work. Check the app and try the newest code.", 401);
        }
        return failed(reply, p, err);
      }
      return change(reply, p, 'Authenticator app added.', async () => {});
    });

    app.post('/t/:tenant/my/security-info/phone', form(PageParams, Type.Object({ to: Field(64), channel: Field(10), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return addDestination(reply, p, request.body.channel === 'voice' ? 'voice' : 'sms', request.body.to ?? '');
    });

    app.post('/t/:tenant/my/security-info/email', form(PageParams, Type.Object({ to: Field(320), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return addDestination(reply, p, 'email', request.body.to ?? '');
    });

    app.post('/t/:tenant/my/security-info/codes/:id/confirm', form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const pending = await pendingDestination(p, request.params.id);
      if (!pending) return expired(reply, p);
      try {
        await deps.management.confirm(p.tenant, p.user, p.session, pending.id, request.body.code?.trim() ?? '');
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid-code') {
          return codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'error', text: "That code didn't work. Check it, or send a new code." }, 401);
        }
        return failed(reply, p, err);
      }
      return change(reply, p, `${methodName(pending.type)} added.`, async () => {});
    });

    app.post('/t/:tenant/my/security-info/codes/:id/resend', form(MethodParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const pending = await pendingDestination(p, request.params.id);
      if (!pending) return expired(reply, p);
      try {
        await deps.management.resendConfirmation(p.tenant, p.user, p.session, pending.id, request.ip);
        return await codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'info', text: 'We sent a new code. Use the newest one.' });
      } catch (err) {
        const { text, status } = shownError(err);
        return codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'error', text }, status);
      }
    });

    app.post('/t/:tenant/my/security-info/recovery-codes', form(PageParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'recovery-codes', {});
        return sendPage(reply, recoveryCodesView({ ...viewer(reply, p), codes: enrolment.codes as string[] }));
      } catch (err) {
        return failed(reply, p, err);
      }
    });

    app.post('/t/:tenant/my/security-info/methods/:id/rename', form(MethodParams, Type.Object({ label: Field(100), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return change(reply, p, 'Method renamed.', () => deps.management.update(p.tenant, p.user, p.session, request.params.id, { label: request.body.label ?? '' }));
    });

    app.post('/t/:tenant/my/security-info/methods/:id/default', form(MethodParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return change(reply, p, 'Default method changed.', () => deps.management.update(p.tenant, p.user, p.session, request.params.id, { default: true }));
    });

    app.post('/t/:tenant/my/security-info/methods/:id/delete', form(MethodParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return change(reply, p, 'Method removed.', () => deps.management.remove(p.tenant, p.user, p.session, request.params.id));
    });
  };
}
