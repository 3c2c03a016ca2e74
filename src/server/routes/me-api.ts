import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import type { RequestAuth } from '../../http/authenticate.ts';
import type { MethodManagement } from '../../methods/method-management.ts';
import type { PasswordChange } from '../../signin/password-change.ts';
import type { SigninEvents } from '../../activity/signin-events.ts';
import type { SigninReports } from '../../activity/signin-report.ts';
import type { Sessions } from '../../sessions/sessions.ts';
import { DeliveryInfo, IdParams, MethodView, SigninEventView, signinEventView, WebAuthnAttestation } from '../../http/api-schemas.ts';
import type { OidcRevocation } from '../../sessions/oidc-revocation.ts';
import { requestContext } from '../../http/request-context.ts';

const bearer = [{ bearerAuth: [] }];

/** Self-service: the signed-in user's own account, methods and sign-in activity. */
/** What the self-service API works with (narrow, so what it can touch is plain). */
export interface MeApiDeps {
  auth: Pick<RequestAuth, 'requirePrincipal'>;
  management: MethodManagement;
  passwords: Pick<PasswordChange, 'change' | 'setFirst'>;
  events: Pick<SigninEvents, 'listForUser'>;
  reports: Pick<SigninReports, 'report'>;
  sessions: Pick<Sessions, 'revoke'>;
  oidcRevocation: Pick<OidcRevocation, 'endSteadfastSession'>;
}

