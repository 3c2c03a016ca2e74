import type { AdminSigninEvent } from './signin-event.ts';

/**
 * How the sign-in log is written out for reports: CSV and NDJSON lines. Pure
 * functions, so the report worker thread formats pages and the node's main
 * thread only passes text along.
 */

/**
 * One CSV field (RFC 4180). Text that a spreadsheet would run as a formula
 * (starting with = + - @, tab or carriage return) gets a leading apostrophe:
 * usernames and user agents are typed by strangers (OWASP CSV injection).
 */
export function csvField(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvRow = (values: unknown[]) => `${values.map(csvField).join(',')}\r\n`;

export type ExportFormat = 'csv' | 'ndjson';

export const SIGNIN_CSV_HEADER = csvRow(['id', 'at', 'userId', 'username', 'ip', 'userAgent', 'app', 'step', 'method', 'outcome', 'reason', 'reported']);

/** One sign-in as the admin API shows it (`GET /api/v1/admin/signins` items), for NDJSON. */
export const adminSigninRecord = (e: AdminSigninEvent) => ({
  id: e.id,
  at: new Date(e.at).toISOString(),
  ip: e.ip,
  userAgent: e.userAgent,
  app: e.app,
  step: e.step,
  method: e.method,
  outcome: e.outcome,
  reason: e.reason,
  reported: e.reportedAt !== null,
  userId: e.userId,
  username: e.username,
});

export function signinLines(events: AdminSigninEvent[], format: ExportFormat): string {
  let text = '';
  for (const e of events) {
    text +=
      format === 'csv'
        ? csvRow([
            e.id,
            new Date(e.at).toISOString(),
            e.userId,
            e.username,
            e.ip,
            e.userAgent,
            e.app,
            e.step,
            e.method,
            e.outcome,
            e.reason,
            e.reportedAt !== null,
          ])
        : `${JSON.stringify(adminSigninRecord(e))}\n`;
  }
  return text;
}
