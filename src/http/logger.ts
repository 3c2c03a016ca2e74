/** The pino logger, with every path that may hold a secret redacted. */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { loggableUrl } from './request-context.ts';

/**
 * Paths pino blanks in every log line. Steadfast never logs request bodies;
 * this is the second line of defence should one ever be logged by mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.code',
  '*.codes',
  '*.token',
  '*.secret',
  '*.tap',
  '*.otpauthUri',
  '*.qrCodeSvg',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'steadfast' },
      serializers: {
        // Only what operators need; the route pattern instead of the URL, so
        // handles in paths (flow ids) stay out of the logs.
        req: (request: FastifyRequest) => ({ id: request.id, method: request.method, url: loggableUrl(request), ip: request.ip }),
        res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
      },
    },
    destination,
  );
}
