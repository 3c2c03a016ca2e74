import { html, trustedHtml, type SafeHtml } from '../../http/page/html.ts';
import { alert } from '../../http/page/layout.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import { csrfField, hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { errorSummary, notice as noticeView } from '../../http/page/parts/error-summary.ts';
import { describeMethod, methodName, type MethodType } from '../../methods/registry.ts';
import type { MethodView } from '../../methods/method-management.ts';
import { when } from '../../http/page/parts/when.ts';
import { fieldError } from '../../http/page/parts/field-error.ts';

export interface Viewer {
  tenant: { slug: string; name: string };
  username: string;
  csrf: string;
  // An administrator of the tenant: their pages link to the console.
  admin?: boolean | undefined;
}

export type Notice = { kind: 'error' | 'info'; text: string };

const base = (v: Viewer) => `/t/${v.tenant.slug}/my/security-info`;

const page = (v: Viewer, title: string, body: SafeHtml, scripts = false) =>
  signedInLayout({ title, tenant: v.tenant, username: v.username, csrf: v.csrf, body, scripts, admin: v.admin === true });

/** The security-info overview: the user's methods, and the forms to add the ones they may add now. */
export function overviewView(
  v: Viewer & {
    notice?: Notice | undefined;
    /** What was typed into a form whose post failed, by field id. */
    values?: Record<string, string> | undefined;
    /** The reason at each field in error, by field id. */
    fieldErrors?: Record<string, string> | undefined;
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
    /** The account has a password (otherwise the page walks a new hire to a way back in). */
    hasPassword: boolean;
    /** This sign-in used a Temporary Access Pass. */
    signedInWithPass: boolean;
  },
): string {
  const byForm = (form: string) => v.addable.filter((t) => describeMethod(t)?.enrolment?.form === form);
  const phoneChannels = byForm('phone');
  const hasCodes = v.methods.some((m) => m.type === 'recovery-codes');
  const forms = { values: v.values ?? {}, errors: v.fieldErrors ?? {} };
  return page(
    v,
    'Security info',
    html`<div class="card">
<h1>Security info</h1>
${noticeView(v.notice)}
${v.registering ? alert('info', 'Your organisation requires a second sign-in method. Add one to finish signing in.') : ''}
${!v.registering && v.continueTo ? html`<p class="alert info" role="status">Your sign-in method is set up. <a href="${v.continueTo}">Continue to the app</a></p>` : ''}
${v.hasPassword ? '' : firstDay(v)}
${
  v.canChange
    ? ''
    : html`<div class="alert info" role="status"><p>To change your sign-in methods, confirm it's you by signing in again${v.needsSecondFactor ? ' with one of your methods' : ''}.</p>
<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next: v.needsSecondFactor ? 'security-info-mfa' : 'security-info' })}<button type="submit">Sign in again</button></form></div>`
}
<h2>Your sign-in methods</h2>
${v.methods.length === 0 ? html`<p>You have no sign-in methods yet.</p>` : html`<ul class="methods">${v.methods.map((m) => methodRow(v, m, v.canChange && !v.registering, forms))}</ul>`}
${
  v.canChange
    ? html`<h2>Add a method</h2>
${byForm('webauthn').length > 0 ? webauthnForms(v) : ''}
${byForm('pair').length > 0 ? pairForm(v) : ''}
${byForm('totp').length > 0 ? totpForm(v, forms) : ''}
${phoneChannels.length > 0 ? phoneForm(v, phoneChannels, forms) : ''}
${byForm('email').length > 0 ? emailForm(v, forms) : ''}
${
  byForm('generate').length > 0
    ? hasCodes
      ? html`<p><a class="button secondary" href="${base(v)}/recovery-codes/replace">Replace recovery codes</a></p>`
      : html`<form method="post" action="${base(v)}/recovery-codes">${csrfField(v.csrf)}<button type="submit" class="secondary">Create recovery codes</button></form>`
    : ''
}`
    : ''
}
${
  v.registering
    ? ''
    : html`<p><a href="/t/${v.tenant.slug}/my/signins">See your recent sign-ins</a> · <a href="/t/${v.tenant.slug}/my/password">${v.hasPassword ? 'Change your password' : 'Set a password'}</a></p>`
}
</div>`,
    true,
  );
}

