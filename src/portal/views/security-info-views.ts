import { html, trustedHtml, type SafeHtml } from '../../http/page/html.ts';
import { alert } from '../../http/page/layout.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import { csrfField, hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { errorSummary, notice as noticeView } from '../../http/page/parts/error-summary.ts';
import { describeMethod, methodName, type MethodType } from '../../methods/registry.ts';
import type { MethodView } from '../../methods/method-management.ts';
import { when } from '../../http/page/parts/when.ts';

export interface Viewer {
  tenant: { slug: string; name: string };
  username: string;
  csrf: string;
}

export type Notice = { kind: 'error' | 'info'; text: string };

const base = (v: Viewer) => `/t/${v.tenant.slug}/my/security-info`;

const page = (v: Viewer, title: string, body: SafeHtml, scripts = false) => signedInLayout({ title, tenant: v.tenant, username: v.username, csrf: v.csrf, body, scripts });

/** The security-info overview: the user's methods, and the forms to add the ones they may add now. */
export function overviewView(v: Viewer & {
  notice?: Notice | undefined;
  /** A registration session: the user must add a first method. */
  registering: boolean;
  /** An app waiting for the user, once a method is set up. */
  continueTo?: string | undefined;
  /** Changes are allowed now (a recent sign-in that proved a second factor, or none needed). */
  canChange: boolean;
  /** Not allowed because the sign-in proved no second factor: the way back asks for one. */
  needsSecondFactor: boolean;
  methods: MethodView[];
  /** What this session may add, strongest first (MethodManagement.addable). */
  addable: MethodType[];
}): string {
  const byForm = (form: string) => v.addable.filter((t) => describeMethod(t)?.enrolment?.form === form);
  const phoneChannels = byForm('phone');
  const hasCodes = v.methods.some((m) => m.type === 'recovery-codes');
  return page(
    v,
    'Security info',
    html`<div class="card">
<h1>Security info</h1>
${noticeView(v.notice)}
${v.registering ? alert('info', 'Your organisation requires a second sign-in method. Add one to finish signing in.') : ''}
${!v.registering && v.continueTo ? html`<p class="alert info" role="status">Your sign-in method is set up. <a href="${v.continueTo}">Continue to the app</a></p>` : ''}
${
  v.canChange
    ? ''
    : html`<div class="alert info" role="status"><p>To change your sign-in methods, confirm it's you by signing in again${v.needsSecondFactor ? ' with one of your methods' : ''}.</p>
<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next: v.needsSecondFactor ? 'security-info-mfa' : 'security-info' })}<button type="submit">Sign in again</button></form></div>`
}
<h2>Your sign-in methods</h2>
${v.methods.length === 0 ? html`<p>You have no sign-in methods yet.</p>` : html`<ul class="methods">${v.methods.map((m) => methodRow(v, m, v.canChange && !v.registering))}</ul>`}
${
  v.canChange
    ? html`<h2>Add a method</h2>
${byForm('webauthn').length > 0 ? webauthnForms(v) : ''}
${byForm('pair').length > 0 ? pairForm(v) : ''}
${byForm('totp').length > 0 ? totpForm(v) : ''}
${phoneChannels.length > 0 ? phoneForm(v, phoneChannels) : ''}
${byForm('email').length > 0 ? emailForm(v) : ''}
${byForm('generate').length > 0 ? html`<form method="post" action="${base(v)}/recovery-codes">${csrfField(v.csrf)}<button type="submit" class="secondary">${hasCodes ? 'Replace recovery codes' : 'Create recovery codes'}</button></form>` : ''}`
    : ''
}
${v.registering ? '' : html`<p><a href="/t/${v.tenant.slug}/my/signins">See your recent sign-ins</a> · <a href="/t/${v.tenant.slug}/my/password">Change your password</a></p>`}
</div>`,
    true,
  );
}

