import { html, type SafeHtml } from '../html.ts';

/** The CSRF field every page form carries. */
export const csrfField = (csrf: string): SafeHtml => html`<input type="hidden" name="_csrf" value="${csrf}">`;

/** Hidden fields that carry a form's context (the flow, where to go next); absent values are left out. */
export function hiddenFields(csrf: string, fields: Record<string, string | undefined> = {}): SafeHtml {
  return html`${csrfField(csrf)}${Object.entries(fields).map(([name, value]) => (value === undefined ? '' : html`<input type="hidden" name="${name}" value="${value}">`))}`;
}
