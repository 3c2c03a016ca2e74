import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { PROBLEM_BASE, problemCatalog, type ProblemCode } from '../errors/catalog.ts';
import { isUnavailable } from '../errors/is-unavailable.ts';
import { errorPageView, wantsPage } from './page/error-page.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemBody(error: AppError, instance?: string): Record<string, unknown> {
  const { status, title } = problemCatalog[error.code];
  return {
    ...error.extra,
    type: PROBLEM_BASE + error.code,
    title,
    status,
    ...(error.detail ? { detail: error.detail } : {}),
    ...(instance ? { instance } : {}),
  };
}

export function sendProblem(reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  return reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(problemBody(error));
}

const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid-request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid-request',
  FST_CSRF_INVALID_TOKEN: 'csrf-failed',
  FST_ERR_BAD_URL: 'invalid-request',
  FST_ERR_MAX_PARAM_LENGTH: 'uri-too-long',
  FST_CSRF_MISSING_SECRET: 'csrf-failed',
};

export { isUnavailable };

/**
 * Turns anything thrown into problem+json. Client mistakes keep their 4xx with
 * a plain explanation; anything else is a 500 whose details go to the log only.
 */
export function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError;
  if (fe.validation) {
    const errors = fe.validation.slice(0, 10).map((v) => ({ path: v.instancePath || '/', message: v.message ?? 'is not valid' }));
    const context = fe.validationContext ?? 'body';
    return new AppError('invalid-request', `the ${context} is not valid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`, { errors });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, mapped === 'invalid-request' ? 'the request could not be read' : undefined);
  if (error instanceof SyntaxError || (fe.statusCode === 400 && fe.code === undefined))
    return new AppError('invalid-request', 'the request body could not be read as JSON');
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    const byStatus: Record<number, ProblemCode> = {
      404: 'not-found',
      405: 'method-not-allowed',
      413: 'payload-too-large',
      415: 'unsupported-media-type',
      429: 'too-many-requests',
    };
    return new AppError(byStatus[fe.statusCode] ?? 'invalid-request');
  }
  if (isUnavailable(error)) return new AppError('unavailable', 'a store this service needs is not answering; try again shortly', {}, 5);
  return new AppError('internal');
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = toAppError(error);
  // A 503 the service gave on purpose (load shed, a client gone) is counted in
  // the metrics, not logged: in a surge that is thousands of lines a second.
  if (appError.code === 'unavailable' && error instanceof AppError) {
    request.log.debug({ detail: appError.detail }, 'refused: busy');
  } else if (appError.code === 'unavailable') {
    request.log.warn({ err: { type: error.name, message: error.message, code: (error as FastifyError).code } }, 'dependency unavailable');
  } else if (appError.status >= 500) {
    request.log.error({ err: { type: error.name, message: error.message, stack: error.stack, code: (error as FastifyError).code } }, 'request failed');
  }
  return wantsPage(request) ? sendErrorPage(request, reply, appError) : sendProblem(reply, appError);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const error = new AppError('not-found');
  return wantsPage(request) ? sendErrorPage(request, reply, error) : sendProblem(reply, error);
}

/** The error as a page, for a person in a browser (the same status, and Retry-After when there is one). */
function sendErrorPage(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  const { status, title } = problemCatalog[error.code];
  // A 500's detail is for the log, never the page.
  const detail = status >= 500 ? undefined : error.detail;
  const tenantSlug = /^\/t\/([a-z0-9-]{1,64})\//.exec(request.url)?.[1];
  return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(errorPageView({ status, title, detail, tenantSlug }));
}
