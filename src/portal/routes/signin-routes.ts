import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import { problemCatalog } from '../../errors/catalog.ts';
import type { RequestAuth } from '../../http/authenticate.ts';
import { requestContext } from '../../http/request-context.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { SigninService } from '../../signin/signin-service.ts';
import type { KnownBrowsers } from '../../signin/known-browsers.ts';
import type { IssuedSession } from '../../signin/next-step.ts';
import type { Sessions } from '../../sessions/sessions.ts';
import type { OidcRevocation } from '../../sessions/oidc-revocation.ts';
import { landingPath, needsSecondFactor, NEXT_PAGES, OIDC_NEXT, type NextPage } from '../../http/page/landing.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { describeMethod } from '../../methods/registry.ts';
import { factorView, noWayInView, passwordView, signingInView, tapView } from '../views/signin-views.ts';
import { CONTINUE_COOKIE, DEVICE_COOKIE, KNOWN_BROWSER_COOKIE, OIDC_SESSION_COOKIE } from '../../http/cookie-names.ts';
import { sendPage } from '../../http/page/send-page.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import type { FlashData, PageFlash } from '../../http/page/flash.ts';
import { randomToken } from '../../crypto/random.ts';
import type { FactorPrompt } from '../../signin/next-step.ts';
import { restoredChallenge, shownChallenge } from './shown-challenge.ts';

const Field = (max = 1024) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const Next = Type.Optional(Type.Union([...NEXT_PAGES.map((p) => Type.Literal(p)), Type.Unsafe<NextPage>(Type.String({ pattern: OIDC_NEXT.source }))]));

export interface SigninRoutesDeps {
  tenants: TenantLookup;
  signin: SigninService;
  auth: Pick<RequestAuth, 'findPrincipal' | 'setSessionCookie' | 'clearSessionCookie'>;
  sessions: Pick<Sessions, 'revoke'>;
  oidcRevocation: Pick<OidcRevocation, 'endBrowserSession' | 'endSteadfastSession'>;
  knownBrowsers: Pick<KnownBrowsers, 'issue'>;
  flash: PageFlash;
  publicUrl: string;
}

// What the second-step page shows when none of the user's methods can be used now (its flash's `for`).
const NO_WAY_IN = 'no-way-in';
// The sign-in pages' own flashes, bound to a one-time attempt id in the page's address (there is no session yet).
const attemptBinding = (attempt: string) => `signin-attempt:${attempt}`;
// A second step's flash, bound to its flow: another flow (another user's, in the same browser) never reads it.
const flowBinding = (flow: string) => `signin-flow:${flow}`;

// A page address with its query (absent and empty values left out).
function pageUrl(tenant: Tenant, path: string, query: Record<string, string | undefined>): string {
  const search = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => Boolean(e[1]))).toString();
  return `/t/${tenant.slug}/${path}${search ? `?${search}` : ''}`;
}

/**
 * The sign-in pages: username and password, then the second factor; or a
 * passkey alone; or a Temporary Access Pass. Each handler parses the form,
 * asks the sign-in state machine (`SigninService`) for the next step, and
 * renders it: no decisions about methods, fallbacks or scopes live here.
 *
 * Every post answers with a redirect to a page (post-redirect-get), so Back
 * and refresh never post a password or a code again. What the post has to
 * tell the page (the error, the username typed, where a code went, the number
 * to match) travels in the sealed flash cookie, bound to the sign-in flow or,
 * before there is one, to a one-time attempt id in the page's address; codes
 * and passwords never travel. The second step's address names its flow, a
 * random 24-byte id (sent to no other site: the pages send no referrer).
 */