export function meApi(services: MeApiDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/api/v1/me',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          response: {
            200: Type.Object({
              id: Type.String(),
              tenant: Type.String(),
              username: Type.String(),
              email: Type.Union([Type.String(), Type.Null()]),
              phone: Type.Union([Type.String(), Type.Null()]),
              session: Type.Object({ scope: Type.String(), amr: Type.Array(Type.String()), expiresAt: Type.String() }),
            }),
          },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'view-account');
        return {
          id: user.id,
          tenant: tenant.slug,
          username: user.username,
          email: user.email,
          phone: user.phone,
          session: { scope: session.scope, amr: session.amr, expiresAt: new Date(session.expiresAt).toISOString() },
        };
      },
    );

    app.get(
      '/api/v1/me/methods',
      { schema: { tags: ['self-service'], security: bearer, response: { 200: Type.Array(MethodView) } }, config: { admissionClass: 'self-service' } },
      async (request) => {
        const { user, tenant } = await services.auth.requirePrincipal(request, 'list-methods');
        return services.management.list(tenant, user);
      },
    );

    app.post(
      '/api/v1/me/methods',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          summary:
            'Register a method: totp answers with the secret and QR code, recovery-codes with the codes (shown once); sms, voice and email send a code to `to`, confirmed at .../{id}/confirm',
          body: Type.Object({
            type: Type.String({ minLength: 1, maxLength: 32 }),
            label: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            attestation: Type.Optional(WebAuthnAttestation),
            to: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'sms and voice: phone number with country code; email: address' })),
          }),
          response: {
            201: Type.Object(
              {
                id: Type.String(),
                state: Type.String(),
                secret: Type.Optional(Type.String()),
                otpauthUri: Type.Optional(Type.String()),
                qrCodeSvg: Type.Optional(Type.String()),
                codes: Type.Optional(Type.Array(Type.String())),
                to: Type.Optional(Type.String({ description: 'the destination, masked' })),
                delivery: Type.Optional(DeliveryInfo),
              },
              { additionalProperties: true },
            ),
          },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request, reply) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'add-method');
        const { type, label, attestation, to } = request.body;
        if (type === 'webauthn' && !attestation)
          throw new AppError('invalid-request', 'a webauthn registration needs the attestation from POST /api/v1/me/methods/webauthn/options');
        const result = await services.management.enrol(tenant, user, session, type, { label, attestation, to }, request.ip);
        // Secrets in this answer must not linger in any cache.
        reply.header('cache-control', 'no-store');
        return reply.code(201).send(result);
      },
    );

    app.post(
      '/api/v1/me/methods/webauthn/options',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          summary: 'WebAuthn registration options (PublicKeyCredentialCreationOptionsJSON); then POST /api/v1/me/methods {type: "webauthn", attestation}',
          body: Type.Optional(Type.Object({ kind: Type.Optional(Type.Union([Type.Literal('passkey'), Type.Literal('security-key')])) })),
          response: { 200: Type.Object({}, { additionalProperties: true }) },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'add-method');
        return services.management.webauthnOptions(tenant, user, session, request.body?.kind ?? 'passkey');
      },
    );

    app.post(
      '/api/v1/me/password',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          summary:
            'Change the password (with currentPassword, from a session signed in within the last 10 minutes, with a second factor proved in it if the account has one; a new password differing from the current one), or set a first one (newPassword only: an account with no password, a full session signed in within the last 10 minutes with a pass or a passkey); ends every other session',
          body: Type.Object({
            currentPassword: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'required unless the account has no password yet' })),
            newPassword: Type.String({ minLength: 1, maxLength: 1024 }),
          }),
          response: { 200: Type.Object({ changed: Type.Literal(true), sessionsEnded: Type.Integer() }) },
        },
        config: { admissionClass: 'self-service', hashes: true },
      },
      async (request) => {
        const principal = await services.auth.requirePrincipal(request, 'change-password');
        const { currentPassword, newPassword } = request.body;
        const sessionsEnded =
          currentPassword === undefined
            ? await services.passwords.setFirst(principal.tenant, principal.user, principal.session, newPassword, requestContext(request))
            : await services.passwords.change(principal.tenant, principal.user, principal.session, currentPassword, newPassword, requestContext(request));
        return { changed: true as const, sessionsEnded };
      },
    );

    app.post(
      '/api/v1/me/methods/:id/confirm',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          params: IdParams,
          body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 200: Type.Object({ id: Type.String(), state: Type.Literal('active') }) },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'confirm-method');
        return services.management.confirm(tenant, user, session, request.params.id, request.body.code);
      },
    );

    app.post(
      '/api/v1/me/methods/:id/resend',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          summary: 'Send a new confirmation code to a pending phone number or email address (after the resend cooldown)',
          params: IdParams,
          response: { 200: Type.Object({ id: Type.String(), delivery: DeliveryInfo }) },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'resend-confirmation');
        return services.management.resendConfirmation(tenant, user, session, request.params.id, request.ip);
      },
    );

    app.patch(
      '/api/v1/me/methods/:id',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          params: IdParams,
          body: Type.Object({ label: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), default: Type.Optional(Type.Boolean()) }),
          response: { 200: MethodView },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'change-method');
        return services.management.update(tenant, user, session, request.params.id, request.body);
      },
    );

    app.delete(
      '/api/v1/me/methods/:id',
      { schema: { tags: ['self-service'], security: bearer, params: IdParams }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'remove-method');
        await services.management.remove(tenant, user, session, request.params.id);
        return reply.code(204).send();
      },
    );

    app.get(
      '/api/v1/me/signins',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          }),
          response: {
            200: Type.Object({
              items: Type.Array(SigninEventView),
              next: Type.Union([Type.String(), Type.Null()]),
            }),
          },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant } = await services.auth.requirePrincipal(request, 'view-signins');
        const page = await services.events.listForUser(tenant.id, user.id, request.query.limit ?? 20, request.query.cursor);
        return {
          items: page.items.map(signinEventView),
          next: page.next,
        };
      },
    );

    app.post(
      '/api/v1/me/signins/:id/report',
      {
        schema: {
          tags: ['self-service'],
          security: bearer,
          summary: '"This wasn\'t me": ends the other sessions, takes back what a sign-in that got in set up, and flags the account for the admin',
          description:
            'Ends every other session of the user and flags the account for the administrator. When the reported sign-in succeeded, the method it signed in with and every method added since it (pending or active, whoever added it) are removed, and the Temporary Access Pass it signed in with is revoked; the password is never touched. With no method left, the password alone signs in to nothing until it has been changed. This session stays; it needs a sign-in within the last 10 minutes, and to take anything back, a second factor proved in it. A failed sign-in took nothing: only the sessions end. A sign-in reported before is not dealt with again (all counts 0).',
          params: IdParams,
          response: {
            200: Type.Object({
              reported: Type.Literal(true),
              sessionsEnded: Type.Integer(),
              methodsRemoved: Type.Integer({ description: 'the method the reported sign-in used and those added since it, removed' }),
              methodsLeft: Type.Integer({ description: 'active methods left; with none, change the password before registering a new one' }),
              passRevoked: Type.Boolean({ description: 'the Temporary Access Pass the reported sign-in used, revoked' }),
            }),
          },
        },
        config: { admissionClass: 'self-service' },
      },
      async (request) => {
        const { user, tenant, session } = await services.auth.requirePrincipal(request, 'report-signin');
        const outcome = await services.reports.report(tenant, user, session, request.params.id);
        return { reported: true as const, ...outcome };
      },
    );

    app.delete(
      '/api/v1/me/session',
      {
        schema: { tags: ['self-service'], security: bearer, summary: 'Sign out: ends this session' },
        config: { admissionClass: 'self-service', duringOutage: true },
      },
      async (request, reply) => {
        const { session, tenant, user } = await services.auth.requirePrincipal(request, 'sign-out');
        await services.sessions.revoke(session);
        // The apps' sign-in sessions that stood on this session end too, with their grants, as on the pages.
        await services.oidcRevocation.endSteadfastSession(tenant.id, session.id, user.id);
        return reply.code(204).send();
      },
    );
  };
}
