import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { problemCatalog } from '../errors/catalog.ts';
import { findPrincipal, setSessionCookie, clearSessionCookie } from '../http/authenticate.ts';
import { requestContext } from '../http/request-context.ts';
import type { Services } from '../server/services.ts';
import type { Tenant } from '../directory/tenants.ts';
import type { MethodChoice } from '../signin/method-choices.ts';
import type { IssuedSession } from '../signin/signin-service.ts';
import { html, jsonScript } from './html.ts';
import { alert, layout } from './layout.ts';
import { landingPath, needsSecondFactor, NEXT_PAGES, OIDC_NEXT, type NextPage } from './landing.ts';
import { formRoute } from './form-route.ts';

const Field = (max = 1024) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const Next = Type.Optional(Type.Union([...NEXT_PAGES.map((p) => Type.Literal(p)), Type.Unsafe<NextPage>(Type.String({ pattern: OIDC_NEXT.source }))]));

const METHOD_PROMPTS: Record<string, { name: string; prompt: string; input: 'numeric' | 'text' | 'webauthn' }> = {
  totp: { name: 'Authenticator app', prompt: 'Enter the 6-digit code from your authenticator app.', input: 'numeric' },
  'recovery-codes': { name: 'Recovery code', prompt: 'Enter one of your recovery codes. Each code works once.', input: 'text' },
  webauthn: { name: 'Passkey or security key', prompt: 'Use your passkey or security key.', input: 'webauthn' },
  sms: { name: 'Text message', prompt: 'Enter the code from the text message.', input: 'numeric' },
  voice: { name: 'Phone call', prompt: 'Enter the code we read out to you.', input: 'numeric' },
  email: { name: 'Email', prompt: 'Enter the code from the email.', input: 'numeric' },
  tap: { name: 'Temporary Access Pass', prompt: 'Enter the Temporary Access Pass your administrator gave you.', input: 'text' },
};

/** The remembered-browser cookie (see sessions/remembered-devices.ts). */
const DEVICE_COOKIE = 'sf_device';
/** An app's sign-in to go back to after registering a first method. */
export const CONTINUE_COOKIE = 'sf_continue';
/** oidc-provider's session cookie (its default name; the value is the session's id). */
const OIDC_SESSION_COOKIE = '_session';
/** The known-browser mark (see signin/known-browsers.ts). */
export const KNOWN_BROWSER_COOKIE = 'sf_known';

interface FactorPageOptions {
  error?: string | undefined;
  status?: number;
  /** False after a wrong code: a code already went out and must not be replaced by re-rendering. */
  send?: boolean;
}

/** Where a code went, in words. */
function sentTo(delivery: { channel?: string; to?: string } | undefined): string | undefined {
  if (!delivery?.to) return undefined;
  if (delivery.channel === 'voice') return `We are calling ${delivery.to} to read out a code.`;
  return `We sent a code to ${delivery.to}.`;
}

