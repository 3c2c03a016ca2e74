import type { SafeHtml } from '../html.ts';
import { alert } from '../layout.ts';

/** What went wrong, announced to screen readers; nothing when all is well. */
export const errorSummary = (message: string | undefined): SafeHtml | string => alert('error', message);

/** A notice of either kind (what happened, or what went wrong). */
export const notice = (value: { kind: 'error' | 'info'; text: string } | undefined): SafeHtml | string => (value ? alert(value.kind, value.text) : '');
