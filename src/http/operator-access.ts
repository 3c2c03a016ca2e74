import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { bearerToken } from './authenticate.ts';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Whether a request may see what only operators should: metrics (per-tenant
 * volumes, provider names) and the detailed status. Either it carries the
 * operator token (`STEADFAST_OPS_TOKEN`, for a Prometheus elsewhere), or it
 * comes straight from this host: the socket's peer is loopback and no proxy
 * relayed it (no X-Forwarded-For or Forwarded header; the deployment's proxy
 * must add one, as the per-source limits need it anyway).
 */
export function isOperator(request: FastifyRequest, opsToken: string | undefined): boolean {
  const bearer = bearerToken(request);
  if (opsToken && bearer) return sameSecret(bearer, opsToken);
  const peer = request.raw.socket.remoteAddress ?? '';
  return LOOPBACK.test(peer) && request.headers['x-forwarded-for'] === undefined && request.headers.forwarded === undefined;
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
