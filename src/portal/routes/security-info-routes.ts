/** The security-info pages: the user's methods, adding one (authenticator app, passkey, phone, email), removing and renaming. */
import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal, RequestAuth } from '../../http/authenticate.ts';
import { isAdmin } from '../../http/page/is-admin.ts';
import { CONTINUE_COOKIE } from '../../http/cookie-names.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { landingPath, OIDC_NEXT, type NextPage } from '../../http/page/landing.ts';
import { principalOr } from '../../http/page/principal-or.ts';
import { qrCodeSvg } from '../../methods/qr-code-svg.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import type { MethodManagement } from '../../methods/method-management.ts';
import { methodName } from '../../methods/registry.ts';
import type { Sessions } from '../../sessions/sessions.ts';
import {
  codeSetupView,
  confirmRemoveView,
  confirmReplaceCodesView,
  overviewView,
  pairingView,
  recoveryCodesView,
  totpSetupView,
  type Notice,
  type Viewer,
} from '../views/security-info-views.ts';
import type { FlashData, PageFlash } from '../../http/page/flash.ts';
import type { PasswordChange } from '../../signin/password-change.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const MethodParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const Csrf = Type.Object({ _csrf: Field() });
/** The flash's `for` of a pairing link on its way to the page that shows it. */
const PAIRING_FLASH = 'push-pairing';

export interface SecurityInfoRoutesDeps {
  tenants: TenantLookup;
  auth: Pick<RequestAuth, 'findPrincipal'>;
  management: MethodManagement;
  sessions: Pick<Sessions, 'isRecent'>;
  passwords: Pick<PasswordChange, 'hasPassword'>;
  flash: PageFlash;
  /** How long a sent confirmation code lives, for the words on the page. */
  codeLifetimeMinutes: number;
}

/**
 * The user's security info: their methods; add a passkey, a security key, an
 * authenticator app, a phone, an email address or recovery codes; rename,
 * make default, remove. Every rule (scope, recent sign-in, second factor,
 * the last method) is MethodManagement's; these handlers render its answers.
 *
 * Every post answers with a redirect to a page (post-redirect-get): Back and
 * refresh never post again, so a refresh of the QR page shows the same key
 * (the pending method's) and a refresh of new recovery codes shows the same
 * codes. What a post tells the next page travels in the sealed flash cookie.
 */
