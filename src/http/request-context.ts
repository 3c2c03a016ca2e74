import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../signin/signin-service.ts';

// A client that has waited this long for a password check has most likely given up.
export const HASHING_DEADLINE_MS = 5000;

export function requestContext(request: FastifyRequest): RequestContext {
  const userAgent = request.headers['user-agent'];
  return {
    ip: request.ip,
    userAgent: typeof userAgent === 'string' ? userAgent : undefined,
    signal: request.clientGone,
    deadline: request.receivedAt + HASHING_DEADLINE_MS,
    // Sent only to the tenant's own pages (its path is /t/{tenant}/); absent on API calls.
    knownBrowser: request.cookies?.sf_known,
  };
}

/**
 * The URL as it goes to the log: the route pattern where there is one, so a
 * flow id or other handle in the path never reaches the logs.
 */
export function loggableUrl(request: FastifyRequest): string {
  return request.routeOptions?.url ?? request.url.split('?')[0]!.replace(/\/signin\/[^/]+\//, '/signin/:flow/');
}
