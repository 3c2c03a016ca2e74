import { html, type SafeHtml } from '../html.ts';

/**
 * The attributes and message of a form field that may carry an error: the
 * message sits next to the field, the field says it is invalid and points at
 * the message (`aria-invalid`, `aria-describedby`), and the first field in
 * error takes the focus (`autofocus`; the caller says which is first). Hints
 * the field already has stay described too.
 */
export function fieldError(
  id: string,
  error: string | undefined,
  options: { hint?: string; first?: boolean } = {},
): { attrs: SafeHtml; message: SafeHtml | string } {
  const describedBy = [options.hint, error ? `${id}-error` : undefined].filter(Boolean).join(' ');
  return {
    attrs: html`${error ? html` aria-invalid="true"` : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}${error && options.first !== false ? html` autofocus` : ''}`,
    message: error ? html`<p class="field-error" id="${id}-error">${error}</p>` : '',
  };
}
