import { html, type SafeHtml } from '../../../http/page/html.ts';
import type { ConfigChange } from '../../../config/config-diff.ts';

/** What a configuration version changed, setting by setting (secrets read "(sealed)"), as the policy history and the rollback confirmation show it. */
export function changesTable(changes: ConfigChange[], caption: string): SafeHtml {
  return changes.length === 0
    ? html`<p>No changes.</p>`
    : html`<div class="table-scroll"><table><caption>${caption}</caption><thead><tr><th scope="col">Setting</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
<tbody>${changes.map((c) => html`<tr><th scope="row"><code>${c.path}</code></th><td>${c.before ?? '(none)'}</td><td>${c.after ?? '(none)'}</td></tr>`)}</tbody></table></div>`;
}
