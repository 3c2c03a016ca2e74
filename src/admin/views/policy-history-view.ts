import { html, type SafeHtml } from '../../http/page/html.ts';
import type { ConfigVersion } from '../../config/config-versions.ts';

const STATES: Record<string, string> = { canary: 'On its canary', promoted: 'Promoted', 'rolled-back': 'Rolled back', superseded: 'Replaced' };
const at = (ms: number) => html`<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC</time>`;

/**
 * The policy history in the admin console: each version, who applied it and
 * when, its rollout (canary share, bake, the decision and why), and its diff.
 * A pure view: the route reads the versions.
 */
export function policyHistoryView(v: { tenantSlug: string; versions: ConfigVersion[] }): SafeHtml {
  return html`<nav class="admin" aria-label="Admin console"><a href="/t/${v.tenantSlug}/admin">Users</a><a href="/t/${v.tenantSlug}/admin/policy">Policy</a><a href="/t/${v.tenantSlug}/admin/policy/history" aria-current="page">Policy history</a></nav>
<div class="card">
<h1>Policy history</h1>
<p class="hint">A policy version can go to a share of users first (<code>POST /api/v1/admin/policy/versions</code> with <code>canaryPercent</code>, or <code>steadfast config apply FILE --tenant ${v.tenantSlug} --canary 10</code>); it is rolled back by itself when their sign-ins do worse than everyone else's, and promoted after its bake otherwise.</p>
${
  v.versions.length === 0
    ? html`<p>No versions yet: the policy has only been changed on the policy page, for everyone at once.</p>`
    : v.versions.map(
        (ver) => html`<section class="version" data-state="${ver.state}" aria-labelledby="v${String(ver.version)}">
<h2 id="v${String(ver.version)}">Version ${String(ver.version)}: ${STATES[ver.state] ?? ver.state}</h2>
<p>Applied ${at(ver.createdAt)} by ${ver.actor}${ver.canaryPercent > 0 ? html`, to ${String(ver.canaryPercent)}% of users first for ${String(ver.bakeSeconds)} s` : ', to everyone at once'}.${ver.decidedAt !== null && ver.canaryPercent > 0 ? html` Decided ${at(ver.decidedAt)}.` : ''}</p>
${ver.reason ? html`<p><strong>Why:</strong> ${ver.reason}</p>` : ''}
${
  ver.diff.length === 0
    ? html`<p>No changes.</p>`
    : html`<div class="table-scroll"><table><thead><tr><th scope="col">Setting</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
<tbody>${ver.diff.map((c) => html`<tr><th scope="row"><code>${c.path}</code></th><td>${c.before ?? '(none)'}</td><td>${c.after ?? '(none)'}</td></tr>`)}</tbody></table></div>`
}
</section>`,
      )
}
</div>`;
}
