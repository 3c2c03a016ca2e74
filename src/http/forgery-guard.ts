import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/**
 * Requests a browser could be tricked into sending, refused before any work
 * (ASVS v5 V3.5):
 *
 * - The JSON API (`/api/v1/`) takes JSON bodies only. A form post can carry a
 *   session cookie but not a JSON content type without a CORS preflight, which
 *   Steadfast never grants; so a page elsewhere cannot call the API as the user.
 * - A state-changing request that does not carry its own `Authorization`
 *   (so may ride on the session cookie) must come from Steadfast's own pages:
 *   `Sec-Fetch-Site` is `same-origin` (or `none`, typed by the user), or, from a
 *   browser too old to send it, `Origin` is Steadfast's own. A sibling
 *   subdomain is same-site, not same-origin: it is refused too, although
 *   SameSite=Lax cookies would reach us from it.
 *
 * Routes whose callers are other sites by design (the OpenID Connect protocol
 * endpoints) opt out with `config: { crossSite: true }`.
 */
export function refuseForgeable(request: FastifyRequest, ownOrigins: readonly string[]): AppError | undefined {
  if (SAFE_METHODS.has(request.method)) return undefined;
  if (request.url.startsWith('/api/v1/') && hasBody(request) && !JSON_TYPE.test(String(request.headers['content-type'] ?? ''))) {
    return new AppError('unsupported-media-type');
  }
  if (request.routeOptions.config?.crossSite === true || typeof request.headers.authorization === 'string') return undefined;
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') {
    return site === 'same-origin' || site === 'none' ? undefined : new AppError('cross-site-request');
  }
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== 'null' && !ownOrigins.includes(origin)) return new AppError('cross-site-request');
  if (origin === 'null') return new AppError('cross-site-request');
  return undefined;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}
