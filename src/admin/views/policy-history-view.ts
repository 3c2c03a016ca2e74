import { html, type SafeHtml } from '../../http/page/html.ts';
import { notice as noticeView } from '../../http/page/parts/error-summary.ts';
import type { ConfigVersion } from '../../config/config-versions.ts';
import { changesTable } from './parts/changes-table.ts';
import { consoleBase, consolePage, type ConsoleViewer, type Notice } from './console-layout.ts';

const STATES: Record<string, string> = { canary: 'On its canary', promoted: 'Promoted', 'rolled-back': 'Rolled back', superseded: 'Replaced' };
const at = (ms: number) => html`<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC</time>`;

// What an administrator may do with a version from the history: end it (the canary), go back to it, or nothing (the current one).
function rollbackButton(v: ConsoleViewer, ver: ConfigVersion, current: number | undefined, canaryBaking: boolean): SafeHtml {
  const label = ver.state === 'canary' ? 'Roll back this canary' : 'Roll back to this version';
  // The current version is where a rollback would lead; while a canary bakes, only the canary can be rolled back.
  if (ver.state !== 'canary' && (ver.version === current || canaryBaking)) return html``;
  return html`<form method="get" action="${consoleBase(v)}/policy/history/rollback" class="inline">
<input type="hidden" name="version" value="${String(ver.version)}">
<button type="submit" aria-describedby="v${String(ver.version)}">${label}</button>
</form>`;
}

/**
 * The policy history in the admin console: each version, who applied it and
 * when, its rollout (canary share, bake, the decision and why), its diff, and
 * a button to roll back to it (or to end the canary), which leads to a
 * confirmation page. A pure view: the route reads the versions.
 */
export function policyHistoryView(v: ConsoleViewer & { versions: ConfigVersion[]; current: number | undefined; notice?: Notice | undefined }): string {
  const canaryBaking = v.versions.some((ver) => ver.state === 'canary');
  return consolePage(
    v,
    'policy',
    'Policy history',
    html`<h1>Policy history</h1>
${noticeView(v.notice)}
<p class="hint">A policy version can go to a share of users first (<code>POST /api/v1/admin/policy/versions</code> with <code>canaryPercent</code>, or <code>steadfast config apply FILE --tenant ${v.tenant.slug} --canary 10</code>); it is rolled back by itself when their sign-ins do worse than everyone else's, and promoted after its bake otherwise. Changes on the <a href="${consoleBase(v)}/policy">policy page</a> apply to everyone at once.</p>
${
  v.versions.length === 0
    ? html`<p>No versions yet: the policy has not been changed since versions were kept.</p>`
    : v.versions.map(
        (ver) => html`<section class="version" data-state="${ver.state}" aria-labelledby="v${String(ver.version)}">
<h2 id="v${String(ver.version)}">Version ${String(ver.version)}: ${STATES[ver.state] ?? ver.state}${ver.version === v.current ? ' (current)' : ''}</h2>
<p>Applied ${at(ver.createdAt)} by ${ver.actor}${ver.canaryPercent > 0 ? html`, to ${String(ver.canaryPercent)}% of users first for ${String(ver.bakeSeconds)} s` : ', to everyone at once'}.${ver.decidedAt !== null && ver.canaryPercent > 0 ? html` Decided ${at(ver.decidedAt)}.` : ''}</p>
${ver.reason ? html`<p><strong>Why:</strong> ${ver.reason}</p>` : ''}
${changesTable(ver.diff, `What version ${String(ver.version)} changed`)}
${rollbackButton(v, ver, v.current, canaryBaking)}
</section>`,
      )
}`,
  );
}
