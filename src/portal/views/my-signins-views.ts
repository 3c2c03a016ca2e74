import { html, type SafeHtml } from '../../http/page/html.ts';
import { alert } from '../../http/page/layout.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import { csrfField, hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { errorSummary } from '../../http/page/parts/error-summary.ts';
import { when } from '../../http/page/parts/when.ts';
import { describeUserAgent } from '../../http/page/user-agent.ts';
import { describeMethod, methodName } from '../../methods/registry.ts';
import type { SigninEvent } from '../../activity/signin-events.ts';
import { signinReasonForUser } from '../../activity/signin-reasons.ts';
import type { Viewer } from './security-info-views.ts';
import { fieldError } from '../../http/page/parts/field-error.ts';

function how(step: string, method: string | null): string {
  if (step === 'password') return method === 'tap' ? methodName('tap') : 'Password';
  if (step === 'passkey') return 'Passkey, no password';
  return `Second step: ${method ? (describeMethod(method)?.noun ?? method) : 'unknown'}`;
}

const page = (v: Viewer, title: string, body: SafeHtml, scripts = false) =>
  signedInLayout({ title, tenant: v.tenant, username: v.username, csrf: v.csrf, body, scripts, admin: v.admin === true });

/** The user's recent sign-ins, newest first, each with "This wasn't me" except the one that is this session. */
export function signinsView(v: Viewer & { events: SigninEvent[]; next: string | null; thisSignin: Set<string> }): string {
  return page(
    v,
    'My sign-ins',
    html`<div class="card wide">
<h1>My sign-ins</h1>
<p class="hint">Your recent sign-in activity, newest first. If you don't recognise one, choose "This wasn't me".</p>
<div class="table-scroll">
<table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">Where from</th><th scope="col">How</th><th scope="col">Result</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${v.events.map((e) => {
      const at = new Date(e.at).toISOString();
      return html`<tr${v.thisSignin.has(e.id) ? html` class="current"` : ''}>
<td data-label="When">${when(at)}</td>
<td data-label="Where from">${e.ip ?? 'unknown address'}<br><span class="hint">${describeUserAgent(e.userAgent)}</span>${e.app ? html`<br><span class="hint">${e.app}</span>` : ''}</td>
<td data-label="How">${how(e.step, e.method)}</td>
<td data-label="Result" class="${e.outcome === 'success' ? 'good' : 'bad'}">${e.outcome === 'success' ? 'Succeeded' : 'Failed'}${signinReasonForUser(e.reason) !== '' ? html`<br><span class="hint">${signinReasonForUser(e.reason)}</span>` : ''}</td>
<td>${
        v.thisSignin.has(e.id)
          ? html`<strong class="you">This is you</strong><br><span class="hint">this browser, now</span>`
          : e.reportedAt
            ? html`<span class="hint">Reported</span>`
            : html`<a class="button danger small" href="/t/${v.tenant.slug}/my/signins/${e.id}/report">This wasn't me<span class="visually-hidden">: the sign-in at ${at.replace('T', ' ').slice(0, 16)} UTC from ${e.ip ?? 'an unknown address'}</span></a>`
      }</td>
</tr>`;
    })}</tbody>
</table>
</div>
<p>${v.next ? html`<a href="/t/${v.tenant.slug}/my/signins?cursor=${v.next}">Older sign-ins</a> · ` : ''}<a href="/t/${v.tenant.slug}/my/signins">Newest</a> · <a href="/t/${v.tenant.slug}/my/security-info">Security info</a></p>
</div>`,
    true,
  );
}

function passwordForm(
  v: Viewer & { minLength: number; hasPassword: boolean; error?: string | undefined; fieldErrors?: Record<string, string> | undefined },
): SafeHtml {
  const errors = v.fieldErrors ?? {};
  const current = fieldError('current-password', errors['current-password']);
  const next = fieldError('new-password', errors['new-password'], { hint: 'new-password-hint', first: !errors['current-password'] });
  return html`<form method="post" action="/t/${v.tenant.slug}/my/password" novalidate>
  ${csrfField(v.csrf)}
  ${errorSummary(v.error)}
  ${
    v.hasPassword
      ? html`<label for="current-password">Current password</label>
  <input type="password" id="current-password" name="currentPassword" autocomplete="current-password" required${current.attrs}>
  ${current.message}`
      : ''
  }
  <label for="new-password">${v.hasPassword ? 'New password' : 'Password'}</label>
  <input type="password" id="new-password" name="newPassword" autocomplete="new-password" minlength="${v.minLength}" required${next.attrs}>
  ${next.message}
  <p class="hint" id="new-password-hint">At least ${v.minLength} characters. A long passphrase is best.</p>
  <button type="submit">${v.hasPassword ? 'Change password' : 'Set password'}</button>
</form>`;
}

