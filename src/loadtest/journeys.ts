/** What a simulated user does in a load test: password and TOTP, passkey, SMS, each a journey. */
import { StepFailed, type HttpClient } from './http-client.ts';
import type { PoolUser, UserPool } from './user-pool.ts';
import type { SmsReceiver } from './sms-receiver.ts';
import { currentStep, totpCodeAt } from './totp-code.ts';

export const KINDS = ['totp', 'passkey', 'sms', 'setup'] as const;
export type Kind = (typeof KINDS)[number];

export const KIND_NAMES: Record<Kind, string> = {
  totp: 'password + authenticator app',
  passkey: 'passkey (software authenticator)',
  sms: 'password + SMS code',
  setup: 'self-service: add and remove an authenticator app',
};

/** The pool had no user free for this journey (the run offered more than its users allow): not the server's failure. */
export class NoFreeUser extends Error {}

export interface JourneyContext {
  http: HttpClient;
  pool: UserPool;
  tenant: string;
  sms: SmsReceiver | undefined;
}

/** The next TOTP step this user may use now (the server accepts the previous, current and next step, each once). */
function nextStep(user: PoolUser): number | undefined {
  const now = currentStep();
  const step = Math.max(user.lastStep + 1, now - 1);
  return step <= now + 1 ? step : undefined;
}

async function withUser(ctx: JourneyContext, usable: (u: PoolUser) => boolean, run: (user: PoolUser) => Promise<void>): Promise<void> {
  const user = ctx.pool.take(usable);
  if (!user) throw new NoFreeUser();
  try {
    await run(user);
  } finally {
    ctx.pool.release(user);
  }
}

async function passwordThenTotp(ctx: JourneyContext, user: PoolUser): Promise<string> {
  const started = await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin`, { username: user.username, password: user.password });
  if (started.state !== 'factor_required') throw new StepFailed(`POST /signin answered ${started.state}`);
  const step = nextStep(user)!;
  user.lastStep = step;
  const done = await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin/${started.flow}/verify`, {
    method: 'totp',
    code: totpCodeAt(user.totpSecret, step),
  });
  return done.session.token as string;
}

/** One sign-in or set-up, as a user would go through it; throws StepFailed naming the step that failed. */
export const JOURNEYS: Record<Kind, (ctx: JourneyContext) => Promise<void>> = {
  totp: (ctx) =>
    withUser(
      ctx,
      (u) => nextStep(u) !== undefined,
      async (user) => {
        await passwordThenTotp(ctx, user);
      },
    ),

  passkey: (ctx) =>
    withUser(
      ctx,
      (u) => u.passkey !== undefined,
      async (user) => {
        const started = await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin/passkey`, {});
        const assertion = user.passkey!.assert(started.webauthn.challenge);
        await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin/${started.flow}/verify`, { method: 'passkey', assertion });
      },
    ),

  sms: (ctx) =>
    withUser(
      ctx,
      (u) => u.phone !== undefined,
      async (user) => {
        const started = await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin`, { username: user.username, password: user.password });
        if (started.state !== 'factor_required') throw new StepFailed(`POST /signin answered ${started.state}`);
        const code = ctx.sms!.codeFor(user.phone!);
        await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin/${started.flow}/challenge`, { method: 'sms' });
        const received = await code.catch(() => {
          throw new StepFailed('SMS code never arrived');
        });
        await ctx.http.expect(200, 'POST', `/api/v1/t/${ctx.tenant}/signin/${started.flow}/verify`, { method: 'sms', code: received });
      },
    ),

  setup: (ctx) =>
    withUser(
      ctx,
      // The new app is a credential of its own: its first code is not limited by the user's app.
      (u) => nextStep(u) !== undefined,
      async (user) => {
        const session = await passwordThenTotp(ctx, user);
        await ctx.http.expect(200, 'GET', '/api/v1/me/methods', undefined, session);
        const added = await ctx.http.expect(201, 'POST', '/api/v1/me/methods', { type: 'totp', label: 'second phone' }, session);
        await ctx.http.expect(200, 'POST', `/api/v1/me/methods/${added.id}/confirm`, { code: totpCodeAt(added.secret, currentStep()) }, session);
        await ctx.http.expect(204, 'DELETE', `/api/v1/me/methods/${added.id}`, undefined, session);
      },
    ),
};
