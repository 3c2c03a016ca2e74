import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import type { Principal } from '../http/authenticate.ts';
import { requestContext } from '../http/request-context.ts';
import type { Services } from '../server/services.ts';
import { PASSWORD_MIN } from '../directory/password-change.ts';
import { html } from '../http/page/html.ts';
import { alert } from '../http/page/layout.ts';
import { principalPages } from './principal-page.ts';
import { formRoute } from '../http/page/form-route.ts';
import { describeUserAgent } from './user-agent.ts';
import { sessionMay } from '../sessions/session-scope.ts';
import { when } from '../http/page/parts/when.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const EventParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });

const PAGE_SIZE = 20;
const METHOD_NAMES: Record<string, string> = { totp: 'authenticator app', 'recovery-codes': 'recovery code', webauthn: 'passkey or security key' };
const REASONS: Record<string, string> = {
  ok: '',
  factor_required: 'second step asked for',
  registration_required: 'asked to add a method',
  invalid_credentials: 'wrong username or password',
  invalid_code: 'wrong code or key',
  account_disabled: 'account disabled',
  rate_limited: 'too many attempts',
};

function how(step: string, method: string | null): string {
  if (step === 'password') return 'Password';
  if (step === 'passkey') return 'Passkey, no password';
  return `Second step: ${method ? (METHOD_NAMES[method] ?? method) : 'unknown'}`;
}

/** My sign-ins (with "this wasn't me") and changing the password. */
export function mySigninsPages(services: Services): FastifyPluginAsyncTypebox {
  const { principalOr, page, shownError } = principalPages(services);
  return async (app) => {
    const passwordForm = (reply: FastifyReply, p: Principal, csrf: string, error?: string) => html`<form method="post" action="/t/${p.tenant.slug}/my/password" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  ${alert('error', error)}
  <label for="current-password">Current password</label>
  <input type="password" id="current-password" name="currentPassword" autocomplete="current-password" required>
  <label for="new-password">New password</label>
  <input type="password" id="new-password" name="newPassword" autocomplete="new-password" minlength="${PASSWORD_MIN}" required aria-describedby="new-password-hint">
  <p class="hint" id="new-password-hint">At least ${PASSWORD_MIN} characters. A long passphrase is best.</p>
  <button type="submit">Change password</button>
</form>`;

    app.get(
      '/t/:tenant/my/signins',
      { schema: { params: PageParams, querystring: Type.Object({ cursor: Field(200) }), hide: true }, config: { admissionClass: 'self-service' } },
      async (request, reply) => {
        const p = await principalOr(request, reply, 'signins');
        if (!p) return reply;
        if (!sessionMay(p.session.scope, 'view-signins')) return reply.redirect(`/t/${p.tenant.slug}/my/security-info`, 303);
        const events = await services.events.listForUser(p.tenant.id, p.user.id, PAGE_SIZE, request.query.cursor);
        const csrf = reply.generateCsrf();
        return page(
          reply,
          p,
          'My sign-ins',
          html`<div class="card wide">
<h1>My sign-ins</h1>
<p class="hint">Your recent sign-in activity, newest first. If you don't recognise one, choose "This wasn't me".</p>
<div class="table-scroll">
<table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">Where from</th><th scope="col">How</th><th scope="col">Result</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${events.items.map(
            (e) => html`<tr>
<td data-label="When">${when(new Date(e.at).toISOString())}</td>
<td data-label="Where from">${e.ip ?? 'unknown address'}<br><span class="hint">${describeUserAgent(e.userAgent)}</span>${e.app ? html`<br><span class="hint">${e.app}</span>` : ''}</td>
<td data-label="How">${how(e.step, e.method)}</td>
<td data-label="Result" class="${e.outcome === 'success' ? 'good' : 'bad'}">${e.outcome === 'success' ? 'Succeeded' : 'Failed'}${REASONS[e.reason] !== '' ? html`<br><span class="hint">${REASONS[e.reason] ?? e.reason.replace(/_/g, ' ')}</span>` : ''}</td>
<td>${
              e.reportedAt
                ? html`<span class="hint">Reported</span>`
                : html`<form method="post" action="/t/${p.tenant.slug}/my/signins/${e.id}/report" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="danger small">This wasn't me</button></form>`
            }</td>
</tr>`,
          )}</tbody>
</table>
</div>
<p>${events.next ? html`<a href="/t/${p.tenant.slug}/my/signins?cursor=${events.next}">Older sign-ins</a> · ` : ''}<a href="/t/${p.tenant.slug}/my/signins">Newest</a> · <a href="/t/${p.tenant.slug}/my/security-info">Security info</a></p>
</div>`,
          200,
          true,
        );
      },
    );

    app.post(
      '/t/:tenant/my/signins/:id/report',
      formRoute(app, 'self-service', EventParams, Type.Object({ _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'signins');
        if (!p) return reply;
        let ended: number;
        try {
          ended = await services.reports.report(p.tenant, p.user, p.session, request.params.id);
        } catch (err) {
          const { text, status } = shownError(err);
          const again =
            err instanceof AppError && err.code === 'reauthentication-required'
              ? html`<p>Reporting a sign-in signs you out everywhere else, so it needs a sign-in within the last 10 minutes.</p>
<form method="post" action="/t/${p.tenant.slug}/signout"><input type="hidden" name="_csrf" value="${reply.generateCsrf()}"><input type="hidden" name="next" value="signins"><button type="submit">Sign in again</button></form>`
              : html`<p><a href="/t/${p.tenant.slug}/my/signins">Back to my sign-ins</a></p>`;
          return page(reply, p, 'Report a sign-in', html`<div class="card"><h1>Report a sign-in</h1>${alert('error', text)}${again}</div>`, status);
        }
        return page(
          reply,
          p,
          'Secure your account',
          html`<div class="card">
<h1>Secure your account</h1>
${alert('info', `Thanks for telling us. We signed you out everywhere else (${ended} other ${ended === 1 ? 'session' : 'sessions'}) and told your administrator.`)}
<h2>1. Change your password</h2>
<p>Someone may know it. Choose a new one you don't use anywhere else.</p>
${passwordForm(reply, p, reply.generateCsrf())}
<h2>2. Review your sign-in methods</h2>
<p>Remove any method you don't recognise.</p>
<p><a class="button secondary" href="/t/${p.tenant.slug}/my/security-info">Review my methods</a></p>
</div>`,
        );
      },
    );

    app.get('/t/:tenant/my/password', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await principalOr(request, reply, 'security-info');
      if (!p) return reply;
      return page(reply, p, 'Change your password', html`<div class="card"><h1>Change your password</h1>${passwordForm(reply, p, reply.generateCsrf())}</div>`);
    });

    app.post(
      '/t/:tenant/my/password',
      formRoute(app, 'self-service', PageParams, Type.Object({ currentPassword: Field(1024), newPassword: Field(1024), _csrf: Field() }), { hashes: true }),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        try {
          await services.passwords.change(p.tenant, p.user, p.session, request.body.currentPassword ?? '', request.body.newPassword ?? '', requestContext(request));
        } catch (err) {
          const { text, status } = shownError(err);
          return page(reply, p, 'Change your password', html`<div class="card"><h1>Change your password</h1>${passwordForm(reply, p, reply.generateCsrf(), text)}</div>`, status);
        }
        return page(
          reply,
          p,
          'Password changed',
          html`<div class="card"><h1>Password changed</h1>${alert('info', 'Your password was changed and your other sessions were ended.')}<p><a href="/t/${p.tenant.slug}/my/security-info">Back to security info</a></p></div>`,
        );
      },
    );
  };
}
