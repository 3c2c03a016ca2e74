import { html } from '../../http/page/html.ts';
import { when } from '../../http/page/parts/when.ts';
import { isoTime } from '../../http/api-schemas.ts';
import type { AuditEntry } from '../../activity/audit-log.ts';
import { consoleBase, consolePage, type ConsoleViewer } from './console-layout.ts';

/** A page of the audit log, newest first, with the way to older entries when the page is full. */
export function auditLogView(v: ConsoleViewer & { entries: AuditEntry[]; pageSize: number; user?: string | undefined }): string {
  const base = consoleBase(v);
  const { entries } = v;
  return consolePage(
    v,
    'audit',
    'Audit log',
    html`<h1>Audit log</h1>
<p class="hint">Every entry carries the hash of the one before it; <code>steadfast audit verify</code> checks the chain.</p>
${
  entries.length === 0
    ? html`<p>No entries.</p>`
    : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">User</th><th scope="col">Details</th></tr></thead>
<tbody>${entries.map(
        (e) => html`<tr><td data-label="#">${e.seq}</td><td data-label="When">${when(isoTime(e.at))}</td><td data-label="Who">${e.actor}</td><td data-label="What">${e.action}</td>
<td data-label="User">${e.targetUserId ? html`<a href="${base}/users/${e.targetUserId}">${e.targetUserId.slice(0, 8)}</a>` : ''}</td><td data-label="Details"><pre>${JSON.stringify(e.details)}</pre></td></tr>`,
      )}</tbody></table></div>`
}
${entries.length === v.pageSize ? html`<p><a href="${base}/audit?before=${entries.at(-1)!.seq}${v.user ? `&user=${encodeURIComponent(v.user)}` : ''}">Older entries</a></p>` : ''}`,
  );
}