export function securityInfoRoutes(deps: SecurityInfoRoutesDeps): FastifyPluginAsyncTypebox {
  const signedIn = principalOr(deps);
  return async (app) => {
    const form = <P extends TSchema, B extends TSchema>(params: P, body: B) => formRoute(app, 'self-service', params, body);
    const viewer = (reply: FastifyReply, p: Principal): Viewer => ({
      tenant: p.tenant,
      username: p.user.username,
      csrf: reply.generateCsrf(),
      admin: isAdmin(p),
    });
    const base = (p: Principal) => `/t/${p.tenant.slug}/my/security-info`;

    /** Leaves `data` for the page at `to` and goes there. */
    const go = (reply: FastifyReply, p: Principal, to: string, data?: FlashData) => {
      if (data) deps.flash.set(reply, p.tenant.slug, p.session.id, data);
      return reply.redirect(to, 303);
    };
    /** Back to the overview with an expected failure in words; anything else goes on to the error handler. */
    const failed = (reply: FastifyReply, p: Principal, err: unknown, extra: FlashData = {}) =>
      go(reply, p, base(p), { notice: { kind: 'error', text: shownError(err).text }, ...extra });
    const done = (reply: FastifyReply, p: Principal, text: string) => go(reply, p, base(p), { notice: { kind: 'info', text } });

    const activeMethods = async (p: Principal) => (await deps.management.list(p.tenant, p.user)).filter((m) => m.state === 'active');

    app.get(
      '/t/:tenant/my/security-info',
      { schema: { params: PageParams, querystring: Type.Object({ saved: Field(10) }), hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id, { keep: true });
        // New recovery codes, and a pairing link, stay for Back and Forward until the user says they are done (or the flash expires).
        const kept =
          (flash?.for === 'recovery-codes' && request.query.saved !== 'codes') || (flash?.for === PAIRING_FLASH && request.query.saved !== 'pairing');
        if (!kept) deps.flash.clear(reply, p.tenant.slug);
        const notice: Notice | undefined = flash?.for === undefined ? flash?.notice : undefined;
        const methods = await activeMethods(p);
        const registering = p.session.scope === 'register';
        const waiting = request.cookies[CONTINUE_COOKIE];
        const continueTo = waiting && OIDC_NEXT.test(waiting) ? landingPath(p.tenant, waiting as NextPage) : undefined;
        // Changes need a recent sign-in and, once there is a method, a second factor proved in it (not a remembered browser).
        const provedFactor = registering || p.session.amr.includes('mfa') || methods.length === 0;
        const canChange = deps.sessions.isRecent(p.session) && provedFactor;
        const hasPassword = await deps.passwords.hasPassword(p.tenant, p.user);
        return sendPage(
          reply,
          overviewView({
            ...viewer(reply, p),
            notice,
            values: flash?.values,
            fieldErrors: flash?.fieldErrors,
            registering,
            continueTo,
            canChange,
            needsSecondFactor: !provedFactor,
            methods,
            addable: deps.management.addable(p.tenant, p.session),
            hasPassword,
            signedInWithPass: p.session.amr.includes('tap'),
          }),
        );
      },
    );

    app.post(
      '/t/:tenant/my/security-info/webauthn',
      form(PageParams, Type.Object({ label: Field(100), kind: Field(20), attestation: Field(70000), _csrf: Field() })),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        try {
          let attestation: unknown;
          try {
            attestation = JSON.parse(request.body.attestation ?? '');
          } catch {
            throw new AppError('invalid-request', 'the authenticator response was not readable; try again');
          }
          await deps.management.enrol(p.tenant, p.user, p.session, 'webauthn', { label: request.body.label?.trim() || undefined, attestation });
        } catch (err) {
          return failed(reply, p, err);
        }
        return done(reply, p, request.body.kind === 'security-key' ? 'Security key added.' : 'Passkey added.');
      },
    );

    app.post('/t/:tenant/my/security-info/totp', form(PageParams, Type.Object({ label: Field(100), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'totp', { label: request.body.label?.trim() || undefined });
        return go(reply, p, `${base(p)}/totp/${enrolment.id}`);
      } catch (err) {
        return failed(reply, p, err, { values: { 'totp-label': request.body.label ?? '' } });
      }
    });

    // The set-up page of a pending app: its QR code and key are the pending method's, so a refresh shows the same ones.
    app.get(
      '/t/:tenant/my/security-info/totp/:id',
      { schema: { params: MethodParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
        let details: Record<string, unknown>;
        try {
          details = await deps.management.setupDetails(p.tenant, p.user, p.session, request.params.id);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          if (!['invalid-state', 'not-found'].includes(err.code)) return failed(reply, p, err);
          return go(reply, p, base(p), { notice: { kind: 'error', text: 'That set-up has finished or expired. Add the app again if you need to.' } });
        }
        const error = flash?.for === request.params.id ? flash.notice?.text : undefined;
        return sendPage(
          reply,
          totpSetupView({
            ...viewer(reply, p),
            id: request.params.id,
            qrCodeSvg: String(details.qrCodeSvg),
            secret: String(details.secret),
            otpauthUri: String(details.otpauthUri),
            error,
            code: flash?.values?.code,
          }),
        );
      },
    );

    // The post makes the pairing link and goes to the page that shows it (post-redirect-get): a refresh, Back or
    // Forward shows the same link from the sealed flash and never makes another one.
    app.post('/t/:tenant/my/security-info/pair', form(PageParams, Type.Object({ label: Field(100), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'push', { label: request.body.label?.trim() || undefined });
        return go(reply, p, `${base(p)}/pair`, {
          for: PAIRING_FLASH,
          secrets: [String(enrolment.pairingUrl)],
          values: { minutes: String(Number(enrolment.lifetimeMinutes)) },
        });
      } catch (err) {
        return failed(reply, p, err);
      }
    });

    // The pairing link, held in the flash (sealed, bound to this session) until the user leaves the page.
    app.get(
      '/t/:tenant/my/security-info/pair',
      { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id, { keep: true });
        const pairingUrl = flash?.for === PAIRING_FLASH ? flash.secrets?.[0] : undefined;
        if (!pairingUrl) {
          deps.flash.clear(reply, p.tenant.slug);
          return go(reply, p, base(p), { notice: { kind: 'info', text: 'That pairing link is no longer shown. Add the authenticator again for a new one.' } });
        }
        // The pairing link is a one-time secret: not for any cache.
        reply.header('cache-control', 'no-store');
        return sendPage(
          reply,
          pairingView({ ...viewer(reply, p), pairingUrl, qrCodeSvg: await qrCodeSvg(pairingUrl), minutes: Number(flash?.values?.minutes ?? 10) }),
        );
      },
    );

    app.post('/t/:tenant/my/security-info/totp/:id/confirm', form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const code = request.body.code?.replace(/\s/g, '') ?? '';
      const again = (text: string) =>
        go(reply, p, `${base(p)}/totp/${request.params.id}`, { for: request.params.id, notice: { kind: 'error', text }, values: { code } });
      if (!/^[0-9]{6}$/.test(code)) return again('Enter the 6 digits the app shows, with no letters.');
      try {
        await deps.management.confirm(p.tenant, p.user, p.session, request.params.id, code);
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid-code') return again("That code didn't work. Check the app and try the newest code.");
        return failed(reply, p, err);
      }
      return done(reply, p, 'Authenticator app added.');
    });

    /** Registers a phone number or an email address and goes to the page where its code is typed. */
    const addDestination = async (reply: FastifyReply, p: Principal, channel: 'sms' | 'voice' | 'email', to: string) => {
      const field = channel === 'email' ? 'email' : 'phone';
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, channel, { to }, reply.request.ip);
        return go(reply, p, `${base(p)}/codes/${enrolment.id}`);
      } catch (err) {
        const { text } = shownError(err);
        // The number or address stays as typed, with the reason at the field.
        return go(reply, p, base(p), { notice: { kind: 'error', text }, values: { [field]: to, channel }, fieldErrors: { [field]: text } });
      }
    };

    /** A phone number or address of this user still waiting for its code. */
    const pendingDestination = async (p: Principal, id: string) =>
      (await deps.management.list(p.tenant, p.user)).find((m) => m.id === id && m.state === 'pending' && m.to !== undefined);
    const expired = (reply: FastifyReply, p: Principal) =>
      go(reply, p, base(p), { notice: { kind: 'error', text: 'That confirmation has expired. Add the method again.' } });

    app.post(
      '/t/:tenant/my/security-info/phone',
      form(PageParams, Type.Object({ to: Field(64), channel: Field(10), _csrf: Field() })),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        return addDestination(reply, p, request.body.channel === 'voice' ? 'voice' : 'sms', request.body.to ?? '');
      },
    );

    app.post('/t/:tenant/my/security-info/email', form(PageParams, Type.Object({ to: Field(320), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      return addDestination(reply, p, 'email', request.body.to ?? '');
    });

    app.get(
      '/t/:tenant/my/security-info/codes/:id',
      { schema: { params: MethodParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
        const pending = await pendingDestination(p, request.params.id);
        if (!pending) return expired(reply, p);
        const notice = flash?.for === pending.id ? flash.notice : undefined;
        return sendPage(
          reply,
          codeSetupView({
            ...viewer(reply, p),
            id: pending.id,
            channel: pending.type,
            to: pending.to!,
            lifetimeMinutes: Math.round(deps.codeLifetimeMinutes),
            notice,
            code: flash?.values?.code,
          }),
        );
      },
    );

    app.post('/t/:tenant/my/security-info/codes/:id/confirm', form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const pending = await pendingDestination(p, request.params.id);
      if (!pending) return expired(reply, p);
      const code = request.body.code?.trim() ?? '';
      try {
        await deps.management.confirm(p.tenant, p.user, p.session, pending.id, code);
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid-code') {
          return go(reply, p, `${base(p)}/codes/${pending.id}`, {
            for: pending.id,
            notice: { kind: 'error', text: "That code didn't work. Check it, or send a new code." },
            values: { code },
          });
        }
        return failed(reply, p, err);
      }
      return done(reply, p, `${methodName(pending.type)} added.`);
    });

    app.post('/t/:tenant/my/security-info/codes/:id/resend', form(MethodParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const pending = await pendingDestination(p, request.params.id);
      if (!pending) return expired(reply, p);
      let notice: Notice;
      try {
        await deps.management.resendConfirmation(p.tenant, p.user, p.session, pending.id, request.ip);
        notice = { kind: 'info', text: 'We sent a new code. Use the newest one.' };
      } catch (err) {
        notice = { kind: 'error', text: shownError(err).text };
      }
      return go(reply, p, `${base(p)}/codes/${pending.id}`, { for: pending.id, notice });
    });

    // Replacing recovery codes makes the old ones useless: a page says so first, and only its button replaces them.
    app.get(
      '/t/:tenant/my/security-info/recovery-codes/replace',
      { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const codes = (await activeMethods(p)).find((m) => m.type === 'recovery-codes');
        if (!codes) return reply.redirect(base(p), 303);
        return sendPage(reply, confirmReplaceCodesView({ ...viewer(reply, p), remaining: codes.remaining ?? 0 }));
      },
    );

    app.post('/t/:tenant/my/security-info/recovery-codes', form(PageParams, Type.Object({ confirm: Field(5), _csrf: Field() })), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      const hasCodes = (await activeMethods(p)).some((m) => m.type === 'recovery-codes');
      if (hasCodes && request.body.confirm !== 'yes') return go(reply, p, `${base(p)}/recovery-codes/replace`);
      try {
        const enrolment = await deps.management.enrol(p.tenant, p.user, p.session, 'recovery-codes', {});
        return go(reply, p, `${base(p)}/recovery-codes`, { for: 'recovery-codes', secrets: enrolment.codes as string[] });
      } catch (err) {
        return failed(reply, p, err);
      }
    });

    // New codes, from the sealed flash: a refresh shows the same codes (never new ones) until the user moves on.
    app.get(
      '/t/:tenant/my/security-info/recovery-codes',
      { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        // Recovery codes come after a first method: a registration session has none to show.
        if (p.session.scope !== 'full') return reply.redirect(base(p), 303);
        const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id, { keep: true });
        const codes = flash?.for === 'recovery-codes' ? flash.secrets : undefined;
        return sendPage(reply, recoveryCodesView({ ...viewer(reply, p), codes }));
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/rename',
      form(MethodParams, Type.Object({ label: Field(100), _csrf: Field() })),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const label = request.body.label ?? '';
        try {
          await deps.management.update(p.tenant, p.user, p.session, request.params.id, { label });
        } catch (err) {
          const field = `rename-${request.params.id}`;
          return failed(reply, p, err, { values: { [field]: label }, fieldErrors: { [field]: shownError(err).text } });
        }
        return done(reply, p, 'Method renamed.');
      },
    );

    app.post('/t/:tenant/my/security-info/methods/:id/default', form(MethodParams, Csrf), async (request, reply) => {
      const p = await signedIn(request, reply, 'security-info');
      if (!p) return reply;
      try {
        await deps.management.update(p.tenant, p.user, p.session, request.params.id, { default: true });
      } catch (err) {
        return failed(reply, p, err);
      }
      return done(reply, p, 'Default method changed.');
    });

    // Removing a method: a page first says what it means, and only its button removes it.
    app.get(
      '/t/:tenant/my/security-info/methods/:id/remove',
      { schema: { params: MethodParams, hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        const methods = await activeMethods(p);
        const method = methods.find((m) => m.id === request.params.id);
        if (!method) return go(reply, p, base(p), { notice: { kind: 'error', text: 'That method is not one of yours any more.' } });
        return sendPage(reply, confirmRemoveView({ ...viewer(reply, p), method, others: methods.filter((m) => m.id !== method.id) }));
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/delete',
      form(MethodParams, Type.Object({ confirm: Field(5), _csrf: Field() })),
      async (request, reply) => {
        const p = await signedIn(request, reply, 'security-info');
        if (!p) return reply;
        if (request.body.confirm !== 'yes') return go(reply, p, `${base(p)}/methods/${request.params.id}/remove`);
        try {
          await deps.management.remove(p.tenant, p.user, p.session, request.params.id);
        } catch (err) {
          return failed(reply, p, err);
        }
        return done(reply, p, 'Method removed.');
      },
    );
  };
}
