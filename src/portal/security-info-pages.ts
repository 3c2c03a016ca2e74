import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import type { Principal } from '../http/authenticate.ts';
import type { Services } from '../server/services.ts';
import type { MethodView } from '../methods/method-management.ts';
import { html, trustedHtml } from '../http/page/html.ts';
import { alert } from '../http/page/layout.ts';
import { principalPages } from './principal-page.ts';
import { formRoute } from '../http/page/form-route.ts';
import { landingPath, OIDC_NEXT, type NextPage } from '../http/page/landing.ts';
import { CONTINUE_COOKIE } from '../http/cookie-names.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const MethodParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });
const Csrf = Type.Object({ _csrf: Field() });

export const TYPE_NAMES: Record<string, string> = {
  totp: 'Authenticator app',
  'recovery-codes': 'Recovery codes',
  webauthn: 'Passkey or security key',
  sms: 'Text message',
  voice: 'Phone call',
  email: 'Email',
};

export const when = (iso: string | null) => (iso ? html`<time datetime="${iso}" data-local>${iso.replace('T', ' ').slice(0, 16)} UTC</time>` : 'never');

type Notice = { kind: 'error' | 'info'; text: string };

/** The user's security info: their methods; add a passkey, a security key, an authenticator app or recovery codes; rename, default, remove. */
export function securityInfoPages(services: Services): FastifyPluginAsyncTypebox {
  const { principalOr, page, shownError } = principalPages(services);
  return async (app) => {
    const base = (p: Principal) => `/t/${p.tenant.slug}/my/security-info`;
    const form = <P extends TSchema, B extends TSchema>(params: P, body: B) => formRoute(app, 'self-service', params, body);

    const overview = async (reply: FastifyReply, p: Principal, notice?: Notice, status = 200) => {
      const methods = (await services.management.list(p.tenant, p.user)).filter((m) => m.state === 'active');
      const csrf = reply.generateCsrf();
      const restricted = p.session.scope === 'register';
      const waiting = reply.request.cookies[CONTINUE_COOKIE];
      const continueTo = waiting && OIDC_NEXT.test(waiting) ? (waiting as NextPage) : undefined;
      // Changes need a recent sign-in and, once there is a method, a second factor proved in it (not a remembered browser).
      const provedFactor = restricted || p.session.amr.includes('mfa') || methods.length === 0;
      const recent = services.sessions.isRecent(p.session) && provedFactor;
      const allowed = (type: string) => p.tenant.policy.allowedMethods.includes(type);
      const phoneChannels = (['sms', 'voice'] as const).filter((c) => allowed(c) && services.delivery.configured(c));
      return page(
        reply,
        p,
        'Security info',
        html`<div class="card">
<h1>Security info</h1>
${notice ? alert(notice.kind, notice.text) : ''}
${restricted ? alert('info', 'Your organisation requires a second sign-in method. Add one to finish signing in.') : ''}
${
  !restricted && continueTo
    ? html`<p class="alert info" role="status">Your sign-in method is set up. <a href="${landingPath(p.tenant, continueTo)}">Continue to the app</a></p>`
    : ''
}
${
  recent
    ? ''
    : html`<div class="alert info" role="status"><p>To change your sign-in methods, confirm it's you by signing in again${provedFactor ? '' : ' with one of your methods'}.</p>
<form method="post" action="/t/${p.tenant.slug}/signout"><input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="next" value="${provedFactor ? 'security-info' : 'security-info-mfa'}"><button type="submit">Sign in again</button></form></div>`
}
<h2>Your sign-in methods</h2>
${methods.length === 0 ? html`<p>You have no sign-in methods yet.</p>` : html`<ul class="methods">${methods.map((m) => methodRow(p, m, csrf, recent && !restricted))}</ul>`}
${
  recent
    ? html`<h2>Add a method</h2>
${
  allowed('webauthn')
    ? html`<form method="post" action="${base(p)}/webauthn" data-webauthn="register" data-options-url="/api/v1/me/methods/webauthn/options" data-kind="passkey">
  <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="kind" value="passkey"><input type="hidden" name="attestation" value="">
  <label for="passkey-label">Name for the passkey (optional)</label>
  <input type="text" id="passkey-label" name="label" maxlength="100" placeholder="My laptop">
  <button type="submit" data-webauthn-only disabled>Add a passkey</button>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>
<form method="post" action="${base(p)}/webauthn" data-webauthn="register" data-options-url="/api/v1/me/methods/webauthn/options" data-kind="security-key">
  <input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="kind" value="security-key"><input type="hidden" name="attestation" value="">
  <label for="key-label">Name for the security key (optional)</label>
  <input type="text" id="key-label" name="label" maxlength="100" placeholder="Blue key">
  <button type="submit" class="secondary" data-webauthn-only disabled>Add a security key</button>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
  <p class="hint" data-webauthn-missing>Passkeys and security keys need JavaScript and a browser that supports them.</p>
</form>`
    : ''
}
${
  allowed('totp')
    ? html`<form method="post" action="${base(p)}/totp">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="totp-label">Name for the authenticator app (optional)</label>
  <input type="text" id="totp-label" name="label" maxlength="100" placeholder="My phone">
  <button type="submit" class="secondary">Add authenticator app</button>
</form>`
    : ''
}
${
  phoneChannels.length > 0
    ? html`<form method="post" action="${base(p)}/phone">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="phone">Phone number, with country code</label>
  <input type="tel" id="phone" name="to" autocomplete="tel" inputmode="tel" maxlength="32" placeholder="+44 7700 900123" required>
  ${
    phoneChannels.length > 1
      ? html`<fieldset class="choices"><legend>Get codes by</legend>
  <label><input type="radio" name="channel" value="sms" checked> Text message</label>
  <label><input type="radio" name="channel" value="voice"> Phone call</label></fieldset>`
      : html`<input type="hidden" name="channel" value="${phoneChannels[0]!}">`
  }
  <button type="submit" class="secondary">Add phone</button>
</form>`
    : ''
}
${
  allowed('email') && services.delivery.configured('email')
    ? html`<form method="post" action="${base(p)}/email">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="email">Email address</label>
  <input type="email" id="email" name="to" autocomplete="email" maxlength="254" required>
  <button type="submit" class="secondary">Add email</button>
</form>`
    : ''
}
${
  allowed('recovery-codes') && !restricted
    ? html`<form method="post" action="${base(p)}/recovery-codes">
  <input type="hidden" name="_csrf" value="${csrf}">
  <button type="submit" class="secondary">${methods.some((m) => m.type === 'recovery-codes') ? 'Replace recovery codes' : 'Create recovery codes'}</button>
</form>`
    : ''
}`
    : ''
}
${restricted ? '' : html`<p><a href="/t/${p.tenant.slug}/my/signins">See your recent sign-ins</a> · <a href="/t/${p.tenant.slug}/my/password">Change your password</a></p>`}
</div>`,
        status,
        true,
      );
    };

    const methodRow = (p: Principal, m: MethodView, csrf: string, editable: boolean) => html`<li>
<span><strong>${TYPE_NAMES[m.type] ?? m.type}</strong>: ${m.label}${m.default ? html` <em>(default)</em>` : ''}<br>
<span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}${m.remaining !== undefined ? html`; ${m.remaining} codes left` : ''}</span></span>
${
  editable
    ? html`<span class="actions">
<form method="post" action="${base(p)}/methods/${m.id}/rename" class="inline rename">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label class="visually-hidden" for="rename-${m.id}">New name for ${m.label}</label>
  <input type="text" id="rename-${m.id}" name="label" maxlength="100" value="${m.label}" required>
  <button type="submit" class="secondary" aria-label="Rename ${m.label}">Rename</button>
</form>
${
  !m.default && m.type !== 'recovery-codes'
    ? html`<form method="post" action="${base(p)}/methods/${m.id}/default" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="secondary" aria-label="Make ${m.label} the default method">Make default</button></form>`
    : ''
}
<form method="post" action="${base(p)}/methods/${m.id}/delete" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="danger" aria-label="Remove ${m.label}">Remove</button></form>
</span>`
    : ''
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

    /** The page where a code sent to a new phone number or email address is typed in. */
    const codeSetup = (reply: FastifyReply, p: Principal, id: string, channel: string, to: string, notice?: Notice, status = 200) => {
      const csrf = reply.generateCsrf();
      const how = channel === 'voice' ? `We are calling ${to} and will read out a code.` : `We sent a code to ${to}.`;
      const title = channel === 'email' ? 'Confirm your email address' : 'Confirm your phone';
      return page(
        reply,
        p,
        title,
        html`<div class="card">
<h1>${title}</h1>
${notice ? alert(notice.kind, notice.text) : ''}
<p>${how} It expires in ${Math.round(services.config.delivery.code.lifetimeMinutes)} minutes.</p>
<form method="post" action="${base(p)}/codes/${id}/confirm" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="code">Code</label>
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="one-time-code" required autofocus>
  <button type="submit">Confirm</button>
</form>
<form method="post" action="${base(p)}/codes/${id}/resend" class="inline">
  <input type="hidden" name="_csrf" value="${csrf}">
  <button type="submit" class="secondary">Send a new code</button>
</form>
<p class="hint"><a href="${base(p)}">Cancel</a></p>
</div>`,
        status,
      );
    };

    /** The overview with an expected failure in words; anything else goes on to the error handler. */
    const failed = (reply: FastifyReply, p: Principal, err: unknown) => {
      const { text, status } = shownError(err);
      return overview(reply, p, { kind: 'error', text }, status);
    };

    /** Registers a phone number or an email address and shows where its code went. */
    const addDestination = async (reply: FastifyReply, p: Principal, channel: 'sms' | 'voice' | 'email', to: string) => {
      try {
        const enrolment = await services.management.enrol(p.tenant, p.user, p.session, channel, { to }, reply.request.ip);
        return await codeSetup(reply, p, enrolment.id, channel, String(enrolment.to));
      } catch (err) {
        return failed(reply, p, err);
      }
    };

    /** A phone number or address of this user still waiting for its code. */
    const pendingDestination = async (p: Principal, id: string) =>
      (await services.management.list(p.tenant, p.user)).find((m) => m.id === id && m.state === 'pending' && m.to !== undefined);
    const expired = (reply: FastifyReply, p: Principal) => overview(reply, p, { kind: 'error', text: 'That confirmation has expired. Add the method again.' }, 404);

    /** Runs a change and shows the overview with its outcome. */
    const change = async (reply: FastifyReply, p: Principal, done: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        return failed(reply, p, err);
      }
      // The session may have changed (a registration session becomes a full one).
      const session = await services.sessions.authenticate(p.token);
      return overview(reply, session ? { ...p, session } : p, { kind: 'info', text: done });
    };

    app.get('/t/:tenant/my/security-info', { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' } }, async (request, reply) => {
      const p = await principalOr(request, reply, 'security-info');
      return p ? overview(reply, p) : reply;
    });

    app.post(
      '/t/:tenant/my/security-info/webauthn',
      form(PageParams, Type.Object({ label: Field(100), kind: Field(20), attestation: Field(70000), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        const added = request.body.kind === 'security-key' ? 'Security key added.' : 'Passkey added.';
        return change(reply, p, added, async () => {
          let attestation: unknown;
          try {
            attestation = JSON.parse(request.body.attestation ?? '');
          } catch {
            throw new AppError('invalid-request', 'the authenticator response was not readable; try again');
          }
          await services.management.enrol(p.tenant, p.user, p.session, 'webauthn', { label: request.body.label?.trim() || undefined, attestation });
        });
      },
    );

    app.post(
      '/t/:tenant/my/security-info/totp',
      form(PageParams, Type.Object({ label: Field(100), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        try {
          const enrolment = await services.management.enrol(p.tenant, p.user, p.session, 'totp', { label: request.body.label?.trim() || undefined });
          return await totpSetup(reply, p, enrolment.id, enrolment);
        } catch (err) {
          return failed(reply, p, err);
        }
      },
    );

    app.post(
      '/t/:tenant/my/security-info/totp/:id/confirm',
      form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        try {
          await services.management.confirm(p.tenant, p.user, p.session, request.params.id, request.body.code?.trim() ?? '');
        } catch (err) {
          if (err instanceof AppError && err.code === 'invalid-code') {
            const details = await services.management.setupDetails(p.tenant, p.user, request.params.id);
            return totpSetup(reply, p, request.params.id, details, "That code didn't work. Check the app and try the newest code.", 401);
          }
          return failed(reply, p, err);
        }
        return change(reply, p, 'Authenticator app added.', async () => {});
      },
    );

    app.post(
      '/t/:tenant/my/security-info/phone',
      form(PageParams, Type.Object({ to: Field(64), channel: Field(10), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        return addDestination(reply, p, request.body.channel === 'voice' ? 'voice' : 'sms', request.body.to ?? '');
      },
    );

    app.post(
      '/t/:tenant/my/security-info/email',
      form(PageParams, Type.Object({ to: Field(320), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        return addDestination(reply, p, 'email', request.body.to ?? '');
      },
    );

    app.post(
      '/t/:tenant/my/security-info/codes/:id/confirm',
      form(MethodParams, Type.Object({ code: Field(64), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        const pending = await pendingDestination(p, request.params.id);
        if (!pending) return expired(reply, p);
        try {
          await services.management.confirm(p.tenant, p.user, p.session, pending.id, request.body.code?.trim() ?? '');
        } catch (err) {
          if (err instanceof AppError && err.code === 'invalid-code') {
            return codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'error', text: "That code didn't work. Check it, or send a new code." }, 401);
          }
          return failed(reply, p, err);
        }
        return change(reply, p, `${TYPE_NAMES[pending.type]} added.`, async () => {});
      },
    );

    app.post(
      '/t/:tenant/my/security-info/codes/:id/resend',
      form(MethodParams, Csrf),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        const pending = await pendingDestination(p, request.params.id);
        if (!pending) return expired(reply, p);
        try {
          await services.management.resendConfirmation(p.tenant, p.user, p.session, pending.id, request.ip);
          return await codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'info', text: 'We sent a new code. Use the newest one.' });
        } catch (err) {
          const { text, status } = shownError(err);
          return codeSetup(reply, p, pending.id, pending.type, pending.to!, { kind: 'error', text }, status);
        }
      },
    );

    app.post(
      '/t/:tenant/my/security-info/recovery-codes',
      form(PageParams, Csrf),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        let codes: string[];
        try {
          codes = ((await services.management.enrol(p.tenant, p.user, p.session, 'recovery-codes', {})) as unknown as { codes: string[] }).codes;
        } catch (err) {
          return failed(reply, p, err);
        }
        const text = `Recovery codes for ${p.user.username} at ${p.tenant.name}\n${codes.join('\n')}\n`;
        return page(
          reply,
          p,
          'Your recovery codes',
          html`<div class="card">
<h1>Your recovery codes</h1>
${alert('info', 'Save these codes somewhere safe now. They will not be shown again, and any earlier codes no longer work.')}
<p>Each code signs you in once when you cannot use your other methods.</p>
<ol class="codes" id="recovery-codes">${codes.map((c) => html`<li>${c}</li>`)}</ol>
<p class="actions">
  <button type="button" class="secondary" data-copy="recovery-codes" hidden>Copy codes</button>
  <a class="button secondary" download="recovery-codes.txt" href="data:text/plain;charset=utf-8,${encodeURIComponent(text)}">Download codes</a>
</p>
<p><a class="button" href="${base(p)}">I have saved my codes</a></p>
</div>`,
          200,
          true,
        );
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/rename',
      form(MethodParams, Type.Object({ label: Field(100), _csrf: Field() })),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        return change(reply, p, 'Method renamed.', () => services.management.update(p.tenant, p.user, p.session, request.params.id, { label: request.body.label ?? '' }));
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/default',
      form(MethodParams, Csrf),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        return change(reply, p, 'Default method changed.', async () => {
          await services.management.update(p.tenant, p.user, p.session, request.params.id, { default: true });
        });
      },
    );

    app.post(
      '/t/:tenant/my/security-info/methods/:id/delete',
      form(MethodParams, Csrf),
      async (request, reply) => {
        const p = await principalOr(request, reply, 'security-info');
        if (!p) return reply;
        return change(reply, p, 'Method removed.', async () => {
          await services.management.remove(p.tenant, p.user, p.session, request.params.id);
        });
      },
    );
  };
}
