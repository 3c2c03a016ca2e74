import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
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

const Field = (max = 1024) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const Next = Type.Optional(Type.Union([...NEXT_PAGES.map((p) => Type.Literal(p)), Type.Unsafe<NextPage>(Type.String({ pattern: OIDC_NEXT.source }))]));

export interface SigninRoutesDeps {
  tenants: TenantLookup;
  signin: SigninService;
  auth: Pick<RequestAuth, 'findPrincipal' | 'setSessionCookie' | 'clearSessionCookie'>;
  sessions: Pick<Sessions, 'revoke'>;
  oidcRevocation: Pick<OidcRevocation, 'endBrowserSession'>;
  knownBrowsers: Pick<KnownBrowsers, 'issue'>;
  publicUrl: string;
}

/**
 * The sign-in pages: username and password, then the second factor; or a
 * passkey alone; or a Temporary Access Pass. Each handler parses the form,
 * asks the sign-in state machine (`SigninService`) for the next step, and
 * renders it: no decisions about methods, fallbacks or scopes live here.
 */
export function signinRoutes(deps: SigninRoutesDeps): FastifyPluginAsyncTypebox {
  const secure = deps.publicUrl.startsWith('https:');
  return async (app) => {
    const tenantOf = (slug: string) => deps.tenants.require(slug);

    const password = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string, status = 200) =>
      sendPage(
        reply,
        passwordView({ tenant, csrf: reply.generateCsrf(), username, next, error, passkeys: tenant.policy.allowedMethods.includes('webauthn') }),
        status,
      );

    const tap = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string, status = 200) =>
      sendPage(reply, tapView({ tenant, csrf: reply.generateCsrf(), username, next, error }), status);

    /** The second step, ready to answer: a code sent, WebAuthn options built, or a fallback when a channel is down. */
    const factor = async (
      reply: FastifyReply,
      tenant: Tenant,
      flow: string,
      preferred: string | undefined,
      next: NextPage | undefined,
      opts: { error?: string; status?: number; send?: boolean } = {},
    ) => {
      const prompt = await deps.signin.prepareFactor(tenant, flow, preferred, requestContext(reply.request), { send: opts.send !== false });
      if ('kind' in prompt) return noWayIn(reply, tenant, prompt.why ?? 'None of your sign-in methods can be used right now.', prompt.retryAfter);
      return sendPage(
        reply,
        factorView({ tenant, csrf: reply.generateCsrf(), prompt, next, error: opts.error, rememberDays: tenant.policy.rememberedDeviceDays }),
        opts.status ?? 200,
      );
    };

    const noWayIn = (reply: FastifyReply, tenant: Tenant, why: string, retryAfter: number) =>
      sendPage(reply.header('retry-after', String(retryAfter)), noWayInView({ tenant, why }), 503);

    /** An expected failure in words, or undefined for anything else (the error handler takes it). */
    const failure = (err: unknown): { message: string; status: number } | undefined => {
      if (!(err instanceof AppError)) return undefined;
      if (err.code === 'too-many-requests') return { message: `Too many attempts. Wait ${err.retryAfter ?? 60} seconds and try again.`, status: 429 };
      return { message: err.detail && err.code !== 'invalid-credentials' ? err.detail : problemCatalog[err.code].title, status: err.status };
    };

    /** Back to the password form with the reason (`invalidCode` for a wrong code); anything unexpected goes on. */
    const startAgain = (reply: FastifyReply, tenant: Tenant, next: NextPage | undefined, err: unknown, username = '', invalidCode?: string) => {
      const shown = failure(err);
      if (!shown) throw err;
      const message = invalidCode && err instanceof AppError && err.code === 'invalid-code' ? invalidCode : shown.message;
      return password(reply, tenant, username, next, message, shown.status);
    };

    /**
     * Signed in (or given a registration session). A registration goes to
     * security info, with an app waiting for the user remembered (cookie
     * `sf_continue`) so that page can offer the way back once a method is set
     * up. A complete sign-in marks the browser as one the account signs in from.
     */
    const signedIn = (reply: FastifyReply, tenant: Tenant, session: IssuedSession, next: NextPage | undefined, complete: boolean) => {
      deps.auth.setSessionCookie(reply, session.token, session.expiresAt);
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
      const to = landingPath(tenant, complete ? next : undefined);
      if (!complete || !next || !OIDC_NEXT.test(next)) return reply.redirect(to, 303);
      return sendPage(reply, signingInView({ tenant, to }));
    };

    app.get(
      '/t/:tenant/signin',
      {
        schema: { params: PageParams, querystring: Type.Object({ next: Next, username: Field(256), fresh: Field(1) }), hide: true },
        config: { admissionClass: 'start-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const principal = await deps.auth.findPrincipal(request);
        // `fresh`: an app asked for a new sign-in (prompt=login, max_age), so an existing session does not do.
        if (!request.query.fresh && principal && principal.tenant.id === tenant.id && principal.session.scope === 'full')
          return reply.redirect(landingPath(tenant, request.query.next), 303);
        return password(reply, tenant, request.query.username ?? '', request.query.next);
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
        if (!username || !secret) return password(reply, tenant, username, next, 'Enter your username and password.', 400);
        try {
          const step = await deps.signin.passwordStep(tenant, username, secret, {
            ...requestContext(request),
            rememberedDevice: request.cookies[DEVICE_COOKIE],
            // An app that asked for a second factor, the admin console and changing methods get one proved in this sign-in.
            requireMfa: needsSecondFactor(next),
          });
          switch (step.kind) {
            case 'factor':
              return await factor(reply, tenant, step.flow, undefined, next);
            case 'no-way-in':
              return password(reply, tenant, username, next, problemCatalog['no-usable-method'].title, 503);
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
      { schema: { params: PageParams, querystring: Type.Object({ next: Next }), hide: true }, config: { admissionClass: 'start-signin' } },
      async (request, reply) => tap(reply, await tenantOf(request.params.tenant), '', request.query.next),
    );

    app.post(
      '/t/:tenant/signin/tap',
      formRoute(app, 'start-signin', PageParams, Type.Object({ username: Field(256), tap: Field(64), next: Next, _csrf: Field(200) }), { hashes: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        const username = request.body.username?.trim() ?? '';
        const pass = request.body.tap?.trim() ?? '';
        if (!username || !pass) return tap(reply, tenant, username, next, 'Enter your username and the pass.', 400);
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
          return tap(reply, tenant, username, next, message, shown.status);
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
          return await factor(reply, tenant, flow, request.body.method, next);
        } catch (err) {
          return startAgain(reply, tenant, next, err);
        }
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
            return factor(reply, tenant, flow, method, next, {
              error: `Enter ${digits}, with no letters or other characters. That did not count as an attempt.`,
              status: 400,
              send: false,
            });
          }
          if (err instanceof AppError && err.code === 'code-already-used') {
            const wait = Number(err.extra.nextInSeconds);
            const when =
              wait > 0 ? `The next code shows in ${wait} ${wait === 1 ? 'second' : 'seconds'}; enter that one.` : 'Enter the code your app shows now.';
            return factor(reply, tenant, flow, method, next, {
              error: `That code was already used. ${when} That did not count as an attempt.`,
              status: 401,
              send: false,
            });
          }
          if (err instanceof AppError && err.code === 'invalid-code' && Number(err.extra.attemptsLeft) > 0) {
            const left = Number(err.extra.attemptsLeft);
            // A method reference is a credential id or, where any credential will do, the type: its words or the code's.
            const what = describeMethod(method ?? '')?.signin.retry ?? "That code didn't work.";
            return factor(reply, tenant, flow, method, next, { error: `${what} ${attempts(left)}.`, status: 401, send: false });
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
