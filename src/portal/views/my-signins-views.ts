import { html, type SafeHtml } from '../../http/page/html.ts';
import { alert } from '../../http/page/layout.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import { csrfField, hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { errorSummary } from '../../http/page/parts/error-summary.ts';
import { when } from '../../http/page/parts/when.ts';
import { describeUserAgent } from '../../http/page/user-agent.ts';
import { describeMethod, methodName } from '../../methods/registry.ts';
import type { SigninEvent } from '../../activity/signin-events.ts';
import { reasonText } from '../../activity/signin-event.ts';
import type { Viewer } from './security-info-views.ts';

function how(step: string, method: string | null): string {
  if (step === 'password') return method === 'tap' ? methodName('tap') : 'Password';
  if (step === 'passkey') return 'Passkey, no password';
  return `Second step: ${method ? (describeMethod(method)?.noun ?? method) : 'unknown'}`;
}

const page = (v: Viewer, title: string, body: SafeHtml, scripts = false) => signedInLayout({ title, tenant: v.tenant, username: v.username, csrf: v.csrf, body, scripts });

/** The user's recent sign-ins, newest first, each with "This wasn't me". */
export function signinsView(v: Viewer & { events: SigninEvent[]; next: string | null }): string {
  return page(
    v,
    'My sign-ins',
    html`<div class="card wide">
<h1>My sign-ins</h1>
<p class="hint">Your recent sign-in activity, newest first. If you don't recognise one, choose "This wasn't me".</p>
<div class="table-scroll">
<table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">Where from</th><th scope="col">How</th><th scope="col">Result</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${v.events.map(
      (e) => html`<tr>
<td data-label="When">${when(new Date(e.at).toISOString())}</td>
<td data-label="Where from">${e.ip ?? 'unknown address'}<br><span class="hint">${describeUserAgent(e.userAgent)}</span>${e.app ? html`<br><span class="hint">${e.app}</span>` : ''}</td>
<td data-label="How">${how(e.step, e.method)}</td>
<td data-label="Result" class="${e.outcome === 'success' ? 'good' : 'bad'}">${e.outcome === 'success' ? 'Succeeded' : 'Failed'}${reasonText(e.reason) !== '' ? html`<br><span class="hint">${reasonText(e.reason)}</span>` : ''}</td>
<td>${
        e.reportedAt
          ? html`<span class="hint">Reported</span>`
          : html`<form method="post" action="/t/${v.tenant.slug}/my/signins/${e.id}/report" class="inline">${csrfField(v.csrf)}<button type="submit" class="danger small">This wasn't me</button></form>`
      }</td>
</tr>`,
    )}</tbody>
</table>
</div>
<p>${v.next ? html`<a href="/t/${v.tenant.slug}/my/signins?cursor=${v.next}">Older sign-ins</a> · ` : ''}<a href="/t/${v.tenant.slug}/my/signins">Newest</a> · <a href="/t/${v.tenant.slug}/my/security-info">Security info</a></p>
</div>`,
    true,
  );
}

function passwordForm(v: Viewer & { minLength: number; error?: string | undefined }): SafeHtml {
  return html`<form method="post" action="/t/${v.tenant.slug}/my/password" novalidate>
  ${csrfField(v.csrf)}
  ${errorSummary(v.error)}
  <label for="current-password">Current password</label>
  <input type="password" id="current-password" name="currentPassword" autocomplete="current-password" required>
  <label for="new-password">New password</label>
  <input type="password" id="new-password" name="newPassword" autocomplete="new-password" minlength="${v.minLength}" required aria-describedby="new-password-hint">
  <p class="hint" id="new-password-hint">At least ${v.minLength} characters. A long passphrase is best.</p>
  <button type="submit">Change password</button>
</form>`;
}

/** After "This wasn't me": what happened, and the two things to do now. */
export function reportedView(v: Viewer & { sessionsEnded: number; minLength: number }): string {
  const ended = v.sessionsEnded;
  return page(
    v,
    'Secure your account',
    html`<div class="card">
<h1>Secure your account</h1>
${alert('info', `Thanks for telling us. We signed you out everywhere else (${ended} other ${ended === 1 ? 'session' : 'sessions'}) and told your administrator.`)}
<h2>1. Change your password</h2>
<p>Someone may know it. Choose a new one you don't use anywhere else.</p>
${passwordForm(v)}
<h2>2. Review your sign-in methods</h2>
<p>Remove any method you don't recognise.</p>
<p><a class="button secondary" href="/t/${v.tenant.slug}/my/security-info">Review my methods</a></p>
</div>`,
  );
}

/** A report that could not be made; with a way to sign in again when it needs a recent sign-in. */
export function reportRefusedView(v: Viewer & { text: string; signInAgain: boolean }): string {
  return page(
    v,
    'Report a sign-in',
    html`<div class="card"><h1>Report a sign-in</h1>${errorSummary(v.text)}${
      v.signInAgain
        ? html`<p>Reporting a sign-in signs you out everywhere else, so it needs a sign-in within the last 10 minutes.</p>
<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next: 'signins' })}<button type="submit">Sign in again</button></form>`
        : html`<p><a href="/t/${v.tenant.slug}/my/signins">Back to my sign-ins</a></p>`
    }</div>`,
  );
}

export function changePasswordView(v: Viewer & { minLength: number; error?: string | undefined }): string {
  return page(v, 'Change your password', html`<div class="card"><h1>Change your password</h1>${passwordForm(v)}</div>`);
}

export function passwordChangedView(v: Viewer): string {
  return page(
    v,
    'Password changed',
    html`<div class="card"><h1>Password changed</h1>${alert('info', 'Your password was changed and your other sessions were ended.')}<p><a href="/t/${v.tenant.slug}/my/security-info">Back to security info</a></p></div>`,
  );
}
