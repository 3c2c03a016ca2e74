import { html } from '../../http/page/html.ts';
import { when } from '../../http/page/parts/when.ts';
import { isoTime } from '../../http/api-schemas.ts';
import type { AuditEntry } from '../../activity/audit-log.ts';
import { tellAuditEntry } from '../../activity/audit-actions.ts';
import { consoleBase, consolePage, type ConsoleViewer } from './console-layout.ts';

/** An audit entry with its people named: who acted, and the user it was about (null when none, or no longer here). */
export interface NamedAuditEntry {
  entry: AuditEntry;
  by: string;
  whom: string | null;
}

/**
 * A page of the audit log, newest first, each entry told as a sentence with
 * its facts (the action's stable name beneath, for alert rules and the API's
 * `action` filter), and the way to older entries when the page is full.
 */
export function auditLogView(
  v: ConsoleViewer & { entries: NamedAuditEntry[]; pageSize: number; user?: string | undefined; userName?: string | undefined },
): string {
  const base = consoleBase(v);
  const { entries } = v;
  return consolePage(
    v,
    'audit',
    'Audit log',
    html`<h1>Audit log${v.userName ? ` of ${v.userName}` : ''}</h1>
<p class="hint">Every entry carries the hash of the one before it; <code>steadfast audit verify</code> checks the chain.${v.user ? html` <a href="${base}/audit">Every user</a>` : ''}</p>
${
  entries.length === 0
    ? html`<p>No entries.</p>`
    : html`<div class="table-scroll"><table class="stack">
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">What happened</th><th scope="col">Details</th></tr></thead>
<tbody>${entries.map(({ entry: e, by, whom }) => {
        const told = tellAuditEntry(e.action, { by, whom, details: e.details });
        return html`<tr><td data-label="#">${e.seq}</td><td data-label="When">${when(isoTime(e.at))}</td>
<td data-label="What happened">${told.sentence}${e.targetUserId && whom ? html` <a href="${base}/users/${e.targetUserId}" class="hint">(${whom}'s page)</a>` : ''}<br><code class="hint">${e.action}</code></td>
<td data-label="Details">${told.facts.length > 0 ? told.facts.join('; ') : ''}</td></tr>`;
      })}</tbody></table></div>`
}
${entries.length === v.pageSize ? html`<p><a href="${base}/audit?before=${entries.at(-1)!.entry.seq}${v.user ? `&user=${encodeURIComponent(v.user)}` : ''}">Older entries</a></p>` : ''}`,
  );
}
