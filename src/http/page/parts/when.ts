import { html, type SafeHtml } from '../html.ts';

/** A moment, in UTC for the page and in the reader's time zone once the page script runs; "never" for none. */
export const when = (iso: string | null): SafeHtml | string =>
  iso ? html`<time datetime="${iso}" data-local>${iso.replace('T', ' ').slice(0, 16)} UTC</time>` : 'never';
