import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { problemCatalog } from '../errors/catalog.ts';
import { findPrincipal, type Principal } from '../http/authenticate.ts';
import type { Services } from '../server/services.ts';
import type { MethodView } from '../methods/method-management.ts';
import { html, trustedHtml, type SafeHtml } from './html.ts';
import { alert, layout } from './layout.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const MethodParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });

const TYPE_NAMES: Record<string, string> = { totp: 'Authenticator app', 'recovery-codes': 'Recovery codes', webauthn: 'Passkey or security key' };

const when = (iso: string | null) => (iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').slice(0, 16)} UTC</time>` : 'never');

/** The user's own security info: their methods, and adding an authenticator app or recovery codes. */
export function securityInfoPages(services: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    /** The signed-in user of this tenant, or a redirect to its sign-in page. */
    const principalOr = async (request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> => {
      const slug = (request.params as { tenant: string }).tenant;
      const principal = await findPrincipal(services, request);
      if (principal && principal.tenant.slug === slug) return principal;
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      void reply.redirect(`/t/${tenant.slug}/signin`, 303);
      return undefined;
    };
    const base = (p: Principal) => `/t/${p.tenant.slug}/my/security-info`;

    const page = (reply: FastifyReply, p: Principal, title: string, body: SafeHtml, status = 200) =>
      reply
        .code(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(layout({ title, tenantName: p.tenant.name, body, signedInAs: p.user.username, signOut: { action: `/t/${p.tenant.slug}/signout`, csrf: reply.generateCsrf() } }));

    const overview = async (reply: FastifyReply, p: Principal, notice?: { kind: 'error' | 'info'; text: string }, status = 200) => {
      const methods = (await services.management.list(p.tenant, p.user)).filter((m) => m.state === 'active');
      const csrf = reply.generateCsrf();
      const restricted = p.session.scope === 'register';
      const canAdd = (type: string) => p.tenant.policy.allowedMethods.includes(type);
      return page(
        reply,
        p,
        'Security info',
        html`<div class="card">
<h1>Security info</h1>
${notice ? alert(notice.kind, notice.text) : ''}
${restricted ? alert('info', 'Your organisation requires a second sign-in method. Add an authenticator app to finish signing in.') : ''}
<h2>Your sign-in methods</h2>
${
  methods.length === 0
    ? html`<p>You have no sign-in methods yet.</p>`
    : html`<ul class="methods">${methods.map((m) => methodRow(p, m, csrf, restricted))}</ul>`
}
<h2>Add a method</h2>
${
  canAdd('totp')
    ? html`<form method="post" action="${base(p)}/totp">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="totp-label">Name for the authenticator app (optional)</label>
  <input type="text" id="totp-label" name="label" maxlength="100" placeholder="My phone">
  <button type="submit">Add authenticator app</button>
</form>`
    : ''
}
${
  canAdd('recovery-codes') && !restricted
    ? html`<form method="post" action="${base(p)}/recovery-codes">
  <input type="hidden" name="_csrf" value="${csrf}">
  <button type="submit" class="secondary">${methods.some((m) => m.type === 'recovery-codes') ? 'Replace recovery codes' : 'Create recovery codes'}</button>
</form>`
    : ''
}
${restricted ? '' : html`<p><a href="/t/${p.tenant.slug}/my/signins">See your recent sign-ins</a></p>`}
</div>`,
        status,
      );
    };

    const methodRow = (p: Principal, m: MethodView, csrf: string, restricted: boolean) => html`<li>
<span><strong>${TYPE_NAMES[m.type] ?? m.type}</strong>: ${m.label}${m.default ? html` <em>(default)</em>` : ''}<br>
<span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}${m.remaining !== undefined ? html`; ${m.remaining} codes left` : ''}</span></span>
${
  restricted
    ? ''
    : html`<span>
${
  !m.default && m.type !== 'recovery-codes'
    ? html`<form method="post" action="${base(p)}/methods/${m.id}/default" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="secondary" aria-label="Make ${m.label} the default method">Make default</button></form>`
    : ''
}
<form method="post" action="${base(p)}/methods/${m.id}/delete" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="danger" aria-label="Remove ${m.label}">Remove</button></form>
</span>`
}
</li>`;

    const totpSetup = (reply: FastifyReply, p: Principal, id: string, details: Record<string, unknown>, error?: string, status = 200) =>
      page(
        reply,
        p,
        'Add an authenticator app',
        html`<div class="card">
<h1>Add an authenticator app</h1>
${alert('error', error)}
<ol>
<li>Open your authenticator app and add an account.</li>
<li>Scan this QR code, or type the key below.</li>
<li>Enter the 6-digit code the app shows.</li>
</ol>
<div class="qr" role="img" aria-label="QR code for your authenticator app">${trustedHtml(String(details.qrCodeSvg))}</div>
<p>Key: <code class="secret">${String(details.secret).replace(/(.{4})/g, '$1 ').trim()}</code></p>
<form method="post" action="${base(p)}/totp/${id}/confirm" novalidate>
  <input type="hidden" name="_csrf" value="${reply.generateCsrf()}">
  <label for="code">Code from the app</label>
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="6" autocomplete="one-time-code" required autofocus>
  <button type="submit">Confirm</button>
</form>
<p class="hint"><a href="${base(p)}">Cancel</a></p>
</div>`,
        status,
      );

    const shownError = (err: unknown): string => {
      if (!(err instanceof AppError)) throw err;
      return err.detail ?? problemCatalog[err.code].title;
    };

    app.get('/t/:tenant/my/security-info', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await principalOr(request, reply);
      if (!p) return reply;
      return overview(reply, p);
    });

    app.post(
      '/t/:tenant/my/security-info/totp',
      { schema: { params: PageParams, body: Type.Object({ label: Field(100), _csrf: Field() }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply);
        if (!p) return reply;
        try {
          const enrolment = await services.management.enrol(p.tenant, p.user, 'totp', { label: request.body.label?.trim() || undefined });
          return totpSetup(reply, p, enrolment.id, enrolment);
        } catch (err) {
          return overview(reply, p, { kind: 'error', text: shownError(err) }, 400);
        }
      },
    );

    app.post(
      '/t/:tenant/my/security-info/totp/:id/confirm',
      { schema: { params: MethodParams, body: Type.Object({ code: Field(64), _csrf: Field() }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply);
        if (!p) return reply;
        try {
          await services.management.confirm(p.tenant, p.user, p.session, request.params.id, request.body.code?.trim() ?? '');
        } catch (err) {
          const text = shownError(err);
          if (err instanceof AppError && err.code === 'invalid-code') {
            const details = await services.management.setupDetails(p.tenant, p.user, request.params.id);
            return totpSetup(reply, p, request.params.id, details, "That code didn't work. Check the app and try the newest code.", 401);
          }
          return overview(reply, p, { kind: 'error', text }, err instanceof AppError ? err.status : 400);
        }
        const refreshed = (await findPrincipal(services, request)) ?? p;
        return overview(reply, refreshed, { kind: 'info', text: 'Authenticator app added.' });
      },
    );

    app.post(
      '/t/:tenant/my/security-info/recovery-codes',
      { schema: { params: PageParams, body: Type.Object({ _csrf: Field() }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply);
        if (!p) return reply;
        if (p.session.scope === 'register') return overview(reply, p, { kind: 'error', text: problemCatalog['registration-only'].title }, 403);
        const { codes } = (await services.management.enrol(p.tenant, p.user, 'recovery-codes', {})) as unknown as { codes: string[] };
        return page(
          reply,
          p,
          'Your recovery codes',
          html`<div class="card">
<h1>Your recovery codes</h1>
${alert('info', 'Save these codes somewhere safe now. They will not be shown again, and any earlier codes no longer work.')}
<p>Each code signs you in once when you cannot use your other methods.</p>
<ol class="codes">${codes.map((c) => html`<li>${c}</li>`)}</ol>
<p><a class="button" href="${base(p)}">I have saved my codes</a></p>
</div>`,
        );
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/default',
      { schema: { params: MethodParams, body: Type.Object({ _csrf: Field() }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply);
        if (!p) return reply;
        try {
          if (p.session.scope === 'register') throw new AppError('registration-only');
          await services.management.update(p.tenant, p.user, request.params.id, { default: true });
          return overview(reply, p, { kind: 'info', text: 'Default method changed.' });
        } catch (err) {
          return overview(reply, p, { kind: 'error', text: shownError(err) }, err instanceof AppError ? err.status : 400);
        }
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/delete',
      { schema: { params: MethodParams, body: Type.Object({ _csrf: Field() }), hide: true }, preHandler: app.csrfProtection, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply);
        if (!p) return reply;
        try {
          if (p.session.scope === 'register') throw new AppError('registration-only');
          await services.management.remove(p.tenant, p.user, request.params.id);
          return overview(reply, p, { kind: 'info', text: 'Method removed.' });
        } catch (err) {
          return overview(reply, p, { kind: 'error', text: shownError(err) }, err instanceof AppError ? err.status : 400);
        }
      },
    );

    app.get('/t/:tenant/my/signins', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await principalOr(request, reply);
      if (!p) return reply;
      if (p.session.scope === 'register') return reply.redirect(base(p), 303);
      const events = await services.events.listForUser(p.tenant.id, p.user.id, 50);
      return page(
        reply,
        p,
        'My sign-ins',
        html`<div class="card">
<h1>My sign-ins</h1>
<table>
<caption class="hint">Your most recent sign-in attempts, newest first. Times are UTC.</caption>
<thead><tr><th scope="col">When</th><th scope="col">From</th><th scope="col">Step</th><th scope="col">Result</th></tr></thead>
<tbody>${events.items.map(
          (e) => html`<tr><td>${when(new Date(e.at).toISOString())}</td><td>${e.ip ?? 'unknown'}<br><span class="hint">${(e.userAgent ?? '').slice(0, 80)}</span></td>
<td>${e.step}${e.method ? html` (${e.method})` : ''}</td><td class="${e.outcome === 'success' ? 'good' : 'bad'}">${e.outcome}: ${e.reason.replace(/_/g, ' ')}</td></tr>`,
        )}</tbody>
</table>
<p><a href="${base(p)}">Back to security info</a></p>
</div>`,
      );
    });
  };
}
