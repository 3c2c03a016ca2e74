/** The console's confirmation pages before an administrator resets a user's methods or disables their account. */
import { html } from '../../http/page/html.ts';
import { hiddenFields } from '../../http/page/parts/hidden-fields.ts';
import { methodName } from '../../methods/registry.ts';
import type { UserDetail } from '../administration.ts';
import { consoleBase, consolePage, type ConsoleViewer } from './console-layout.ts';

/** The actions that ask first: each undoes what the user set up or shuts them out. */
export type ConfirmedUserAction = 'reset-methods' | 'disable';

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * Says exactly what the action will do to this user (which methods go, how
 * many sessions end, what the user must do next), and only its button, which
 * posts the confirmation, does it. "Cancel" goes back to the user's page.
 */
export function confirmUserActionView(v: ConsoleViewer & { detail: UserDetail; action: ConfirmedUserAction; passesAllowed: boolean }): string {
  const u = v.detail.user;
  const userPage = `${consoleBase(v)}/users/${u.id}`;
  const active = v.detail.methods.filter((m) => m.state === 'active');
  const sessions = v.detail.sessions.length;
  const sessionsEnd =
    sessions === 0
      ? 'They have no active sessions.'
      : `${count(sessions, 'active session', 'active sessions')} ${sessions === 1 ? 'ends' : 'end'} now, in every browser and app.`;
  const title = v.action === 'reset-methods' ? `Reset the sign-in methods of ${u.username}?` : `Disable the account of ${u.username}?`;
  const button = v.action === 'reset-methods' ? `Reset methods of ${u.username}` : `Disable ${u.username}`;
  const what =
    v.action === 'reset-methods'
      ? html`<ul>
<li>${
          active.length === 0
            ? 'They have no sign-in methods to remove.'
            : html`These sign-in methods are removed: ${active.map((m, i) => html`${i > 0 ? ', ' : ''}${methodName(m.type)} “${m.label}”`)}.`
        }</li>
<li>${sessionsEnd}</li>
<li>They must register a method again. Their password no longer does that on its own (someone else may know it): they register with a Temporary Access Pass, or with a new password you set.</li>
</ul>`
      : html`<ul>
<li>They cannot sign in, with any method, until an administrator enables the account again.</li>
<li>${sessionsEnd}</li>
<li>Their sign-in methods and password are kept: enabling the account lets them sign in as before.</li>
</ul>`;
  return consolePage(
    v,
    'users',
    title,
    html`<h1>${title}</h1>
${what}
<form method="post" action="${userPage}/${v.action}" class="actions">
  ${hiddenFields(v.csrf, { confirm: 'yes' })}
  ${v.action === 'reset-methods' ? passChoice(v.detail, v.username, v.passesAllowed) : ''}
  <button type="submit" class="danger">${button}</button>
  <a class="button secondary" href="${userPage}">Cancel</a>
</form>`,
  );
}

/**
 * With a reset, a one-time pass for the user to register with, checked: the way back in the reset leaves them. Not
 * offered where the policy allows no passes, for one's own account (another administrator issues that) or a
 * disabled one (no pass until enabled).
 */
function passChoice(detail: UserDetail, viewer: string, passesAllowed: boolean) {
  const u = detail.user;
  if (!passesAllowed)
    return html`<p class="hint">This organisation's policy allows no Temporary Access Passes: set a new password for them after the reset.</p>`;
  if (u.username === viewer) return html`<p class="hint">Another administrator issues you a Temporary Access Pass to register again.</p>`;
  if (u.status !== 'active') return html`<p class="hint">The account is disabled: enable it, then issue a Temporary Access Pass.</p>`;
  return html`<p><label class="check"><input type="checkbox" name="pass" value="on" checked> Issue a one-time Temporary Access Pass for them to register with (shown next, once)</label></p>`;
}