/**
 * A new hire (no password yet) is walked through the first day: the pass gets
 * them in once, a method of their own comes next, and before they leave, a way
 * back in (a password, or a passkey that signs in alone), since the pass is
 * used up.
 */
function firstDay(v: Viewer & { registering: boolean; methods: MethodView[]; signedInWithPass: boolean }): SafeHtml {
  const hasMethod = v.methods.length > 0;
  const wayBackIn = v.methods.some((m) => m.signsInAlone === true);
  const step = (done: boolean, text: SafeHtml | string) =>
    html`<li class="${done ? 'done' : 'todo'}"><span class="visually-hidden">${done ? 'Done: ' : 'To do: '}</span>${text}</li>`;
  const current = !hasMethod ? 2 : wayBackIn ? 0 : 3;
  return html`<section class="first-day" aria-labelledby="first-day-title">
<h2 id="first-day-title">${current === 0 ? 'You are all set' : `Step ${current} of 3: ${current === 2 ? 'add a sign-in method' : 'a way back in'}`}</h2>
<ol class="steps">
${step(true, v.signedInWithPass ? 'Sign in with your Temporary Access Pass' : 'Sign in')}
${step(hasMethod, 'Add a sign-in method of your own: an authenticator app, a passkey or a security key')}
${step(wayBackIn, html`Choose how you will sign in next time: <a href="/t/${v.tenant.slug}/my/password">set a password</a> (then sign in with it and your method), or add a passkey, which signs you in on its own`)}
</ol>
${
  current === 3
    ? html`<p class="alert info" role="status">${v.signedInWithPass ? 'Your pass works only for this sign-in. ' : ''}Before you leave, <a href="/t/${v.tenant.slug}/my/password">set a password</a> or add a passkey, or you will not be able to sign in again.</p>`
    : ''
}
</section>`;
}

type FormState = { values: Record<string, string>; errors: Record<string, string> };