function methodRow(v: Viewer, m: MethodView, editable: boolean): SafeHtml {
  return html`<li>
<span><strong>${methodName(m.type)}</strong>: ${m.label}${m.default ? html` <em>(default)</em>` : ''}<br>
<span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}${m.remaining !== undefined ? html`; ${m.remaining} codes left` : ''}</span></span>
${
  editable
    ? html`<span class="actions">
<form method="post" action="${base(v)}/methods/${m.id}/rename" class="inline rename">
  ${csrfField(v.csrf)}
  <label class="visually-hidden" for="rename-${m.id}">New name for ${m.label}</label>
  <input type="text" id="rename-${m.id}" name="label" maxlength="100" value="${m.label}" required>
  <button type="submit" class="secondary" aria-label="Rename ${m.label}">Rename</button>
</form>
${
  !m.default && m.type !== 'recovery-codes'
    ? html`<form method="post" action="${base(v)}/methods/${m.id}/default" class="inline">${csrfField(v.csrf)}<button type="submit" class="secondary" aria-label="Make ${m.label} the default method">Make default</button></form>`
    : ''
}
<form method="post" action="${base(v)}/methods/${m.id}/delete" class="inline">${csrfField(v.csrf)}<button type="submit" class="danger" aria-label="Remove ${m.label}">Remove</button></form>
</span>`
    : ''
}
</li>`;
}

function webauthnForms(v: Viewer): SafeHtml {
  return html`<form method="post" action="${base(v)}/webauthn" data-webauthn="register" data-options-url="/api/v1/me/methods/webauthn/options" data-kind="passkey">
  ${hiddenFields(v.csrf, { kind: 'passkey', attestation: '' })}
  <label for="passkey-label">Name for the passkey (optional)</label>
  <input type="text" id="passkey-label" name="label" maxlength="100" placeholder="My laptop">
  <button type="submit" data-webauthn-only disabled>Add a passkey</button>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>
<form method="post" action="${base(v)}/webauthn" data-webauthn="register" data-options-url="/api/v1/me/methods/webauthn/options" data-kind="security-key">
  ${hiddenFields(v.csrf, { kind: 'security-key', attestation: '' })}
  <label for="key-label">Name for the security key (optional)</label>
  <input type="text" id="key-label" name="label" maxlength="100" placeholder="Blue key">
  <button type="submit" class="secondary" data-webauthn-only disabled>Add a security key</button>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
  <p class="hint" data-webauthn-missing>Passkeys and security keys need JavaScript and a browser that supports them.</p>
</form>`;
}

function pairForm(v: Viewer): SafeHtml {
  return html`<form method="post" action="${base(v)}/pair">
  ${csrfField(v.csrf)}
  <label for="pair-label">Name for the phone (optional)</label>
  <input type="text" id="pair-label" name="label" maxlength="100" placeholder="My phone">
  <button type="submit" class="secondary">Add the Steadfast Authenticator</button>
  <p class="hint">Approve sign-ins on your phone: the app runs in its browser, no app store needed.</p>
</form>`;
}

function totpForm(v: Viewer): SafeHtml {
  return html`<form method="post" action="${base(v)}/totp">
  ${csrfField(v.csrf)}
  <label for="totp-label">Name for the authenticator app (optional)</label>
  <input type="text" id="totp-label" name="label" maxlength="100" placeholder="My phone">
  <button type="submit" class="secondary">Add authenticator app</button>
</form>`;
}

function phoneForm(v: Viewer, channels: MethodType[]): SafeHtml {
  return html`<form method="post" action="${base(v)}/phone">
  ${csrfField(v.csrf)}
  <label for="phone">Phone number, with country code</label>
  <input type="tel" id="phone" name="to" autocomplete="tel" inputmode="tel" maxlength="32" placeholder="+44 7700 900123" required>
  ${
    channels.length > 1
      ? html`<fieldset class="choices"><legend>Get codes by</legend>
  ${channels.map((c, i) => html`<label><input type="radio" name="channel" value="${c}"${i === 0 ? html` checked` : ''}> ${methodName(c)}</label>`)}</fieldset>`
      : html`<input type="hidden" name="channel" value="${channels[0]!}">`
  }
  <button type="submit" class="secondary">Add phone</button>
</form>`;
}

function emailForm(v: Viewer): SafeHtml {
  return html`<form method="post" action="${base(v)}/email">
  ${csrfField(v.csrf)}
  <label for="email">Email address</label>
  <input type="email" id="email" name="to" autocomplete="email" maxlength="254" required>
  <button type="submit" class="secondary">Add email</button>
</form>`;
}

