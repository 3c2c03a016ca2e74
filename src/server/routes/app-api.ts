/** The REST API for apps that check passwords themselves and want Steadfast for the second factor. */
import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { whatPasswordAloneOpens } from '../../signin/password-registers.ts';
import { AppError } from '../../errors/app-error.ts';
import { bearerToken } from '../../http/authenticate.ts';
import { requestContext } from '../../http/request-context.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { AppRecord } from '../../directory/apps.ts';
import type { Apps } from '../../directory/apps.ts';
import type { Tenants } from '../../directory/tenants.ts';
import type { Users } from '../../directory/users.ts';
import type { SigninService } from '../../signin/signin-service.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { DeliveryInfo, MethodChoice, PushInfo } from '../../http/api-schemas.ts';
import { parseRecord } from '../../store/parse-record.ts';
import { describeMethod } from '../../methods/registry.ts';

const bearer = [{ apiKeyAuth: [] }];
const config = { admissionClass: 'finish-signin' as const };
// What one app may ask per minute, and about one user: generous for real sign-ins, tight for a runaway loop.
const PER_APP_PER_MINUTE = 1200;
const PER_USER_PER_MINUTE = 30;
// How long the outcome of a finished challenge can be read at the status endpoint.
const OUTCOME_TTL_MS = 5 * 60_000;

const Outcome = Type.Object({ result: Type.Literal('allow'), amr: Type.Array(Type.String()) });
type Outcome = Static<typeof Outcome>;

/**
 * The REST API for apps that check passwords themselves and want Steadfast
 * for the second factor: preauth (what this user can do), auth (verify a code,
 * or start an out-of-band challenge and verify it later), and the status of a
 * challenge. Authenticated with an app API key (`sfk_…`), scoped to its tenant.
 */
export interface AppApiDeps {
  apps: Pick<Apps, 'authenticateApiKey'>;
  tenants: Pick<Tenants, 'findById'>;
  users: Pick<Users, 'findByUsername'>;
  signin: SigninService;
  ephemeral: Pick<EphemeralStore, 'get' | 'set' | 'rateLimiter'>;
  /** Where users are sent to add a method (the security-info page). */
  publicUrl: string;
}

