import { html } from '../../http/page/html.ts';
import { csrfField } from '../../http/page/parts/hidden-fields.ts';
import { fieldError } from '../../http/page/parts/field-error.ts';
import { notice as noticeView } from '../../http/page/parts/error-summary.ts';
import type { User } from '../../directory/users.ts';
import { consoleBase, consolePage, type ConsoleViewer, type Notice } from './console-layout.ts';

/** What the users table says about an account besides its name and status. */
const notes = (u: User) =>
  [u.isAdmin ? 'administrator' : '', u.breakGlass ? 'break-glass' : '', u.flaggedAt ? 'reported a sign-in' : '', u.mustRegister ? 'must register' : '']
    .filter(Boolean)
    .join(', ');

/** The users of the tenant matching a search, and the form to add one. */
export function usersView(
  v: ConsoleViewer & {
    q: string;
    users: User[];
    notice?: Notice | undefined;
    /** What was typed into "Add a user" when it was refused, and the reason, shown at the username. */
    values?: Record<string, string> | undefined;
    addError?: string | undefined;
  },
): string {
  const base = consoleBase(v);
  const username = fieldError('new-username', v.addError);
  return consolePage(
    v,
    'users',
    'Users',
    html`<h1>Users</h1>
${noticeView(v.notice)}
<form method="get" action="${base}" role="search">
  <label for="q">Search users</label>
  <input type="search" id="q" name="q" value="${v.q}" placeholder="Username or email">
  <button type="submit" class="secondary">Search</button>
</form>
<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">Username</th><th scope="col">Email address</th><th scope="col">Status</th><th scope="col">Notes</th></tr></thead>
<tbody>${v.users.map(
      (
        u,
      ) => html`<tr><td data-label="Username"><a href="${base}/users/${u.id}">${u.username}</a></td><td data-label="Email address">${u.email ?? ''}</td><td data-label="Status">${u.status}</td>
<td data-label="Notes">${notes(u)}</td></tr>`,
    )}</tbody></table></div>
${v.users.length === 0 ? html`<p>No users match.</p>` : ''}
<h2>Add a user</h2>
<form method="post" action="${base}/users" novalidate>
  ${csrfField(v.csrf)}
  <label for="new-username">Username</label>
  ${username.message}<input type="text" id="new-username" name="username" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="256" required value="${v.values?.username ?? ''}"${username.attrs}>
  <label for="new-email">Email (optional)</label>
  <input type="email" id="new-email" name="email" autocomplete="off" maxlength="320" value="${v.values?.email ?? ''}">
  <p class="hint">New users have no password. Give them a Temporary Access Pass from their page to sign in and set up their methods.</p>
  <button type="submit">Add user</button>
</form>`,
  );
}
