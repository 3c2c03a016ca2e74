import { html } from '../../http/page/html.ts';
import { errorSummary } from '../../http/page/parts/error-summary.ts';
import { METHOD_TYPES, methodName } from '../../methods/registry.ts';
import type { AdminSigninEvent } from '../../activity/signin-events.ts';
import { signinTable } from './parts/signin-table.ts';
import { consoleBase, consolePage, type ConsoleViewer } from './console-layout.ts';

/** The sign-in log's filters as typed in its form (and carried in its links). */
export interface SigninLogQuery {
  user?: string | undefined;
  outcome?: string | undefined;
  method?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

/** The query string that repeats a filter (for the CSV download and the next page); blank fields left out. */
export const filterParams = (q: SigninLogQuery) =>
  new URLSearchParams(
    Object.entries({ user: q.user, outcome: q.outcome, method: q.method, since: q.since, until: q.until }).filter((e): e is [string, string] => Boolean(e[1])),
  );

/** The sign-in log: its filter form, a CSV download of what it matches, a page of sign-ins and the way to older ones. */
export function signinLogView(v: ConsoleViewer & { q: SigninLogQuery; items: AdminSigninEvent[]; next: string | null; error?: string | undefined }): string {
  const { q } = v;
  const base = consoleBase(v);
  const params = filterParams(q);
  const option = (value: string, label: string, current: string | undefined) =>
    html`<option value="${value}"${value === (current ?? '') ? html` selected` : ''}>${label}</option>`;
  return consolePage(
    v,
    'signins',
    'Sign-in log',
    html`<h1>Sign-in log</h1>
${errorSummary(v.error)}
<form method="get" action="${base}/signins" class="filters" aria-label="Filter the sign-in log">
  <div><label for="f-user">User</label><input type="text" id="f-user" name="user" value="${q.user ?? ''}" autocapitalize="none"></div>
  <div><label for="f-outcome">Outcome</label><select id="f-outcome" name="outcome">${option('', 'Any', q.outcome)}${option('success', 'Success', q.outcome)}${option('failure', 'Failure', q.outcome)}</select></div>
  <div><label for="f-method">Method</label><select id="f-method" name="method">${option('', 'Any', q.method)}${option('password', 'Password', q.method)}${option('passkey', 'Passkey (no password)', q.method)}${METHOD_TYPES.map((m) => option(m, methodName(m), q.method))}</select></div>
  <div><label for="f-since">From</label><input type="date" id="f-since" name="since" value="${q.since ?? ''}"></div>
  <div><label for="f-until">To</label><input type="date" id="f-until" name="until" value="${q.until ?? ''}"></div>
  <div><button type="submit">Filter</button></div>
</form>
<p><a href="${base}/signins.csv?${params.toString()}" download>Download as CSV</a></p>
${signinTable(v.items)}
${v.next ? html`<p><a href="${base}/signins?${params.toString()}&cursor=${encodeURIComponent(v.next)}">Older sign-ins</a></p>` : ''}`,
  );
}
