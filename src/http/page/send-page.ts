import type { FastifyReply } from 'fastify';

/** Sends a rendered page. Pages hold personal data or one-time values: no cache keeps them. */
export function sendPage(reply: FastifyReply, page: string, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
}