export function appApi(services: AppApiDeps): FastifyPluginAsyncTypebox {
  const perApp = services.ephemeral.rateLimiter({ keyPrefix: 'rl:app', points: PER_APP_PER_MINUTE, durationSeconds: 60, blockSeconds: 0 });
  const perUser = services.ephemeral.rateLimiter({ keyPrefix: 'rl:appuser', points: PER_USER_PER_MINUTE, durationSeconds: 60, blockSeconds: 0 });

  const limit = async (limiter: typeof perApp, key: string) => {
    try {
      await limiter.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new AppError('too-many-requests', undefined, {}, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      throw err;
    }
  };

  /** The calling app and its tenant, or a 401 problem. */
  const callerOf = async (request: FastifyRequest): Promise<{ app: AppRecord; tenant: Tenant }> => {
    const key = bearerToken(request);
    const app = key ? await services.apps.authenticateApiKey(key) : undefined;
    const tenant = app && (await services.tenants.findById(app.tenantId));
    if (!app || !tenant) throw new AppError('unauthenticated', 'send the app API key as a bearer token');
    await limit(perApp, app.id);
    return { app, tenant };
  };

  const userOf = async (tenant: Tenant, app: AppRecord, username: string) => {
    await limit(perUser, `${app.id}|${tenant.id}|${username.normalize('NFKC').trim().toLowerCase()}`);
    return services.users.findByUsername(tenant.id, username);
  };

  const outcomeKey = (tenant: Tenant, appId: string, txid: string) => `app-tx:${tenant.id}:${appId}:${txid}`;

  /** Verifies the transaction's second factor (a code, or an approval already given) and keeps the outcome for the status endpoint. */
  const finish = async (
    tenant: Tenant,
    appId: string,
    ref: { id: string; appId: string },
    method: string,
    ctx: ReturnType<typeof requestContext> & { app: string },
    code?: string,
  ) => {
    const { amr } = await services.signin.verifyForApp(tenant, ref, method, code === undefined ? {} : { code }, ctx);
    await services.ephemeral.set(outcomeKey(tenant, appId, ref.id), { result: 'allow', amr } satisfies Outcome, OUTCOME_TTL_MS);
    return amr;
  };

  return async (app) => {
    const tags = ['app'];

    app.post(
      '/api/v1/app/preauth',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'What the user can do for a second factor: `auth` with the methods (unavailable ones marked), `enroll` (no method yet; send them to enrollUrl), `allow` (the tenant does not require MFA and they have none) or `deny`',
          body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 256 }) }),
          response: {
            200: Type.Object({
              result: Type.Union([Type.Literal('auth'), Type.Literal('enroll'), Type.Literal('allow'), Type.Literal('deny')]),
              methods: Type.Array(MethodChoice),
              enrollUrl: Type.Optional(Type.String()),
              reason: Type.Optional(Type.String()),
            }),
          },
        },
        config,
      },
      async (request) => {
        const { app: caller, tenant } = await callerOf(request);
        const user = await userOf(tenant, caller, request.body.username);
        if (!user) return { result: 'deny' as const, methods: [], reason: 'no such user' };
        if (user.status !== 'active') return { result: 'deny' as const, methods: [], reason: 'account disabled' };
        const methods = await services.signin.choicesFor(tenant, user.id);
        // What the password the app checked opens on its own, by the sign-in pages' rule (signin/password-registers.ts).
        const alone = whatPasswordAloneOpens(user, methods, tenant.policy.mfaRequired);
        if (alone.opens === 'session') return { result: 'allow' as const, methods };
        if (alone.opens === 'nothing') {
          // After a reset or a reported sign-in: a pass they hold is a second factor the app can check.
          if (methods.length > 0) return { result: 'auth' as const, methods };
          return {
            result: 'deny' as const,
            methods,
            reason:
              "the account's password predates a methods reset or a reported sign-in: the user signs in with a Temporary Access Pass, or changes the password",
          };
        }
        // No method of their own yet (a pass at most): they register one on Steadfast's pages.
        if (!methods.some((m) => m.type !== 'tap')) {
          return { result: 'enroll' as const, methods, enrollUrl: `${services.publicUrl}/t/${tenant.slug}/my/security-info` };
        }
        if (!methods.some((m) => m.available))
          return {
            result: 'deny' as const,
            methods,
            reason: "none of the user's methods can be used right now; a Temporary Access Pass from an administrator works",
          };
        return { result: 'auth' as const, methods };
      },
    );

    app.post(
      '/api/v1/app/auth',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Verify a second factor. With `code` (totp, recovery-codes, tap; or sms/voice/email with the `txid` of their challenge): `allow`, or 401 invalid-code. sms/voice/email without `code` send one and answer `challenge` with a `txid`. push without `code` sends a request to the user's Steadfast Authenticator and answers `challenge` with a `txid` and `push.number` for the app to show (number matching); poll GET /api/v1/app/auth/{txid}, which answers `allow` once the user approves.",
          body: Type.Object({
            username: Type.String({ minLength: 1, maxLength: 256 }),
            method: Type.String({ minLength: 1, maxLength: 64 }),
            code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            txid: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          }),
          response: {
            200: Type.Object({
              result: Type.Union([Type.Literal('allow'), Type.Literal('challenge')]),
              amr: Type.Optional(Type.Array(Type.String())),
              txid: Type.Optional(Type.String()),
              delivery: Type.Optional(DeliveryInfo),
              push: Type.Optional(PushInfo),
            }),
          },
        },
        config,
      },
      async (request) => {
        const { app: caller, tenant } = await callerOf(request);
        const { username, method, code, txid } = request.body;
        const user = await userOf(tenant, caller, username);
        // An unknown or disabled user is answered like a wrong code: the app learns nothing it could not learn from preauth.
        if (!user || user.status !== 'active') throw new AppError('invalid-code', undefined, { attemptsLeft: 0 });
        if (method === 'passkey' || describeMethod(method)?.signin.input === 'webauthn')
          throw new AppError('invalid-request', 'passkeys and security keys need a browser: sign users in with OpenID Connect for those');
        const ctx = { ...requestContext(request), app: caller.name };
        // A txid names an open transaction of this app's, for this user, or none at all.
        if (txid !== undefined && (await services.signin.appTransactionUser(tenant, { id: txid, appId: caller.id })) !== user.id)
          throw new AppError('flow-not-found');
        const ref = { id: txid ?? (await services.signin.startAppTransaction(tenant, caller.id, user)), appId: caller.id };
        if (code === undefined) {
          // An approved push request finishes here (or at the status endpoint); asking again must not send another.
          if (txid !== undefined && (await services.signin.status(tenant, ref)).state === 'approved')
            return { result: 'allow' as const, amr: await finish(tenant, caller.id, ref, method, ctx) };
          const challenge = await services.signin.challenge(tenant, ref, method, ctx);
          if (challenge.push) return { result: 'challenge' as const, txid: ref.id, push: challenge.push };
          if (!challenge.delivery) throw new AppError('invalid-request', 'this method needs a code: send it with `code`');
          return { result: 'challenge' as const, txid: ref.id, delivery: challenge.delivery as never };
        }
        return { result: 'allow' as const, amr: await finish(tenant, caller.id, ref, method, ctx, code) };
      },
    );

    app.get(
      '/api/v1/app/auth/:txid',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'The state of a challenge: `pending` (a code was sent and not yet verified, or a push request not yet answered), `allow` (verified, or the push request approved; for 5 minutes after), `deny` (the push request was denied or the number did not match), or `expired`',
          params: Type.Object({ txid: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: {
            200: Type.Object({
              state: Type.Union([Type.Literal('pending'), Type.Literal('allow'), Type.Literal('deny'), Type.Literal('expired')]),
              amr: Type.Optional(Type.Array(Type.String())),
            }),
          },
        },
        config,
      },
      async (request) => {
        const { app: caller, tenant } = await callerOf(request);
        const outcome = parseRecord(Outcome, await services.ephemeral.get(outcomeKey(tenant, caller.id, request.params.txid)));
        if (outcome) return { state: 'allow' as const, amr: outcome.amr };
        // Only whether the transaction is still open, and only to the app that opened it.
        const ref = { id: request.params.txid, appId: caller.id };
        const approval = await services.signin.status(tenant, ref).catch(() => undefined);
        if (!approval) return { state: 'expired' as const };
        // A push request the user approved finishes the transaction here: polling is all an app has to do.
        if (approval.state === 'approved' && approval.type) {
          const ctx = { ...requestContext(request), app: caller.name };
          return { state: 'allow' as const, amr: await finish(tenant, caller.id, ref, approval.type, ctx) };
        }
        if (approval.state === 'denied') return { state: 'deny' as const };
        if (approval.state === 'expired') return { state: 'expired' as const };
        return { state: 'pending' as const };
      },
    );
  };
}
