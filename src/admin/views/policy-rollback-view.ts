import { html } from '../../http/page/html.ts';
import { csrfField } from '../../http/page/parts/hidden-fields.ts';
import { notice as noticeView } from '../../http/page/parts/error-summary.ts';
import type { ConfigChange } from '../../config/config-diff.ts';
import type { ConfigVersion } from '../../config/config-versions.ts';
import { changesTable } from './parts/changes-table.ts';
import { consoleBase, consolePage, type ConsoleViewer, type Notice } from './console-layout.ts';

/**
 * The confirmation step of a rollback from the console: what will change for
 * everyone (from the current policy to the version's), and the form that does
 * it (CSRF, a reason for the audit log).
 */
export function policyRollbackConfirmView(v: ConsoleViewer & { version: ConfigVersion; changes: ConfigChange[]; notice?: Notice | undefined }): string {
  const canary = v.version.state === 'canary';
  const n = String(v.version.version);
  return consolePage(
    v,
    'policy',
    canary ? `Roll back the canary, version ${n}` : `Roll back to version ${n}`,
    html`<h1>${canary ? `Roll back the canary, version ${n}?` : `Roll back to version ${n}?`}</h1>
${noticeView(v.notice)}
<p>${
      canary
        ? html`The ${String(v.version.canaryPercent)}% of users on the canary go back to the current policy at once; the version is marked rolled back. Nobody else notices anything.`
        : html`Version ${n}'s policy becomes the policy for <strong>everyone at once</strong>, as a new version. This is what changes:`
    }</p>
${
  // A version that was stopped (by hand or by the judge) goes to everyone with no canary from here: say so before it does.
  v.version.state === 'rolled-back'
    ? html`<p class="alert error" role="alert">Version ${n} was rolled back${v.version.reason ? html` (${v.version.reason})` : ''}. Going back to it applies it to everyone at once, without a canary. To try it on a share of users first, apply it again with a canary.</p>`
    : ''
}
${canary ? changesTable(v.version.diff, `What the canary changed, now undone`) : changesTable(v.changes, `From the current policy to version ${n}'s`)}
<form method="post" action="${consoleBase(v)}/policy/history/rollback">
  ${csrfField(v.csrf)}
  <input type="hidden" name="version" value="${n}">
  <label for="rollback-reason">Why (kept in the audit log and the history)</label>
  <input type="text" id="rollback-reason" name="reason" maxlength="500">
  <button type="submit">${canary ? 'Yes, roll back the canary' : `Yes, roll back to version ${n}`}</button>
  <a href="${consoleBase(v)}/policy/history">Cancel</a>
</form>`,
  );
}