/** Before "This wasn't me": what reporting does. */
export function confirmReportView(v: Viewer & { id: string; error?: string | undefined; signInAgain: boolean }): string {
  return page(
    v,
    'Report a sign-in',
    html`<div class="card">
<h1>Report this sign-in as not you?</h1>
${errorSummary(v.error)}
${
  v.signInAgain
    ? html`<p>Reporting a sign-in signs you out everywhere else, so it needs a sign-in within the last 10 minutes.</p>
<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next: 'signins' })}<button type="submit">Sign in again</button></form>`
    : html`<p>When you report it, we will:</p>
<ul><li>sign you out everywhere else (this browser stays signed in),</li><li>remove the sign-in method it used and every one added since, in case they are in someone else's hands (you can add yours back),</li><li>tell your administrator,</li><li>ask you to change your password and check your sign-in methods.</li></ul>
<form method="post" action="/t/${v.tenant.slug}/my/signins/${v.id}/report" class="actions">
  ${csrfField(v.csrf)}
  <button type="submit" class="danger">Report it and sign out everywhere else</button>
  <a class="button secondary" href="/t/${v.tenant.slug}/my/signins">It was me, go back</a>
</form>`
}
</div>`,
  );
}

/** After "This wasn't me": what happened, and the two things to do now. */
export function reportedView(
  v: Viewer & {
    sessionsEnded: number | undefined;
    methodsRemoved: number;
    passRevoked: boolean;
    noMethodLeft: boolean;
    minLength: number;
    hasPassword: boolean;
  },
): string {
  const ended = v.sessionsEnded;
  const removed = v.methodsRemoved;
  return page(
    v,
    'Secure your account',
    html`<div class="card">
<h1>Secure your account</h1>
${
  ended === undefined
    ? ''
    : alert(
        'info',
        `Thanks for telling us. We signed you out everywhere else (${ended} other ${ended === 1 ? 'session' : 'sessions'}) and told your administrator.${
          removed > 0 ? ` We removed ${removed === 1 ? '1 sign-in method' : `${removed} sign-in methods`}: the one that sign-in used and any added since.` : ''
        }${v.passRevoked ? ' We revoked the Temporary Access Pass it signed in with: ask your administrator for a new one if you need it.' : ''}${v.noMethodLeft ? ' No sign-in method is left: change your password first, then add one. Until you do, your password alone cannot add one.' : ''}`,
      )
}
<h2>1. ${v.hasPassword ? 'Change your password' : 'Set a password'}</h2>
<p>${v.hasPassword ? "Someone may know it. Choose a new one you don't use anywhere else." : 'Choose one you do not use anywhere else.'}</p>
${passwordForm(v)}
<h2>2. Review your sign-in methods</h2>
<p>${removed > 0 ? 'Add back any of yours that went, and remove' : 'Remove'} any method you don't recognise.</p>
<p><a class="button secondary" href="/t/${v.tenant.slug}/my/security-info">Review my methods</a></p>
</div>`,
  );
}

/** Changing the password; or, for an account with none yet (a new hire after their pass), setting the first one. */
export function changePasswordView(
  v: Viewer & {
    minLength: number;
    hasPassword: boolean;
    error?: string | undefined;
    fieldErrors?: Record<string, string> | undefined;
    /** The last try was refused for a sign-in too long ago, or one without a second step: offer that sign-in. */
    signInAgain?: 'recent' | 'second-factor' | undefined;
  },
): string {
  const title = v.hasPassword ? 'Change your password' : 'Set a password';
  if (v.signInAgain) {
    const needs = v.signInAgain === 'recent' ? 'a sign-in within the last 10 minutes' : 'a sign-in with your second step (this browser skipped it)';
    // Back to security info after it; with the second step asked for, whatever this browser remembers.
    const next = v.signInAgain === 'recent' ? 'security-info' : 'security-info-mfa';
    return page(
      v,
      title,
      html`<div class="card"><h1>${title}</h1>
${errorSummary(v.error)}
<p>Changing your password needs ${needs}.</p>
<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next })}<button type="submit">Sign in again</button></form></div>`,
    );
  }
  return page(
    v,
    title,
    html`<div class="card"><h1>${title}</h1>${
      v.hasPassword
        ? ''
        : html`<p>Your account has no password yet. With one, you can sign in again after your Temporary Access Pass is used up: your username, this password, then your sign-in method.</p>`
    }${passwordForm(v)}<p class="hint"><a href="/t/${v.tenant.slug}/my/security-info">Back to security info</a></p></div>`,
  );
}