export function signinRoutes(deps: SigninRoutesDeps): FastifyPluginAsyncTypebox {
  const secure = deps.publicUrl.startsWith('https:');
  return async (app) => {
    const tenantOf = (slug: string) => deps.tenants.require(slug);

    const password = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string) =>
      sendPage(reply, passwordView({ tenant, csrf: reply.generateCsrf(), username, next, error, passkeys: tenant.policy.allowedMethods.includes('webauthn') }));

    const tap = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string) =>
      sendPage(reply, tapView({ tenant, csrf: reply.generateCsrf(), username, next, error }));

    /** Back to the password or pass page (`to`) with what went wrong and the username typed, for this attempt only. */
    const again = (reply: FastifyReply, tenant: Tenant, to: 'signin' | 'signin/tap', next: NextPage | undefined, error: string, username = '') => {
      const attempt = randomToken(16);
      deps.flash.set(reply, tenant.slug, attemptBinding(attempt), { for: to, notice: { kind: 'error', text: error }, values: { username } });
      return reply.redirect(pageUrl(tenant, to, { next, attempt }), 303);
    };

    /** What a post left for the password or pass page at `to`, if it is this attempt's. */
    const attemptFlash = (request: FastifyRequest, reply: FastifyReply, tenant: Tenant, to: string, attempt: string | undefined) => {
      if (!attempt) return undefined;
      const flash = deps.flash.read(request, reply, tenant.slug, attemptBinding(attempt));
      return flash?.for === to ? flash : undefined;
    };

    /**
     * On to the second step's page: a prompt made ready in the post (a code
     * sent, a request on its way to the device), what it shows kept in the
     * flow's flash so a refresh shows the same and sends nothing.
     */
    const toFactor = (
      reply: FastifyReply,
      tenant: Tenant,
      flow: string,
      prompt: FactorPrompt | { kind: 'no-way-in'; why?: string | undefined; retryAfter: number },
      next: NextPage | undefined,
    ) => {
      const data: FlashData =
        'kind' in prompt
          ? {
              for: NO_WAY_IN,
              notice: { kind: 'error', text: prompt.why ?? 'None of your sign-in methods can be used right now.' },
              shown: { retryAfter: String(prompt.retryAfter) },
            }
          : { for: prompt.chosen.id, notice: prompt.notice, shown: shownChallenge(prompt.challenge) };
      deps.flash.set(reply, tenant.slug, flowBinding(flow), data);
      return reply.redirect(pageUrl(tenant, 'signin/verify', { flow, method: 'kind' in prompt ? undefined : prompt.chosen.id, next }), 303);
    };

    /** Back to the second step's page with what went wrong (a wrong code costs an attempt; the code itself is not kept). */
    const retryFactor = (reply: FastifyReply, tenant: Tenant, flow: string, method: string, next: NextPage | undefined, error: string) => {
      const remember = (reply.request.body as { remember?: string } | undefined)?.remember === 'on' ? 'on' : '';
      deps.flash.set(reply, tenant.slug, flowBinding(flow), { for: method, notice: { kind: 'error', text: error }, values: { remember } });
      return reply.redirect(pageUrl(tenant, 'signin/verify', { flow, method, next }), 303);
    };

    const noWayIn = (reply: FastifyReply, tenant: Tenant, why: string, retryAfter: number) =>
      sendPage(reply.header('retry-after', String(retryAfter)), noWayInView({ tenant, why }), 503);

    /** The second step made ready in a post: a code sent, a request on its way, or a fallback when a channel is down. */
    const prepare = (reply: FastifyReply, tenant: Tenant, flow: string, preferred: string | undefined) =>
      deps.signin.prepareFactor(tenant, flow, preferred, requestContext(reply.request), { send: true });

    /** An expected failure in words, or undefined for anything else (the error handler takes it). */
    const failure = (err: unknown): { message: string; status: number } | undefined => {
      if (!(err instanceof AppError)) return undefined;
      if (err.code === 'too-many-requests') return { message: `Too many attempts. Wait ${err.retryAfter ?? 60} seconds and try again.`, status: 429 };
      return { message: err.detail && err.code !== 'invalid-credentials' ? err.detail : problemCatalog[err.code].title, status: err.status };
    };

    /** Back to the password page with the reason (`invalidCode` for a wrong code); anything unexpected goes on. */
    const startAgain = (reply: FastifyReply, tenant: Tenant, next: NextPage | undefined, err: unknown, username = '', invalidCode?: string) => {
      const shown = failure(err);
      if (!shown) throw err;
      const message = invalidCode && err instanceof AppError && err.code === 'invalid-code' ? invalidCode : shown.message;
      return again(reply, tenant, 'signin', next, message, username);
    };

    /**
     * Signed in (or given a registration session). A registration goes to
     * security info, with an app waiting for the user remembered (cookie
     * `sf_continue`) so that page can offer the way back once a method is set
     * up. A complete sign-in marks the browser as one the account signs in from.
     */
    const signedIn = (reply: FastifyReply, tenant: Tenant, session: IssuedSession, next: NextPage | undefined, complete: boolean) => {
      deps.auth.setSessionCookie(reply, session.token, session.expiresAt);
      // What the second step showed (a number to match) is of no use once signed in.
      deps.flash.clear(reply, tenant.slug);
      if (complete) {
        const known = deps.knownBrowsers.issue(tenant.id, session.userId);
        reply.setCookie(KNOWN_BROWSER_COOKIE, known.token, {
          httpOnly: true,
          sameSite: 'lax',
          secure,
          path: `/t/${tenant.slug}/`,
          expires: new Date(known.expiresAt),
        });
      } else if (next && OIDC_NEXT.test(next)) {
        reply.setCookie(CONTINUE_COOKIE, next, { httpOnly: true, sameSite: 'lax', secure, path: `/t/${tenant.slug}/`, maxAge: 600 });
      }
      if (complete && next && OIDC_NEXT.test(next)) return reply.redirect(pageUrl(tenant, 'signin/continue', { next }), 303);
      return reply.redirect(landingPath(tenant, complete ? next : undefined), 303);
    };

    app.get(
      '/t/:tenant/signin',
      {
        schema: { params: PageParams, querystring: Type.Object({ next: Next, username: Field(256), fresh: Field(1), attempt: Field(64) }), hide: true },
        config: { admissionClass: 'start-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { attempt, next } = request.query;
        const principal = await deps.auth.findPrincipal(request);
        // `fresh`: an app asked for a new sign-in (prompt=login, max_age), so an existing session does not do;
        // nor after a failed attempt (`attempt`): the person is signing in on purpose.
        if (!request.query.fresh && !attempt && principal && principal.tenant.id === tenant.id && principal.session.scope === 'full')
          return reply.redirect(landingPath(tenant, next), 303);
        const flash = attemptFlash(request, reply, tenant, 'signin', attempt);
        return password(reply, tenant, flash?.values?.username ?? request.query.username ?? '', next, flash?.notice?.text);
      },
    );

    app.post(
      '/t/:tenant/signin',
      formRoute(app, 'start-signin', PageParams, Type.Object({ username: Field(256), password: Field(), next: Next, _csrf: Field(200) }), { hashes: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        const username = request.body.username?.trim() ?? '';
        const secret = request.body.password ?? '';
        if (!username || !secret) return again(reply, tenant, 'signin', next, 'Enter your username and password.', username);
        try {
          const step = await deps.signin.passwordStep(tenant, username, secret, {
            ...requestContext(request),
            rememberedDevice: request.cookies[DEVICE_COOKIE],
            // An app that asked for a second factor, the admin console and changing methods get one proved in this sign-in.
            requireMfa: needsSecondFactor(next),
          });
          switch (step.kind) {
            case 'factor':
              return toFactor(reply, tenant, step.flow, await prepare(reply, tenant, step.flow, undefined), next);
            case 'no-way-in':
              return again(reply, tenant, 'signin', next, problemCatalog['no-usable-method'].title, username);
            default:
              return signedIn(reply, tenant, step.session, next, step.kind === 'done');
          }
        } catch (err) {
          return startAgain(reply, tenant, next, err, username);
        }
      },
    );

    app.get(
      '/t/:tenant/signin/tap',
      { schema: { params: PageParams, querystring: Type.Object({ next: Next, attempt: Field(64) }), hide: true }, config: { admissionClass: 'start-signin' } },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const flash = attemptFlash(request, reply, tenant, 'signin/tap', request.query.attempt);
        return tap(reply, tenant, flash?.values?.username ?? '', request.query.next, flash?.notice?.text);
      },
    );

    app.post(
      '/t/:tenant/signin/tap',
      formRoute(app, 'start-signin', PageParams, Type.Object({ username: Field(256), tap: Field(64), next: Next, _csrf: Field(200) }), { hashes: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        const username = request.body.username?.trim() ?? '';
        const pass = request.body.tap?.trim() ?? '';
        if (!username || !pass) return again(reply, tenant, 'signin/tap', next, 'Enter your username and the pass.', username);
        try {
          const step = await deps.signin.tapStep(tenant, username, pass, requestContext(request));
          return signedIn(reply, tenant, step.session, next, step.kind === 'done');
        } catch (err) {
          const shown = failure(err);
          if (!shown) throw err;
          const message =
            err instanceof AppError && err.code === 'invalid-credentials'
              ? 'That username and pass do not match a valid pass. Check it, or ask your administrator for a new one.'
              : shown.message;
          return again(reply, tenant, 'signin/tap', next, message, username);
        }
      },
    );

    app.post(
      '/t/:tenant/signin/passkey',
      formRoute(app, 'finish-signin', PageParams, Type.Object({ flow: Field(64), assertion: Field(16384), next: Next, _csrf: Field(200) })),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        try {
          const step = await deps.signin.verify(
            tenant,
            request.body.flow ?? '',
            'passkey',
            { assertion: parseJsonField(request.body.assertion) },
            requestContext(request),
          );
          return signedIn(reply, tenant, step.session, next, true);
        } catch (err) {
          return startAgain(reply, tenant, next, err, '', 'That passkey was not accepted. Try again, or sign in with your password.');
        }
      },
    );

    app.post(
      '/t/:tenant/signin/method',
      formRoute(app, 'finish-signin', PageParams, Type.Object({ flow: Field(64), method: Field(64), next: Next, _csrf: Field(200) })),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { flow = '', next } = request.body;
        try {
          return toFactor(reply, tenant, flow, await prepare(reply, tenant, flow, request.body.method), next);
        } catch (err) {
          return startAgain(reply, tenant, next, err);
        }
      },
    );

    // The second step's page. It sends nothing (a refresh sends no new code and no new request): what the post
    // that led here sent is shown again from the flow's flash. WebAuthn options are made afresh, as they are per page.
    app.get(
      '/t/:tenant/signin/verify',
      {
        schema: { params: PageParams, querystring: Type.Object({ flow: Field(64), method: Field(64), next: Next }), hide: true },
        config: { admissionClass: 'finish-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { flow = '', method, next } = request.query;
        const flash = flow ? deps.flash.read(request, reply, tenant.slug, flowBinding(flow), { keep: true }) : undefined;
        if (flash?.for === NO_WAY_IN) return noWayIn(reply, tenant, flash.notice?.text ?? '', Number(flash.shown?.retryAfter ?? 60));
        let prompt: Awaited<ReturnType<typeof deps.signin.prepareFactor>>;
        try {
          prompt = await deps.signin.prepareFactor(tenant, flow, method, requestContext(request), { send: false });
        } catch (err) {
          return startAgain(reply, tenant, next, err);
        }
        if ('kind' in prompt) return noWayIn(reply, tenant, prompt.why ?? 'None of your sign-in methods can be used right now.', prompt.retryAfter);
        const mine = method && flash?.for === method ? flash : undefined;
        const shown: FactorPrompt = { ...prompt, challenge: { ...prompt.challenge, ...restoredChallenge(mine?.shown) } };
        const notice = mine ? mine.notice : prompt.notice;
        return sendPage(
          reply,
          factorView({
            tenant,
            csrf: reply.generateCsrf(),
            prompt: notice ? { ...shown, notice } : shown,
            next,
            remembered: mine?.values?.remember === 'on',
            rememberDays: tenant.policy.rememberedDeviceDays,
          }),
        );
      },
    );

    // Back to an app, after a complete sign-in (see signingInView): a page, so the post before it ends in a redirect.
    app.get(
      '/t/:tenant/signin/continue',
      { schema: { params: PageParams, querystring: Type.Object({ next: Next }), hide: true }, config: { admissionClass: 'start-signin' } },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.query;
        const principal = await deps.auth.findPrincipal(request);
        const signedInHere = principal && principal.tenant.id === tenant.id && principal.session.scope === 'full';
        if (!signedInHere) return reply.redirect(pageUrl(tenant, 'signin', { next }), 303);
        if (!next || !OIDC_NEXT.test(next)) return reply.redirect(landingPath(tenant, next), 303);
        return sendPage(reply, signingInView({ tenant, to: landingPath(tenant, next) }));
      },
    );

    app.post(
      '/t/:tenant/signin/verify',
      formRoute(
        app,
        'finish-signin',
        PageParams,
        Type.Object({ flow: Field(64), method: Field(64), code: Field(64), assertion: Field(16384), remember: Field(5), next: Next, _csrf: Field(200) }),
      ),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { flow = '', next, method } = request.body;
        try {
          const input = request.body.assertion ? { assertion: parseJsonField(request.body.assertion) } : { code: request.body.code?.trim() ?? '' };
          const step = await deps.signin.verify(tenant, flow, method ?? '', input, {
            ...requestContext(request),
            rememberDevice: request.body.remember === 'on',
          });
          if (step.remembered) {
            // Sent back only to this tenant's sign-in pages, where it is read.
            reply.setCookie(DEVICE_COOKIE, step.remembered.token, {
              httpOnly: true,
              sameSite: 'lax',
              secure,
              path: `/t/${tenant.slug}/signin`,
              expires: new Date(step.remembered.expiresAt),
            });
          }
          return signedIn(reply, tenant, step.session, next, true);
        } catch (err) {
          const attempts = (left: number) => `${left} ${left === 1 ? 'attempt' : 'attempts'} left`;
          if (err instanceof AppError && err.code === 'malformed-code') {
            const ask = describeMethod(String(err.extra.method))?.signin;
            const digits = ask?.input === 'numeric' && ask.maxLength ? `the ${ask.maxLength} digits` : 'the code';
            return retryFactor(
              reply,
              tenant,
              flow,
              method ?? '',
              next,
              `Enter ${digits}, with no letters or other characters. That did not count as an attempt.`,
            );
          }
          if (err instanceof AppError && err.code === 'code-already-used') {
            const wait = Number(err.extra.nextInSeconds);
            const when =
              wait > 0 ? `The next code shows in ${wait} ${wait === 1 ? 'second' : 'seconds'}; enter that one.` : 'Enter the code your app shows now.';
            return retryFactor(reply, tenant, flow, method ?? '', next, `That code was already used. ${when} That did not count as an attempt.`);
          }
          if (err instanceof AppError && err.code === 'invalid-code' && Number(err.extra.attemptsLeft) > 0) {
            const left = Number(err.extra.attemptsLeft);
            // A method reference is a credential id or, where any credential will do, the type: its words or the code's.
            const what = describeMethod(method ?? '')?.signin.retry ?? "That code didn't work.";
            return retryFactor(reply, tenant, flow, method ?? '', next, `${what} ${attempts(left)}.`);
          }
          return startAgain(reply, tenant, next, err, '', 'Too many failed attempts. Sign in again.');
        }
      },
    );

    app.post(
      '/t/:tenant/signout',
      formRoute(app, 'self-service', PageParams, Type.Object({ _csrf: Field(200), next: Next }), { duringOutage: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const principal = await deps.auth.findPrincipal(request);
        if (principal) {
          await deps.sessions.revoke(principal.session);
          // The apps' sign-in session in this browser (the OpenID Connect provider's) ends too, with its grants.
          const providerSession = request.cookies[OIDC_SESSION_COOKIE];
          if (providerSession) await deps.oidcRevocation.endBrowserSession(principal.tenant.id, providerSession, principal.user.id);
          // And any other that stood on this Steadfast session (its cookie is scoped to the issuer's path).
          await deps.oidcRevocation.endSteadfastSession(principal.tenant.id, principal.session.id, principal.user.id);
        }
        deps.auth.clearSessionCookie(reply);
        // "Sign in again" (to change methods) comes back here with the username filled in and a way back.
        const again = request.body.next && principal ? `?next=${request.body.next}&username=${encodeURIComponent(principal.user.username)}` : '';
        return reply.redirect(`/t/${tenant.slug}/signin${again}`, 303);
      },
    );
  };
}

/** A JSON form field filled by the page script; malformed input is the client's mistake. */
function parseJsonField(value: string | undefined): unknown {
  try {
    return JSON.parse(value ?? '');
  } catch {
    throw new AppError('invalid-request', 'the passkey response was not readable; try again');
  }
}
