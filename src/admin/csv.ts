import type { Tenant } from '../directory/tenants.ts';
import type { SigninFilter } from '../activity/signin-events.ts';
import type { Administration } from './administration.ts';

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

const COLUMNS = ['id', 'at', 'userId', 'username', 'ip', 'userAgent', 'app', 'step', 'method', 'outcome', 'reason', 'reported'];
// An export walks the whole filtered log a page at a time, up to this many rows.
const MAX_ROWS = 100_000;

/** The filtered sign-in log as CSV, newest first, for the API and the console alike. */
export async function signinsCsv(admin: Administration, tenant: Tenant, filter: SigninFilter): Promise<string> {
  let body = csvRow(COLUMNS);
  let cursor: string | undefined;
  for (let rows = 0; rows < MAX_ROWS; ) {
    const page = await admin.signins(tenant, filter, 1000, cursor);
    for (const e of page.items) body += csvRow([e.id, new Date(e.at).toISOString(), e.userId, e.username, e.ip, e.userAgent, e.app, e.step, e.method, e.outcome, e.reason, e.reportedAt !== null]);
    rows += page.items.length;
    if (!page.next) break;
    cursor = page.next;
  }
  return body;
}
