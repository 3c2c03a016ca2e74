/** The sign-in pages as views: password, second factor, passkey, pass, and where the sign-in ends. */
import { html, jsonScript, type SafeHtml } from '../../http/page/html.ts';
import { layout } from '../../http/page/layout.ts';
import type { NextPage } from '../../http/page/landing.ts';
import { describeMethod, methodName } from '../../methods/registry.ts';
import type { FactorPrompt } from '../../signin/next-step.ts';
import { csrfField, hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { errorSummary, notice } from '../../http/page/parts/error-summary.ts';
import { otherMethods } from './parts/method-list.ts';
import { lostPhone } from './parts/lost-phone.ts';

/** The tenant as the sign-in pages show it. */
export interface PageTenant {
  slug: string;
  name: string;
}

/** Username and password; a passkey alone where the tenant allows passkeys. Only WebAuthn needs JavaScript. */
export function passwordView(v: {
  tenant: PageTenant;
  csrf: string;
  username: string;
  next: NextPage | undefined;
  error?: string | undefined;
  passkeys: boolean;
}): string {
  const { tenant, csrf, username, next } = v;
  return layout({
    title: 'Sign in',
    tenantName: tenant.name,
    scripts: v.passkeys,
    body: html`<div class="card">
<h1>Sign in</h1>
${errorSummary(v.error)}
<form method="post" action="/t/${tenant.slug}/signin" novalidate>
  ${hiddenFields(csrf, { next })}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" required value="${username}" ${username ? '' : 'autofocus'}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
<p class="hint"><a href="/t/${tenant.slug}/signin/tap${next ? `?next=${next}` : ''}">Sign in with a Temporary Access Pass</a></p>
${
  v.passkeys
    ? html`<form method="post" action="/t/${tenant.slug}/signin/passkey" data-webauthn="passkey" data-options-url="/api/v1/t/${tenant.slug}/signin/passkey" class="passkey">
  ${hiddenFields(csrf, { next, flow: '', assertion: '' })}
  <p class="or">or</p>
  <button type="submit" class="secondary" data-webauthn-only disabled>Sign in with a passkey</button>
  <p class="hint" data-webauthn-missing>Passkey sign-in needs JavaScript and a browser that supports passkeys.</p>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>`
    : ''
}
</div>`,
  });
}

/** Signing in with a Temporary Access Pass in place of the password (a new hire, or someone who lost every method). */
export function tapView(v: { tenant: PageTenant; csrf: string; username: string; next: NextPage | undefined; error?: string | undefined }): string {
  const { tenant, username } = v;
  return layout({
    title: 'Sign in with a Temporary Access Pass',
    tenantName: tenant.name,
    body: html`<div class="card">
<h1>Sign in with a Temporary Access Pass</h1>
${errorSummary(v.error)}
<p>Your administrator gives you a pass when you are new or have lost your sign-in methods. It works for a limited time.</p>
<form method="post" action="/t/${tenant.slug}/signin/tap" novalidate>
  ${hiddenFields(v.csrf, { next: v.next })}
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${username}" ${username ? '' : 'autofocus'}>
  <label for="tap">${methodName('tap')}</label>
  <input type="text" id="tap" name="tap" class="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="32" required ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
<p class="hint"><a href="/t/${tenant.slug}/signin">Sign in with your password instead</a></p>
</div>`,
  });
}

/** Where a code went, in words. */
function sentTo(delivery: FactorPrompt['challenge']['delivery']): string | undefined {
  if (!delivery?.to) return undefined;
  if (delivery.channel === 'voice') return `We are calling ${delivery.to} to read out a code.`;
  return `We sent a code to ${delivery.to}.`;
}

/** The second step for the chosen method, with the other ways to sign in below. */
export function factorView(v: {
  tenant: PageTenant;
  csrf: string;
  prompt: FactorPrompt;
  next: NextPage | undefined;
  error?: string | undefined;
  rememberDays: number;
  /** "Don't ask again" was ticked in the post before (a wrong code): it stays ticked. */
  remembered?: boolean;
}): string {
  const { tenant, csrf, prompt } = v;
  const { chosen } = prompt;
  const method = describeMethod(chosen.type);
  const ask: NonNullable<typeof method>['signin'] = method?.signin ?? { prompt: 'Enter your code.', input: 'text' };
  const context = { flow: prompt.flow, next: v.next };
  // A method whose credentials all do (passkeys, paired devices) is offered once, by its type.
  const others = prompt.methods.filter((m) => (ask.anyCredential ? m.type !== chosen.type : m.id !== chosen.id));
  const methodRef = ask.anyCredential ? chosen.type : chosen.id;
  const delivered = sentTo(prompt.challenge.delivery);
  // A pass proves the administrator's trust for now, not this browser's for days.
  const remember =
    v.rememberDays > 0 && chosen.type !== 'tap'
      ? html`<label class="check"><input type="checkbox" name="remember" value="on"${v.remembered ? html` checked` : ''}> Don't ask again on this browser for ${v.rememberDays} ${v.rememberDays === 1 ? 'day' : 'days'}</label>`
      : '';
  const codeLabel = method?.signin.codeLabel ?? `${method?.name ?? chosen.label} code`;
  return layout({
    title: 'Verify it is you',
    tenantName: tenant.name,
    scripts: ask.input === 'webauthn' || ask.input === 'approval',
    body: html`<div class="card">
<h1>Verify it's you</h1>
${v.error ? errorSummary(v.error) : notice(prompt.notice)}
${
  ask.input === 'webauthn'
    ? html`${jsonScript('webauthn-options', prompt.challenge.webauthn)}
<form method="post" action="/t/${tenant.slug}/signin/verify" data-webauthn="authenticate" data-options-id="webauthn-options">
  ${hiddenFields(csrf, { ...context, method: methodRef, assertion: '' })}
  <p>${ask.prompt}</p>
  ${remember}
  <button type="submit" data-webauthn-only disabled autofocus>Use passkey or security key</button>
  <p class="hint" data-webauthn-missing>This needs JavaScript and a browser that supports security keys. Choose another way below.</p>
  <p class="alert error" role="alert" data-webauthn-error hidden></p>
</form>`
    : ask.input === 'approval'
      ? approvalForms({ tenant, csrf, context, methodRef, prompt: ask.prompt, push: prompt.challenge.push, remember, name: method?.name ?? chosen.label })
      : html`<form method="post" action="/t/${tenant.slug}/signin/verify" novalidate>
  ${hiddenFields(csrf, { ...context, method: chosen.id })}
  ${delivered ? html`<p role="status">${delivered}</p>` : ''}
  <p>${ask.prompt}</p>
  <label for="code">${codeLabel}</label>
  <input type="text" id="code" name="code" class="code" required autofocus autocomplete="one-time-code" inputmode="${ask.input}" ${ask.input === 'numeric' ? html`pattern="[0-9]*" maxlength="${ask.maxLength ?? 8}"` : html`maxlength="${ask.maxLength ?? 32}" autocapitalize="characters" spellcheck="false"`}>
  ${remember}
  <button type="submit">Verify</button>
</form>
${
  method?.outOfBand
    ? html`<form method="post" action="/t/${tenant.slug}/signin/method" class="inline">
  ${hiddenFields(csrf, { ...context, method: chosen.id })}
  <button type="submit" class="secondary">Send a new code</button>
</form>`
    : ''
}`
}
${otherMethods({ action: `/t/${tenant.slug}/signin/method`, csrf, context, methods: others })}
${lostPhone({ tenant, csrf, context, methods: prompt.methods, chosenType: chosen.type })}
<p class="hint"><a href="/t/${tenant.slug}/signin">Start again</a></p>
</div>`,
  });
}

/**
 * Waiting for an approval on the user's device: the number to type there, a
 * page that moves on by itself once it is answered (the page script watches
 * the request), and without JavaScript a button that says "I approved it".
 * With no request out (a failed try, a fatigue limit), a way to send a new one.
 */
function approvalForms(v: {
  tenant: PageTenant;
  csrf: string;
  context: { flow: string; next: NextPage | undefined };
  methodRef: string;
  prompt: string;
  push: FactorPrompt['challenge']['push'];
  remember: SafeHtml | string;
  name: string;
}): SafeHtml {
  const { tenant, csrf, context } = v;
  if (!v.push) {
    return html`<p>No request is waiting on your device.</p>
<form method="post" action="/t/${tenant.slug}/signin/method">
  ${hiddenFields(csrf, { ...context, method: v.methodRef })}
  <button type="submit">Send a new request to ${v.name}</button>
</form>`;
  }
  return html`<form method="post" action="/t/${tenant.slug}/signin/verify" data-push-status="/api/v1/t/${tenant.slug}/signin/${context.flow}/status" novalidate>
  ${hiddenFields(csrf, { ...context, method: v.methodRef })}
  <p>${v.prompt}</p>
  <p class="push-number" aria-label="Number to enter on your device">${v.push.number}</p>
  <p class="hint" role="status" data-push-state>Waiting for your approval. The request expires in 60 seconds.</p>
  ${v.remember}
  <button type="submit" class="secondary">I approved it</button>
</form>`;
}

/** None of the user's methods can be used now: say so plainly, and what to do. */
export function noWayInView(v: { tenant: PageTenant; why: string }): string {
  return layout({
    title: 'Sign-in unavailable',
    tenantName: v.tenant.name,
    body: html`<div class="card">
<h1>We can't verify you right now</h1>
${errorSummary(`${v.why} None of your other sign-in methods can be used at the moment either.`)}
<p>Try again in a few minutes. If you need to sign in now, ask your administrator for a Temporary Access Pass.</p>
<p class="hint"><a href="/t/${v.tenant.slug}/signin">Start again</a></p>
</div>`,
  });
}

/**
 * Back to an app: its callback is on another origin, and a redirect chain that
 * starts at a form post is held to the page's form-action, so the page moves
 * on by itself instead (a fresh navigation).
 */
export function signingInView(v: { tenant: PageTenant; to: string }): string {
  return layout({
    title: 'Signing you in',
    tenantName: v.tenant.name,
    head: html`<meta http-equiv="refresh" content="0;url=${v.to}">`,
    body: html`<div class="card"><h1>Signing you in…</h1><p><a href="${v.to}">Continue to the app</a></p></div>`,
  });
}

export { csrfField };
