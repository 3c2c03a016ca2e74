import { html, type SafeHtml } from '../../http/page/html.ts';
import { alert } from '../../http/page/layout.ts';
import { csrfField } from '../../http/page/parts/hidden-fields.ts';
import { notice as noticeView } from '../../http/page/parts/error-summary.ts';
import { when } from '../../http/page/parts/when.ts';
import { describeUserAgent } from '../../http/page/user-agent.ts';
import { isoTime } from '../../http/api-schemas.ts';
import type { TenantPolicy } from '../../directory/policy.ts';
import { methodName } from '../../methods/registry.ts';
import type { IssuedPass, UserDetail } from '../administration.ts';
import { signinTable } from './parts/signin-table.ts';
import { consoleBase, consolePage, type ConsoleViewer, type Notice } from './console-layout.ts';

/** One user: their pass, methods, sessions, recent sign-ins and the actions on each. */
export function userDetailView(
  v: ConsoleViewer & {
    detail: UserDetail;
    tap: TenantPolicy['tap'];
    notice?: Notice | undefined;
    issued?: IssuedPass | undefined;
    /** The tenant's page for signing in with a pass, as a full address to pass on. */
    signinUrl: string;
  },
): string {
  const d = v.detail;
  const u = d.user;
  const { tap, issued } = v;
  const base = consoleBase(v);
  const hidden = csrfField(v.csrf);
  const action = (path: string, label: string, kind: 'secondary' | 'danger' = 'secondary') =>
    html`<form method="post" action="${base}/users/${u.id}/${path}" class="inline">${hidden}<button type="submit" class="${kind}">${label}</button></form>`;
  return consolePage(
    v,
    'users',
    u.username,
    html`<h1>${u.username}</h1>
${noticeView(v.notice)}
${issued ? issuedPass(u.username, issued, v.signinUrl) : ''}
<p>${u.email ?? 'No email'} · ${u.phone ?? 'no phone'} · account ${u.status}${u.isAdmin ? ' · administrator' : ''}${u.breakGlass ? ' · break-glass account' : ''}${d.hasPassword ? '' : ' · no password'}</p>
${u.flaggedAt ? alert('error', `This user reported a sign-in as not theirs (${new Date(u.flaggedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC).`) : ''}

<h2>${methodName('tap')}</h2>
${
  d.accessPass
    ? html`<p>Active: ${d.accessPass.oneTime ? 'one-time' : 'multi-use'}, used ${d.accessPass.uses} times, expires ${when(isoTime(d.accessPass.expiresAt))}. ${action('tap/revoke', 'Revoke pass', 'danger')}</p>
${d.accessPass.uses > 0 ? html`<p class="hint">It has been used: revoking it signs ${u.username} out everywhere and ends what those sign-ins gave (apps' tokens, admin tokens, remembered browsers). Methods and a password set up with it stay; if it reached someone else, reset the methods too.</p>` : ''}`
    : html`<p>None active.</p>`
}
<form method="post" action="${base}/users/${u.id}/tap" novalidate>
  ${hidden}
  <label for="tap-minutes">Valid for (minutes, ${tap.minMinutes} to ${tap.maxMinutes})</label>
  <input type="number" id="tap-minutes" name="minutes" min="${tap.minMinutes}" max="${tap.maxMinutes}" value="${tap.defaultMinutes}" required>
  <label class="check"><input type="checkbox" name="oneTime" value="on"${tap.oneTimeDefault ? html` checked` : ''}> Usable once</label>
  <button type="submit">${d.accessPass ? 'Issue a new pass (replaces the active one)' : 'Issue pass'}</button>
</form>

<h2>Methods</h2>
${
  d.methods.length === 0
    ? html`<p>No methods${u.mustRegister ? '; the user must register one at the next sign-in' : ''}.</p>`
    : html`<ul class="methods">${d.methods.map((m) => html`<li><span><strong>${methodName(m.type)}</strong>: ${m.label}${m.state === 'pending' ? ' (not confirmed)' : ''}${m.default ? ' (default)' : ''}<br><span class="hint">Added ${when(m.createdAt)}; last used ${when(m.lastUsedAt)}</span></span></li>`)}</ul>`
}
<p><a class="button danger" href="${base}/users/${u.id}/reset-methods">Reset methods</a> <span class="hint">Removes every method and ends every session; the user registers again at the next sign-in. A page says what happens first.</span></p>

<h2>Sessions</h2>
${
  d.sessions.length === 0
    ? html`<p>No active sessions.</p>`
    : html`<ul class="methods">${d.sessions.map((s) => html`<li><span>${describeUserAgent(s.userAgent)} · ${s.ip ?? ''}<br><span class="hint">Started ${when(isoTime(s.createdAt))}; last seen ${when(isoTime(s.lastSeenAt))}${s.scope === 'register' ? '; registration only' : ''}</span></span></li>`)}</ul>
<p>${action('revoke-sessions', 'End all sessions', 'danger')}</p>`
}

<h2>Recent sign-ins</h2>
${signinTable(d.recentSignins)}
<p><a href="${base}/signins?user=${encodeURIComponent(u.username)}">All sign-ins of ${u.username}</a> · <a href="${base}/audit?user=${u.id}">Audit entries</a></p>

<h2>Account</h2>
<p>${u.status === 'active' ? html`<a class="button danger" href="${base}/users/${u.id}/disable">Disable account</a>` : action('enable', 'Enable account')}</p>`,
  );
}

/**
 * A pass just issued, shown this once: in groups that wrap only between them
 * (the whole pass fits a phone), a copy button (the page script shows it where
 * the clipboard works), and the address where the new hire signs in with it.
 */
function issuedPass(username: string, issued: IssuedPass, signinUrl: string): SafeHtml {
  const groups = issued.code.split('-');
  return html`<div role="status" class="issued-pass"><p>Temporary Access Pass for ${username}, ${issued.oneTime ? 'usable once' : 'usable until it expires'}, valid until ${when(issued.expiresAt)}. It is shown only now: give it to the person over a channel you trust.</p>
<p class="pass-line"><code id="issued-pass" class="secret-once" aria-label="${methodName('tap')}" data-copy-text="${issued.code}">${groups.map((g, i) => html`<span class="group">${g}${i < groups.length - 1 ? '-' : ''}</span>${i < groups.length - 1 ? html`<wbr>` : ''}`)}</code>
<button type="button" class="secondary" data-copy="issued-pass" hidden>Copy the pass</button></p>
<p>Send them to <a href="${signinUrl}" class="signin-url">${signinUrl}</a> to sign in with their username and this pass. There they add a sign-in method of their own.</p></div>`;
}
