import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { Tenant } from '../directory/tenant.ts';
import type { SigninFilter } from '../activity/signin-events.ts';
import type { ExportFormat } from '../activity/signin-export-format.ts';
import type { Administration } from './administration.ts';

// The CSV injection protection lives with the export formats, where the report worker uses it too.
export { csvField, csvRow } from '../activity/signin-export-format.ts';

const CONTENT_TYPES: Record<ExportFormat, string> = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson; charset=utf-8' };

/**
 * Sends the filtered sign-in log as a download, streamed a page at a time:
 * the next page is fetched only when the socket has taken the last one, so
 * a slow client holds back only its own export. Every match is sent; a
 * failure part-way ends the connection without the final chunk, so a
 * cut-short file is never taken for a whole one.
 */
export function sendSigninExport(
  reply: FastifyReply,
  admin: Pick<Administration, 'exportSignins'>,
  tenant: Tenant,
  filter: SigninFilter,
  format: ExportFormat,
): FastifyReply {
  const { chunks, release } = admin.exportSignins(tenant, filter, format);
  const body = Readable.from(chunks, { objectMode: false, highWaterMark: 256 * 1024 });
  body.once('close', release);
  // Streaming is the report worker's work, not this thread's: the admission slot goes back now.
  reply.request.releaseAdmission?.();
  return reply
    .type(CONTENT_TYPES[format])
    .header('content-disposition', `attachment; filename="signins-${tenant.slug}.${format}"`)
    .header('cache-control', 'no-store')
    .send(body);
}