/** Setting up an authenticator app: the QR code and key, and the code that confirms it. */
export function totpSetupView(v: Viewer & { id: string; qrCodeSvg: string; secret: string; error?: string | undefined }): string {
  return page(
    v,
    'Add an authenticator app',
    html`<div class="card">
<h1>Add an authenticator app</h1>
${errorSummary(v.error)}
<ol>
<li>Open your authenticator app and add an account.</li>
<li>Scan this QR code, or type the key below.</li>
<li>Enter the 6-digit code the app shows.</li>
</ol>
<div class="qr" role="img" aria-label="QR code for your authenticator app">${trustedHtml(v.qrCodeSvg)}</div>
<p>Key: <code class="secret">${v.secret.replace(/(.{4})/g, '$1 ').trim()}</code></p>
<form method="post" action="${base(v)}/totp/${v.id}/confirm" novalidate>
  ${csrfField(v.csrf)}
  <label for="code">Code from the app</label>
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="6" autocomplete="one-time-code" required autofocus>
  <button type="submit">Confirm</button>
</form>
<p class="hint"><a href="${base(v)}">Cancel</a></p>
</div>`,
  );
}

/** The page where a code sent to a new phone number or email address is typed in. */
export function codeSetupView(v: Viewer & { id: string; channel: string; to: string; lifetimeMinutes: number; notice?: Notice | undefined }): string {
  const how = v.channel === 'voice' ? `We are calling ${v.to} and will read out a code.` : `We sent a code to ${v.to}.`;
  const title = v.channel === 'email' ? 'Confirm your email address' : 'Confirm your phone';
  return page(
    v,
    title,
    html`<div class="card">
<h1>${title}</h1>
${noticeView(v.notice)}
<p>${how} It expires in ${v.lifetimeMinutes} minutes.</p>
<form method="post" action="${base(v)}/codes/${v.id}/confirm" novalidate>
  ${csrfField(v.csrf)}
  <label for="code">Code</label>
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="one-time-code" required autofocus>
  <button type="submit">Confirm</button>
</form>
<form method="post" action="${base(v)}/codes/${v.id}/resend" class="inline">
  ${csrfField(v.csrf)}
  <button type="submit" class="secondary">Send a new code</button>
</form>
<p class="hint"><a href="${base(v)}">Cancel</a></p>
</div>`,
  );
}

/** A new set of recovery codes, shown once, to copy or download. */
export function recoveryCodesView(v: Viewer & { codes: string[] }): string {
  const text = `Recovery codes for ${v.username} at ${v.tenant.name}\n${v.codes.join('\n')}\n`;
  return page(
    v,
    'Your recovery codes',
    html`<div class="card">
<h1>Your recovery codes</h1>
${alert('info', 'Save these codes somewhere safe now. They will not be shown again, and any earlier codes no longer work.')}
<p>Each code signs you in once when you cannot use your other methods.</p>
<ol class="codes" id="recovery-codes">${v.codes.map((c) => html`<li>${c}</li>`)}</ol>
<p class="actions">
  <button type="button" class="secondary" data-copy="recovery-codes" hidden>Copy codes</button>
  <a class="button secondary" download="recovery-codes.txt" href="data:text/plain;charset=utf-8,${encodeURIComponent(text)}">Download codes</a>
</p>
<p><a class="button" href="${base(v)}">I have saved my codes</a></p>
</div>`,
    true,
  );
}

/** Pairing a phone: the QR code and the link that open the Steadfast Authenticator and pair it. */
export function pairingView(v: Viewer & { pairingUrl: string; qrCodeSvg: string; minutes: number }): string {
  return page(
    v,
    'Add the Steadfast Authenticator',
    html`<div class="card">
<h1>Add the Steadfast Authenticator</h1>
<ol>
<li>On your phone, scan this QR code with the camera, or open the link below in the phone's browser.</li>
<li>In the Steadfast Authenticator that opens, choose <strong>Pair this device</strong>. Add it to your home screen to keep it at hand.</li>
<li>Come back here: the app is listed among your sign-in methods.</li>
</ol>
<div class="qr" role="img" aria-label="QR code that opens the Steadfast Authenticator and pairs it">${trustedHtml(v.qrCodeSvg)}</div>
<p>Link: <a href="${v.pairingUrl}" data-pairing-link>${v.pairingUrl}</a></p>
<p class="hint">The link pairs one device, once, within ${v.minutes} minutes. Don't share it.</p>
<p><a class="button" href="${base(v)}">Done</a></p>
</div>`,
  );
}
