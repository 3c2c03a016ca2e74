import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { problemCatalog } from '../errors/catalog.ts';
import { findPrincipal, setSessionCookie, clearSessionCookie } from '../http/authenticate.ts';
import { requestContext } from '../http/request-context.ts';
import type { Services } from '../server/services.ts';
import type { Tenant } from '../directory/tenants.ts';
import type { MethodChoice } from '../signin/method-choices.ts';
import { html } from './html.ts';
import { alert, layout } from './layout.ts';

const Field = (max = 1024) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });

const METHOD_PROMPTS: Record<string, { name: string; prompt: string; input: 'numeric' | 'text' }> = {
  totp: { name: 'Authenticator app', prompt: 'Enter the 6-digit code from your authenticator app.', input: 'numeric' },
  'recovery-codes': { name: 'Recovery code', prompt: 'Enter one of your recovery codes. Each code works once.', input: 'text' },
};

/** The sign-in pages: username and password, then the second factor. They work without JavaScript. */
export function signinPages(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tenantOf = async (slug: string): Promise<Tenant> => {
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    };
    const home = (tenant: Tenant) => `/t/${tenant.slug}/my/security-info`;

    const passwordPage = (reply: FastifyReply, tenant: Tenant, username: string, error?: string, status = 200) =>
      reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(
          layout({
            title: 'Sign in',
            tenantName: tenant.name,
            body: html`<div class="card">
<h1>Sign in</h1>
${alert('error', error)}
<form method="post" action="/t/${tenant.slug}/signin" novalidate>
  <input type="hidden" name="_csrf" value="${reply.generateCsrf()}">
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${username}" ${username ? '' : 'autofocus'}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
</div>`,
          }),
        );

    const factorPage = (reply: FastifyReply, tenant: Tenant, flow: string, methods: MethodChoice[], chosen: MethodChoice, error?: string, status = 200) => {
      const prompt = METHOD_PROMPTS[chosen.type] ?? { name: chosen.label, prompt: 'Enter your code.', input: 'text' as const };
      const csrf = reply.generateCsrf();
      const others = methods.filter((m) => m.id !== chosen.id);
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          layout({
            title: 'Verify it is you',
            tenantName: tenant.name,
            body: html`<div class="card">
<h1>Verify it's you</h1>
${alert('error', error)}
<form method="post" action="/t/${tenant.slug}/signin/verify" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  <input type="hidden" name="flow" value="${flow}">
  <input type="hidden" name="method" value="${chosen.id}">
  <p>${prompt.prompt}</p>
  <label for="code">${prompt.name} code</label>
  <input type="text" id="code" name="code" class="code" required autofocus autocomplete="one-time-code" inputmode="${prompt.input}" ${prompt.input === 'numeric' ? html`pattern="[0-9]*" maxlength="6"` : html`maxlength="20"`}>
  <button type="submit">Verify</button>
</form>
${
  others.length > 0
    ? html`<h2>Sign in another way</h2>
<ul class="methods">${others.map(
        (m) => html`<li><span>${METHOD_PROMPTS[m.type]?.name ?? m.type}: ${m.label}</span>
<form method="post" action="/t/${tenant.slug}/signin/method" class="inline">
  <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="flow" value="${flow}"><input type="hidden" name="method" value="${m.id}">
  <button type="submit" class="secondary" ${m.available ? '' : 'disabled'}>Use ${METHOD_PROMPTS[m.type]?.name.toLowerCase() ?? m.label}</button>
</form></li>`,
      )}</ul>`
    : ''
}
<p class="hint"><a href="/t/${tenant.slug}/signin">Start again</a></p>
</div>`,
          }),
        );
    };

    const errorMessage = (err: unknown): { message: string; status: number } | undefined => {
      if (!(err instanceof AppError)) return undefined;
      if (err.code === 'too-many-requests') return { message: `Too many attempts. Wait ${err.retryAfter ?? 60} seconds and try again.`, status: 429 };
      return { message: err.detail && err.code !== 'invalid-credentials' ? err.detail : problemCatalog[err.code].title, status: err.status };
    };

    app.get('/t/:tenant/signin', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'start-signin' } }, async (request, reply) => {
      const tenant = await tenantOf(request.params.tenant);
      const principal = await findPrincipal(services, request);
      if (principal && principal.tenant.id === tenant.id) return reply.redirect(home(tenant), 303);
      return passwordPage(reply, tenant, '');
    });

    app.post(
      '/t/:tenant/signin',
      {
        schema: { params: PageParams, body: Type.Object({ username: Field(256), password: Field(), _csrf: Field(200) }), hide: true },
        preHandler: app.csrfProtection,
        config: { admissionClass: 'start-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const username = request.body.username?.trim() ?? '';
        const password = request.body.password ?? '';
        if (!username || !password) return passwordPage(reply, tenant, username, 'Enter your username and password.', 400);
        try {
          const result = await services.signin.passwordStep(tenant, username, password, requestContext(request));
          if (result.state === 'factor_required') return factorPage(reply, tenant, result.flow, result.methods, result.methods[0]!);
          setSessionCookie(reply, services, result.session.token, result.session.expiresAt);
          return reply.redirect(home(tenant), 303);
        } catch (err) {
          const shown = errorMessage(err);
          if (!shown) throw err;
          return passwordPage(reply, tenant, username, shown.message, shown.status);
        }
      },
    );

    app.post(
      '/t/:tenant/signin/method',
      {
        schema: { params: PageParams, body: Type.Object({ flow: Field(64), method: Field(64), _csrf: Field(200) }), hide: true },
        preHandler: app.csrfProtection,
        config: { admissionClass: 'finish-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const flow = request.body.flow ?? '';
        try {
          const methods = await services.signin.flowMethods(tenant, flow);
          const chosen = methods.find((m) => m.id === request.body.method) ?? methods[0]!;
          await services.signin.challenge(tenant, flow, chosen.id);
          return factorPage(reply, tenant, flow, methods, chosen);
        } catch (err) {
          const shown = errorMessage(err);
          if (!shown) throw err;
          return passwordPage(reply, tenant, '', shown.message, shown.status);
        }
      },
    );

    app.post(
      '/t/:tenant/signin/verify',
      {
        schema: { params: PageParams, body: Type.Object({ flow: Field(64), method: Field(64), code: Field(64), _csrf: Field(200) }), hide: true },
        preHandler: app.csrfProtection,
        config: { admissionClass: 'finish-signin' },
      },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const flow = request.body.flow ?? '';
        const methodId = request.body.method ?? '';
        let methods: MethodChoice[];
        try {
          methods = await services.signin.flowMethods(tenant, flow);
        } catch (err) {
          const shown = errorMessage(err);
          if (!shown) throw err;
          return passwordPage(reply, tenant, '', shown.message, shown.status);
        }
        const chosen = methods.find((m) => m.id === methodId) ?? methods[0]!;
        try {
          const result = await services.signin.verify(tenant, flow, chosen.id, request.body.code?.trim() ?? '', requestContext(request));
          setSessionCookie(reply, services, result.session.token, result.session.expiresAt);
          return reply.redirect(home(tenant), 303);
        } catch (err) {
          const shown = errorMessage(err);
          if (!shown) throw err;
          if (err instanceof AppError && err.code === 'invalid-code' && Number(err.extra.attemptsLeft) > 0) {
            return factorPage(reply, tenant, flow, methods, chosen, `That code didn't work. ${String(err.extra.attemptsLeft)} attempts left.`, 401);
          }
          return passwordPage(reply, tenant, '', err instanceof AppError && err.code === 'invalid-code' ? 'Too many wrong codes. Sign in again.' : shown.message, shown.status);
        }
      },
    );

    app.post(
      '/t/:tenant/signout',
      { schema: { params: PageParams, body: Type.Object({ _csrf: Field(200) }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const principal = await findPrincipal(services, request);
        if (principal) await services.sessions.revoke(principal.session);
        clearSessionCookie(reply, services);
        return reply.redirect(`/t/${tenant.slug}/signin`, 303);
      },
    );
  };
}
