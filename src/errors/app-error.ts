import { problemCatalog, type ProblemCode } from './catalog.ts';

/**
 * An expected failure the client should be told about. `detail` and `extra` are
 * shown to the client, so they must never hold secrets or internals.
 */
export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ProblemCode,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    /** Seconds, for 429 and 503 answers. */
    readonly retryAfter?: number,
  ) {
    super(detail ?? problemCatalog[code].title);
    this.status = problemCatalog[code].status;
  }
}
