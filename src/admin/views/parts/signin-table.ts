import { html, type SafeHtml } from '../../../http/page/html.ts';
import { when } from '../../../http/page/parts/when.ts';
import { describeUserAgent } from '../../../http/page/user-agent.ts';
import { isoTime } from '../../../http/api-schemas.ts';
import type { AdminSigninEvent } from '../../../activity/signin-events.ts';

/** Sign-in attempts as the console lists them (a user's recent ones, the log). */
export function signinTable(items: AdminSigninEvent[]): SafeHtml {
  return items.length === 0
    ? html`<p>No sign-ins.</p>`
    : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">From</th><th scope="col">Step</th><th scope="col">Method</th><th scope="col">Outcome</th></tr></thead>
<tbody>${items.map(
        (e) => html`<tr><td data-label="When">${when(isoTime(e.at))}</td><td data-label="User">${e.username}</td><td data-label="From">${e.ip ?? ''} · ${describeUserAgent(e.userAgent)}</td><td data-label="Step">${e.step}</td><td data-label="Method">${e.method ?? ''}</td>
<td data-label="Outcome">${e.outcome}${e.reason !== 'ok' ? ` (${e.reason.replace(/_/g, ' ')})` : ''}${e.reportedAt ? ' · reported: not me' : ''}</td></tr>`,
      )}</tbody></table></div>`;
}
