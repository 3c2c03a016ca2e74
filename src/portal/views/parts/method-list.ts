import { html, type SafeHtml } from '../../../http/page/html.ts';
import { methodName } from '../../../methods/registry.ts';
import type { MethodChoice } from '../../../signin/method-choices.ts';
import { hiddenFields } from '../../../http/page/parts/hidden-fields.ts';

/**
 * The other ways to sign in, each a button that switches to it (those whose
 * channel is down are shown, disabled, so nobody wonders where they went).
 */
export function otherMethods(options: {
  action: string;
  csrf: string;
  context: Record<string, string | undefined>;
  methods: MethodChoice[];
}): SafeHtml | string {
  if (options.methods.length === 0) return '';
  return html`<h2>Sign in another way</h2>
<ul class="methods">${options.methods.map(
    (m) => html`<li><span>${methodName(m.type)}: ${m.label}${m.available ? '' : html` <em>(unavailable right now)</em>`}</span>
<form method="post" action="${options.action}" class="inline">
  ${hiddenFields(options.csrf, { ...options.context, method: m.id })}
  <button type="submit" class="secondary" ${m.available ? '' : 'disabled'}>Use ${m.label}</button>
</form></li>`,
  )}</ul>`;
}