/** The sign-in pages: username and password, then the second factor; or a passkey alone. Only WebAuthn needs JavaScript. */
export function signinPages(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tenantOf = async (slug: string): Promise<Tenant> => {
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    };

    const passwordPage = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string, status = 200) => {
      const csrf = reply.generateCsrf();
      const passkeys = tenant.policy.allowedMethods.includes('webauthn');
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(
          layout({
            title: 'Sign in',
            tenantName: tenant.name,
            scripts: passkeys,
            body: html`<div class="card">
<h1>Sign in</h1>
${alert('error', error)}
<form method="post" action="/t/${tenant.slug}/signin" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  ${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" required value="${username}" ${username ? '' : 'autofocus'}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
<p class="hint"><a href="/t/${tenant.slug}/signin/tap${next ? `?next=${next}` : ''}">Sign in with a Temporary Access Pass</a></p>
${
  passkeys
    ? html`<form method="post" action="/t/${tenant.slug}/signin/passkey" data-webauthn="passkey" data-options-url="/api/v1/t/${tenant.slug}/signin/passkey" class="passkey">
  <input type="hidden" name="_csrf" value="${csrf}">
  ${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
  <input type="hidden" name="flow" value="">
  <input type="hidden" name="assertion" value="">
  <p class="or">or</p>
  <button type="submit" class="secondary" data-webauthn-only disabled>Sign in with a passkey</button>
  <p class="hint" data-webauthn-missing>Passkey sign-in needs JavaScript and a browser that supports passkeys.</p>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>`
    : ''
}
</div>`,
          }),
        );
    };

    /**
     * Renders the second-factor step for one method, starting its challenge
     * (sending a code, building WebAuthn options). A method whose channel is
     * down gives way to the next one that works, with a word about why.
     */
    const factorPage = async (
      reply: FastifyReply,
      tenant: Tenant,
      flow: string,
      methods: MethodChoice[],
      chosen: MethodChoice,
      next: NextPage | undefined,
      opts: FactorPageOptions = {},
    ): Promise<FastifyReply> => {
      const prompt = METHOD_PROMPTS[chosen.type] ?? { name: chosen.label, prompt: 'Enter your code.', input: 'text' as const };
      const outOfBand = services.methods.outOfBand(chosen.type) !== undefined;
      // Any of the user's passkeys and security keys will do: the challenge names them all.
      const ref = chosen.type === 'webauthn' ? 'webauthn' : chosen.id;
      let challenge: Record<string, unknown> = {};
      let error = opts.error;
      if (!outOfBand || opts.send !== false) {
        try {
          challenge = await services.signin.challenge(tenant, { id: flow }, ref, requestContext(reply.request));
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          if (err.code === 'method-unavailable') {
            const shown = methods.map((m) => (m.type === chosen.type ? { ...m, available: false } : m));
            const fallback = shown.find((m) => m.available);
            const why = `${prompt.name} can't be used right now.`;
            if (fallback) return factorPage(reply, tenant, flow, shown, fallback, next, { error: `${why} Use another way to sign in.` });
            return noWayInPage(reply, tenant, why);
          }
          // A code already went out (or too many did): the form stays, for the code the person has.
          if (err.code !== 'code-recently-sent' && err.code !== 'send-limit') throw err;
          error = `${err.code === 'code-recently-sent' ? 'A code was sent moments ago; use that one.' : problemCatalog[err.code].title + '.'} You can ask for a new code in ${err.retryAfter ?? 30} seconds.`;
        }
      }
      const csrf = reply.generateCsrf();
      const others = methods.filter((m) => (chosen.type === 'webauthn' ? m.type !== 'webauthn' : m.id !== chosen.id));
      const hidden = html`<input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="flow" value="${flow}">${next ? html`<input type="hidden" name="next" value="${next}">` : ''}`;
      const delivered = sentTo(challenge.delivery as { channel?: string; to?: string } | undefined);
      const days = tenant.policy.rememberedDeviceDays;
      const remember =
        days > 0 && chosen.type !== 'tap'
          ? html`<label class="check"><input type="checkbox" name="remember" value="on"> Don't ask again on this browser for ${days} ${days === 1 ? 'day' : 'days'}</label>`
          : '';
      return reply
        .code(opts.status ?? 200)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title: 'Verify it is you',
            tenantName: tenant.name,
            scripts: prompt.input === 'webauthn',
            body: html`<div class="card">
<h1>Verify it's you</h1>
${alert('error', error)}
${
  prompt.input === 'webauthn'
    ? html`${jsonScript('webauthn-options', challenge.webauthn)}
<form method="post" action="/t/${tenant.slug}/signin/verify" data-webauthn="authenticate" data-options-id="webauthn-options">
  ${hidden}<input type="hidden" name="method" value="webauthn"><input type="hidden" name="assertion" value="">
  <p>${prompt.prompt}</p>
  ${remember}
  <button type="submit" data-webauthn-only disabled autofocus>Use passkey or security key</button>
  <p class="hint" data-webauthn-missing>This needs JavaScript and a browser that supports security keys. Choose another way below.</p>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>`
    : html`<form method="post" action="/t/${tenant.slug}/signin/verify" novalidate>
  ${hidden}<input type="hidden" name="method" value="${chosen.id}">
  ${delivered ? html`<p role="status">${delivered}</p>` : ''}
  <p>${prompt.prompt}</p>
  <label for="code">${prompt.name} code</label>
  <input type="text" id="code" name="code" class="code" required autofocus autocomplete="one-time-code" inputmode="${prompt.input}" ${prompt.input === 'numeric' ? html`pattern="[0-9]*" maxlength="${outOfBand ? '8' : '6'}"` : html`maxlength="32" autocapitalize="characters" spellcheck="false"`}>
  ${remember}
  <button type="submit">Verify</button>
</form>
${
  outOfBand
    ? html`<form method="post" action="/t/${tenant.slug}/signin/method" class="inline">
  ${hidden}<input type="hidden" name="method" value="${chosen.id}">
  <button type="submit" class="secondary">Send a new code</button>
</form>`
    : ''
}`
}
${
  others.length > 0
    ? html`<h2>Sign in another way</h2>
<ul class="methods">${others.map(
        (m) => html`<li><span>${METHOD_PROMPTS[m.type]?.name ?? m.type}: ${m.label}${m.available ? '' : html` <em>(unavailable right now)</em>`}</span>
<form method="post" action="/t/${tenant.slug}/signin/method" class="inline">
  ${hidden}<input type="hidden" name="method" value="${m.id}">
  <button type="submit" class="secondary" ${m.available ? '' : 'disabled'}>Use ${m.label}</button>
</form></li>`,
      )}</ul>`
    : ''
}
<p class="hint"><a href="/t/${tenant.slug}/signin">Start again</a></p>
</div>`,
          }),
        );
    };

    /** None of the user's methods can be used now: say so plainly, and what to do. */
    const noWayInPage = (reply: FastifyReply, tenant: Tenant, why: string) =>
      reply
        .code(503)
        .header('retry-after', '60')
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title: 'Sign-in unavailable',
            tenantName: tenant.name,
            body: html`<div class="card">
<h1>We can't verify you right now</h1>
${alert('error', `${why} None of your other sign-in methods can be used at the moment either.`)}
<p>Try again in a few minutes. If you need to sign in now, ask your administrator for a Temporary Access Pass.</p>
<p class="hint"><a href="/t/${tenant.slug}/signin">Start again</a></p>
</div>`,
          }),
        );

    const errorMessage = (err: unknown): { message: string; status: number } | undefined => {
      if (!(err instanceof AppError)) return undefined;
      if (err.code === 'too-many-requests') return { message: `Too many attempts. Wait ${err.retryAfter ?? 60} seconds and try again.`, status: 429 };
      return { message: err.detail && err.code !== 'invalid-credentials' ? err.detail : problemCatalog[err.code].title, status: err.status };
    };

    /**
     * An expected failure sends the person back to the password form with the
     * reason in words (`invalidCode` replaces the generic text for a wrong
     * code); anything else goes on to the error handler.
     */
    const startAgain = (reply: FastifyReply, tenant: Tenant, next: NextPage | undefined, err: unknown, username = '', invalidCode?: string) => {
      const shown = errorMessage(err);
      if (!shown) throw err;
      const message = invalidCode && err instanceof AppError && err.code === 'invalid-code' ? invalidCode : shown.message;
      return passwordPage(reply, tenant, username, next, message, shown.status);
    };

    /**
     * A user who must first register a method goes to security info; an app
     * waiting for them is remembered (cookie `sf_continue`) so that page can
     * offer the way back once a method is set up.
     */
    const registering = (reply: FastifyReply, tenant: Tenant, next: NextPage | undefined): undefined => {
      if (next && OIDC_NEXT.test(next)) {
        reply.setCookie(CONTINUE_COOKIE, next, { httpOnly: true, sameSite: 'lax', secure: services.config.publicUrl.startsWith('https:'), path: `/t/${tenant.slug}/`, maxAge: 600 });
      }
      return undefined;
    };

    const signedIn = (reply: FastifyReply, tenant: Tenant, session: IssuedSession, next: NextPage | undefined, complete: boolean) => {
      setSessionCookie(reply, services, session.token, session.expiresAt);
      if (complete) {
        // This browser is now one the account signs in from: its later guesses count against the owner's own budget.
        const known = services.knownBrowsers.issue(tenant.id, session.userId);
        reply.setCookie(KNOWN_BROWSER_COOKIE, known.token, { httpOnly: true, sameSite: 'lax', secure: services.config.publicUrl.startsWith('https:'), path: `/t/${tenant.slug}/`, expires: new Date(known.expiresAt) });
      }
      const to = landingPath(tenant, next);
      if (!next || !OIDC_NEXT.test(next)) return reply.redirect(to, 303);
      // Back to an app: its callback is on another origin, and a redirect chain that starts at a form post
      // is held to the page's form-action. A page that moves on by itself starts a fresh navigation.
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title: 'Signing you in',
            tenantName: tenant.name,
            head: html`<meta http-equiv="refresh" content="0;url=${to}">`,
            body: html`<div class="card"><h1>Signing you in…</h1><p><a href="${to}">Continue to the app</a></p></div>`,
          }),
        );
    };

    app.get(
      '/t/:tenant/signin',
      { schema: { params: PageParams, querystring: Type.Object({ next: Next, username: Field(256), fresh: Field(1) }), hide: true }, config: { admissionClass: 'start-signin' } },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const principal = await findPrincipal(services, request);
        // `fresh`: an app asked for a new sign-in (prompt=login, max_age), so an existing session does not do.
        if (!request.query.fresh && principal && principal.tenant.id === tenant.id && principal.session.scope === 'full') return reply.redirect(landingPath(tenant, request.query.next), 303);
        return passwordPage(reply, tenant, request.query.username ?? '', request.query.next);
      },
    );

    app.post(
      '/t/:tenant/signin',
      formRoute(app, 'start-signin', PageParams, Type.Object({ username: Field(256), password: Field(), next: Next, _csrf: Field(200) }), { hashes: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        const username = request.body.username?.trim() ?? '';
        const password = request.body.password ?? '';
        if (!username || !password) return passwordPage(reply, tenant, username, next, 'Enter your username and password.', 400);
        try {
          const result = await services.signin.passwordStep(tenant, username, password, {
            ...requestContext(request),
            rememberedDevice: request.cookies[DEVICE_COOKIE],
            // An app that asked for a second factor, the admin console and changing methods get one proved in this sign-in.
            requireMfa: needsSecondFactor(next),
          });
          if (result.state === 'factor_required') return await factorPage(reply, tenant, result.flow, result.methods, result.methods[0]!, next);
          return signedIn(reply, tenant, result.session, result.state === 'complete' ? next : registering(reply, tenant, next), result.state === 'complete');
        } catch (err) {
          return startAgain(reply, tenant, next, err, username);
        }
      },
    );

    /** Signing in with a Temporary Access Pass in place of the password (a new hire, or someone who lost every method). */
    const tapPage = (reply: FastifyReply, tenant: Tenant, username: string, next: NextPage | undefined, error?: string, status = 200) =>
      reply
        .code(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title: 'Sign in with a Temporary Access Pass',
            tenantName: tenant.name,
            body: html`<div class="card">
<h1>Sign in with a Temporary Access Pass</h1>
${alert('error', error)}
<p>Your administrator gives you a pass when you are new or have lost your sign-in methods. It works for a limited time.</p>
<form method="post" action="/t/${tenant.slug}/signin/tap" novalidate>
  <input type="hidden" name="_csrf" value="${reply.generateCsrf()}">
  ${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${username}" ${username ? '' : 'autofocus'}>
  <label for="tap">Temporary Access Pass</label>
  <input type="text" id="tap" name="tap" class="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="32" required ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
<p class="hint"><a href="/t/${tenant.slug}/signin">Sign in with your password instead</a></p>
</div>`,
          }),
        );

    app.get(
      '/t/:tenant/signin/tap',
      { schema: { params: PageParams, querystring: Type.Object({ next: Next }), hide: true }, config: { admissionClass: 'start-signin' } },
      async (request, reply) => tapPage(reply, await tenantOf(request.params.tenant), '', request.query.next),
    );

    app.post(
      '/t/:tenant/signin/tap',
      formRoute(app, 'start-signin', PageParams, Type.Object({ username: Field(256), tap: Field(64), next: Next, _csrf: Field(200) }), { hashes: true }),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { next } = request.body;
        const username = request.body.username?.trim() ?? '';
        const tap = request.body.tap?.trim() ?? '';
        if (!username || !tap) return tapPage(reply, tenant, username, next, 'Enter your username and the pass.', 400);
        try {
          const result = await services.signin.tapStep(tenant, username, tap, requestContext(request));
          return signedIn(reply, tenant, result.session, result.state === 'complete' ? next : registering(reply, tenant, next), result.state === 'complete');
        } catch (err) {
          const shown = errorMessage(err);
          if (!shown) throw err;
          const message = err instanceof AppError && err.code === 'invalid-credentials' ? 'That username and pass do not match a valid pass. Check it, or ask your administrator for a new one.' : shown.message;
          return tapPage(reply, tenant, username, next, message, shown.status);
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
          const assertion = parseJsonField(request.body.assertion);
          const result = await services.signin.verify(tenant, request.body.flow ?? '', 'passkey', { assertion }, requestContext(request));
          return signedIn(reply, tenant, result.session, next, true);
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
          const methods = await services.signin.flowMethods(tenant, { id: flow });
          if (methods.length === 0) throw new AppError('flow-not-found');
          const chosen = methods.find((m) => m.id === request.body.method) ?? methods[0]!;
          return await factorPage(reply, tenant, flow, methods, chosen, next);
        } catch (err) {
          return startAgain(reply, tenant, next, err);
        }
      },
    );

    app.post(
      '/t/:tenant/signin/verify',
      formRoute(app, 'finish-signin', PageParams, Type.Object({ flow: Field(64), method: Field(64), code: Field(64), assertion: Field(16384), remember: Field(5), next: Next, _csrf: Field(200) })),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const { flow = '', next } = request.body;
        let methods: MethodChoice[];
        try {
          methods = await services.signin.flowMethods(tenant, { id: flow });
          if (methods.length === 0) throw new AppError('flow-not-found');
        } catch (err) {
          return startAgain(reply, tenant, next, err);
        }
        const chosen = methods.find((m) => m.id === request.body.method) ?? methods.find((m) => m.type === request.body.method) ?? methods[0]!;
        try {
          const input = request.body.assertion ? { assertion: parseJsonField(request.body.assertion) } : { code: request.body.code?.trim() ?? '' };
          const result = await services.signin.verify(tenant, flow, chosen.type === 'webauthn' ? 'webauthn' : chosen.id, input, { ...requestContext(request), rememberDevice: request.body.remember === 'on' });
          if (result.remembered) {
            // Sent back only to this tenant's sign-in pages, where it is read.
            reply.setCookie(DEVICE_COOKIE, result.remembered.token, {
              httpOnly: true,
              sameSite: 'lax',
              secure: services.config.publicUrl.startsWith('https:'),
              path: `/t/${tenant.slug}/signin`,
              expires: new Date(result.remembered.expiresAt),
            });
          }
          return signedIn(reply, tenant, result.session, next, true);
        } catch (err) {
          if (err instanceof AppError && err.code === 'invalid-code' && Number(err.extra.attemptsLeft) > 0) {
            const what = chosen.type === 'webauthn' ? 'That key was not accepted.' : "That code didn't work.";
            return factorPage(reply, tenant, flow, methods, chosen, next, { error: `${what} ${String(err.extra.attemptsLeft)} attempts left.`, status: 401, send: false });
          }
          return startAgain(reply, tenant, next, err, '', 'Too many failed attempts. Sign in again.');
        }
      },
    );

    app.post(
      '/t/:tenant/signout',
      formRoute(app, 'self-service', PageParams, Type.Object({ _csrf: Field(200), next: Next })),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const principal = await findPrincipal(services, request);
        if (principal) {
          await services.sessions.revoke(principal.session);
          // The apps' sign-in session in this browser (the OpenID Connect provider's) ends too, with its grants.
          const providerSession = request.cookies[OIDC_SESSION_COOKIE];
          if (providerSession) await services.oidcRevocation.endBrowserSession(principal.tenant.id, providerSession, principal.user.id);
        }
        clearSessionCookie(reply, services);
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
