import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { requestContext } from '../../http/request-context.ts';
import { apiState } from '../../signin/next-step.ts';
import type { Tenants } from '../../directory/tenants.ts';
import type { SigninService } from '../../signin/signin-service.ts';
import { DeliveryInfo, FlowParams, IssuedSession, MethodChoice, PushInfo, TenantParams, WebAuthnAssertion } from '../../http/api-schemas.ts';

const Code = Type.String({ minLength: 1, maxLength: 64 });

/** The public sign-in API: password, then challenge and verify of a second factor. */
export interface SigninApiDeps {
  tenants: Pick<Tenants, 'findBySlug'>;
  signin: SigninService;
}

export function signinApi(services: SigninApiDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tenantOf = async (slug: string) => {
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    };

    app.post(
      '/api/v1/t/:tenant/signin',
      {
        schema: {
          tags: ['sign-in'],
          summary: 'Start a sign-in with username and password, or with username and a Temporary Access Pass (`tap`) in place of the password',
          params: TenantParams,
          body: Type.Object({
            username: Type.String({ minLength: 1, maxLength: 256 }),
            password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
            tap: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          }),
          response: {
            200: Type.Object({
              flow: Type.Union([Type.String(), Type.Null()]),
              state: Type.Union([Type.Literal('factor_required'), Type.Literal('registration_required'), Type.Literal('complete')]),
              methods: Type.Array(MethodChoice),
              session: Type.Optional(IssuedSession),
            }),
          },
        },
        config: { admissionClass: 'start-signin', hashes: true },
      },
      async (request) => {
        const tenant = await tenantOf(request.params.tenant);
        const { username, password, tap } = request.body;
        if ((password === undefined) === (tap === undefined)) throw new AppError('invalid-request', 'send either password or tap');
        const step =
          tap !== undefined
            ? await services.signin.tapStep(tenant, username, tap, requestContext(request))
            : await services.signin.passwordStep(tenant, username, password!, requestContext(request));
        if (step.kind === 'no-way-in') throw new AppError('no-usable-method', undefined, { methods: step.methods }, step.retryAfter);
        return apiState(step);
      },
    );

    app.post(
      '/api/v1/t/:tenant/signin/:flow/challenge',
      {
        schema: {
          tags: ['sign-in'],
          summary:
            'Start a second-factor challenge: send a code (sms, voice, email; again after the resend cooldown), build WebAuthn options, or send a push request to the paired Steadfast Authenticator (`push.number` to show; poll .../status). 409 method-unavailable with the other `methods` when the channel is down or no device can be reached',
          params: FlowParams,
          body: Type.Object({ method: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: {
            200: Type.Object(
              {
                method: Type.String(),
                type: Type.String(),
                delivery: Type.Optional(DeliveryInfo),
                webauthn: Type.Optional(Type.Object({}, { additionalProperties: true })),
                push: Type.Optional(PushInfo),
              },
              { additionalProperties: true },
            ),
          },
        },
        config: { admissionClass: 'finish-signin' },
      },
      async (request) => {
        const tenant = await tenantOf(request.params.tenant);
        return services.signin.challenge(tenant, { id: request.params.flow }, request.body.method, requestContext(request));
      },
    );

    app.get(
      '/api/v1/t/:tenant/signin/:flow/status',
      {
        schema: {
          tags: ['sign-in'],
          summary:
            'Where a push request of this sign-in stands: `pending`, `approved` (then verify with {method: "push"}), `denied` or `expired`; `none` when no request was sent',
          params: FlowParams,
          response: {
            200: Type.Object({
              state: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('approved'), Type.Literal('denied'), Type.Literal('expired')]),
            }),
          },
        },
        config: { admissionClass: 'finish-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        // Polled: never cached by anything in between.
        reply.header('cache-control', 'no-store');
        const { state } = await services.signin.status(tenant, { id: request.params.flow });
        return { state };
      },
    );

    app.post(
      '/api/v1/t/:tenant/signin/:flow/verify',
      {
        schema: {
          tags: ['sign-in'],
          summary: 'Verify the second factor and receive a session',
          params: FlowParams,
          body: Type.Object({
            method: Type.String({ minLength: 1, maxLength: 64 }),
            code: Type.Optional(Code),
            assertion: Type.Optional(WebAuthnAssertion),
          }),
          response: { 200: Type.Object({ state: Type.Literal('complete'), session: IssuedSession }) },
        },
        config: { admissionClass: 'finish-signin' },
      },
      async (request) => {
        const tenant = await tenantOf(request.params.tenant);
        const { method, code, assertion } = request.body;
        const { session } = await services.signin.verify(tenant, request.params.flow, method, { code, assertion }, requestContext(request));
        return { state: 'complete' as const, session };
      },
    );

    app.post(
      '/api/v1/t/:tenant/signin/passkey',
      {
        schema: {
          tags: ['sign-in'],
          summary: 'Start a passwordless sign-in with a passkey; finish it at .../signin/{flow}/verify with {method: "passkey", assertion}',
          params: TenantParams,
          response: { 200: Type.Object({ flow: Type.String(), webauthn: Type.Object({}, { additionalProperties: true }) }) },
        },
        config: { admissionClass: 'start-signin' },
      },
      async (request) => services.signin.startPasskey(await tenantOf(request.params.tenant), requestContext(request)),
    );
  };
}
