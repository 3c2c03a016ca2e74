import { html, type SafeHtml } from '../../../http/page/html.ts';
import { when } from '../../../http/page/parts/when.ts';
import { describeUserAgent } from '../../../http/page/user-agent.ts';
import { isoTime } from '../../../http/api-schemas.ts';
import type { AdminSigninEvent } from '../../../activity/signin-events.ts';
import { recordedMethodName, recordedStepName } from '../../../activity/recorded-method.ts';
import { signinReasonWords } from '../../../activity/signin-reasons.ts';

/** Sign-in attempts as the console lists them (a user's recent ones, the log), in words: names, methods, what happened. */
export function signinTable(items: AdminSigninEvent[]): SafeHtml {
  return items.length === 0
    ? html`<p>No sign-ins.</p>`
    : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">From</th><th scope="col">Step</th><th scope="col">Method</th><th scope="col">Outcome</th></tr></thead>
<tbody>${items.map(
        (
          e,
        ) => html`<tr><td data-label="When">${when(isoTime(e.at))}</td><td data-label="User">${e.username}</td><td data-label="From">${e.ip ?? ''} · ${describeUserAgent(e.userAgent)}</td><td data-label="Step">${recordedStepName(e.step)}</td><td data-label="Method">${e.method ? recordedMethodName(e.method) : ''}</td>
<td data-label="Outcome" class="${e.outcome === 'success' ? 'good' : 'bad'}">${e.outcome === 'success' ? 'Succeeded' : 'Failed'}${e.reason !== 'ok' ? `: ${signinReasonWords(e.reason)}` : ''}${e.reportedAt ? ' · reported: not me' : ''}</td></tr>`,
      )}</tbody></table></div>`;
}
