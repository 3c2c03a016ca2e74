import { AppError } from '../../errors/app-error.ts';
import { problemCatalog } from '../../errors/catalog.ts';

/** The sentence a page shows for an expected failure, and its status; anything else propagates to the error handler. */
export function shownError(err: unknown): { text: string; status: number } {
  if (!(err instanceof AppError)) throw err;
  const text = err.detail ?? problemCatalog[err.code].title;
  const wait = err.retryAfter && err.status === 429 ? ` Try again in ${err.retryAfter} seconds.` : '';
  return { text: `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}${wait}`, status: err.status };
}