function methodRow(v: Viewer, m: MethodView, editable: boolean, forms: FormState): SafeHtml {
  // Buttons repeat on every row: their names say which method they act on.
  const which = `${methodName(m.type)} “${m.label}”`;
  const renameId = `rename-${m.id}`;
  const rename = fieldError(renameId, forms.errors[renameId]);
  return html`<li>
<span><strong>${methodName(m.type)}</strong>: ${m.label}${m.default ? html` <em>(default)</em>` : ''}<br>
<span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}${m.remaining !== undefined ? html`; ${m.remaining} ${m.remaining === 1 ? 'code' : 'codes'} left` : ''}</span></span>
${
  editable
    ? html`<span class="actions">
<form method="post" action="${base(v)}/methods/${m.id}/rename" class="inline rename">
  ${csrfField(v.csrf)}
  <label class="visually-hidden" for="${renameId}">New name for ${which}</label>
  <input type="text" id="${renameId}" name="label" maxlength="100" value="${forms.values[renameId] ?? m.label}" required${rename.attrs}>
  <button type="submit" class="secondary" aria-label="Rename ${which}">Rename</button>
  ${rename.message}
</form>
${
  !m.default && m.type !== 'recovery-codes'
    ? html`<form method="post" action="${base(v)}/methods/${m.id}/default" class="inline">${csrfField(v.csrf)}<button type="submit" class="secondary" aria-label="Make ${which} the default method">Make default</button></form>`
    : ''
}
<a class="button danger" href="${base(v)}/methods/${m.id}/remove" aria-label="Remove ${which}">Remove</a>
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

function totpForm(v: Viewer, forms: FormState): SafeHtml {
  return html`<form method="post" action="${base(v)}/totp">
  ${csrfField(v.csrf)}
  <label for="totp-label">Name for the authenticator app (optional)</label>
  <input type="text" id="totp-label" name="label" maxlength="100" placeholder="My phone" value="${forms.values['totp-label'] ?? ''}">
  <button type="submit" class="secondary">Add authenticator app</button>
</form>`;
}

function phoneForm(v: Viewer, channels: MethodType[], forms: FormState): SafeHtml {
  const field = fieldError('phone', forms.errors.phone, { hint: 'phone-hint' });
  const chosen = forms.values.channel && channels.includes(forms.values.channel as MethodType) ? forms.values.channel : channels[0];
  return html`<form method="post" action="${base(v)}/phone" novalidate>
  ${csrfField(v.csrf)}
  <label for="phone">Phone number, with country code</label>
  <p class="hint" id="phone-hint">For example +44 7700 900123.</p>
  <input type="tel" id="phone" name="to" autocomplete="tel" inputmode="tel" maxlength="32" required value="${forms.values.phone ?? ''}"${field.attrs}>
  ${field.message}
  ${
    channels.length > 1
      ? html`<fieldset class="choices"><legend>Get codes by</legend>
  ${channels.map((c) => html`<label><input type="radio" name="channel" value="${c}"${c === chosen ? html` checked` : ''}> ${methodName(c)}</label>`)}</fieldset>`
      : html`<input type="hidden" name="channel" value="${channels[0]!}">`
  }
  <button type="submit" class="secondary">Add phone</button>
</form>`;
}

function emailForm(v: Viewer, forms: FormState): SafeHtml {
  const field = fieldError('email', forms.errors.email, { first: !forms.errors.phone });
  return html`<form method="post" action="${base(v)}/email" novalidate>
  ${csrfField(v.csrf)}
  <label for="email">Email address</label>
  <input type="email" id="email" name="to" autocomplete="email" maxlength="254" required value="${forms.values.email ?? ''}"${field.attrs}>
  ${field.message}
  <button type="submit" class="secondary">Add email</button>
</form>`;
}

/** The key in groups of four that never break inside a group (a phone wraps between groups only). */
const groupedKey = (secret: string): SafeHtml =>
  html`${(secret.match(/.{1,4}/g) ?? []).map((g, i) => html`${i > 0 ? ' ' : ''}<span class="group">${g}</span>`)}`;

/** Setting up an authenticator app: the QR code, a link for an app on this phone, the key to copy, and the code that confirms it. */
export function totpSetupView(
  v: Viewer & { id: string; qrCodeSvg: string; secret: string; otpauthUri: string; error?: string | undefined; code?: string | undefined },
): string {
  const field = fieldError('code', v.error);
  return page(
    v,
    'Add an authenticator app',
    html`<div class="card">
<h1>Add an authenticator app</h1>
${errorSummary(v.error)}
<ol>
<li>Open your authenticator app and add an account.</li>
<li>Scan this QR code, or on this phone open the app with the link below, or type the key.</li>
<li>Enter the 6-digit code the app shows.</li>
</ol>
<div class="qr" role="img" aria-label="QR code for your authenticator app">${trustedHtml(v.qrCodeSvg)}</div>
<p><a class="button secondary" href="${v.otpauthUri}">Open in your authenticator app</a>
<a class="button secondary" href="/t/${v.tenant.slug}/authenticator#otpauth=${encodeURIComponent(v.otpauthUri)}">Add to Steadfast Authenticator</a></p>
<p>Key: <code class="secret" id="totp-key" data-copy-text="${v.secret}">${groupedKey(v.secret)}</code></p>
<p><button type="button" class="secondary" data-copy="totp-key" hidden>Copy key</button></p>
<form method="post" action="${base(v)}/totp/${v.id}/confirm" novalidate>
  ${csrfField(v.csrf)}
  <label for="code">Code from the app</label>
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="6" autocomplete="one-time-code" required value="${v.code ?? ''}"${field.attrs}${v.error ? '' : html` autofocus`}>
  ${field.message}
  <button type="submit">Confirm</button>
</form>
<p class="hint"><a href="${base(v)}">Cancel</a></p>
</div>`,
    true,
  );
}

/** The page where a code sent to a new phone number or email address is typed in. */
export function codeSetupView(
  v: Viewer & { id: string; channel: string; to: string; lifetimeMinutes: number; notice?: Notice | undefined; code?: string | undefined },
): string {
  const how = v.channel === 'voice' ? `We are calling ${v.to} and will read out a code.` : `We sent a code to ${v.to}.`;
  const title = v.channel === 'email' ? 'Confirm your email address' : 'Confirm your phone';
  const error = v.notice?.kind === 'error' ? v.notice.text : undefined;
  const field = fieldError('code', error);
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
  <input type="text" id="code" name="code" class="code" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="one-time-code" required value="${v.code ?? ''}"${field.attrs}${error ? '' : html` autofocus`}>
  ${field.message}
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

/** New recovery codes, to copy or download; or, once the user has moved on, a page that says they are not shown again. */
export function recoveryCodesView(v: Viewer & { codes: string[] | undefined }): string {
  if (!v.codes) {
    return page(
      v,
      'Your recovery codes',
      html`<div class="card">
<h1>Your recovery codes</h1>
<p>Recovery codes are shown only once, when they are made. If you did not save them, replace them: the old ones stop working.</p>
<p class="actions"><a class="button secondary" href="${base(v)}/recovery-codes/replace">Replace recovery codes</a> <a class="button" href="${base(v)}">Back to security info</a></p>
</div>`,
    );
  }
  const text = `Recovery codes for ${v.username} at ${v.tenant.name}\n${v.codes.join('\n')}\n`;
  return page(
    v,
    'Your recovery codes',
    html`<div class="card">
<h1>Your recovery codes</h1>
${alert('info', 'Save these codes somewhere safe now. They will not be shown again once you leave this page, and any earlier codes no longer work.')}
<p>Each code signs you in once when you cannot use your other methods.</p>
<ol class="codes" id="recovery-codes">${v.codes.map((c) => html`<li>${c}</li>`)}</ol>
<p class="actions">
  <button type="button" class="secondary" data-copy="recovery-codes" hidden>Copy codes</button>
  <a class="button secondary" download="recovery-codes.txt" href="data:text/plain;charset=utf-8,${encodeURIComponent(text)}">Download codes</a>
</p>
<p><a class="button" href="${base(v)}?saved=codes">I have saved my codes</a></p>
</div>`,
    true,
  );
}

/** Before replacing recovery codes: what it does to the old ones. */
export function confirmReplaceCodesView(v: Viewer & { remaining: number }): string {
  return page(
    v,
    'Replace your recovery codes?',
    html`<div class="card">
<h1>Replace your recovery codes?</h1>
<p>You will get 10 new codes. Your ${v.remaining} unused ${v.remaining === 1 ? 'code stops' : 'codes stop'} working at once, including any you printed or saved.</p>
<form method="post" action="${base(v)}/recovery-codes" class="actions">
  ${hiddenFields(v.csrf, { confirm: 'yes' })}
  <button type="submit" class="danger">Replace my recovery codes</button>
  <a class="button secondary" href="${base(v)}">Keep my current codes</a>
</form>
</div>`,
  );
}

/** Before removing a method: what it means, and what is left to sign in with. */
export function confirmRemoveView(v: Viewer & { method: MethodView; others: MethodView[] }): string {
  const which = `${methodName(v.method.type)} “${v.method.label}”`;
  return page(
    v,
    `Remove ${methodName(v.method.type)}?`,
    html`<div class="card">
<h1>Remove ${which}?</h1>
<p>You will no longer be able to sign in with it. ${
      v.others.length > 0
        ? html`You will still have: ${v.others.map((m, i) => html`${i > 0 ? ', ' : ''}${methodName(m.type)} “${m.label}”`)}.`
        : 'It is your only sign-in method: if your organisation requires one, you will be asked to add another at your next sign-in.'
    }</p>
<form method="post" action="${base(v)}/methods/${v.method.id}/delete" class="actions">
  ${hiddenFields(v.csrf, { confirm: 'yes' })}
  <button type="submit" class="danger">Remove ${which}</button>
  <a class="button secondary" href="${base(v)}">Keep it</a>
</form>
</div>`,
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
<p><a class="button" href="${base(v)}?saved=pairing">Done</a></p>
</div>`,
  );
}
