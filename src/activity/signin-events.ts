/** Sign-in events: recorded with group commit, read by keyset pages, exported in a worker thread. */
import { sql } from 'kysely';
import type { Db } from '../store/durable/database.ts';
import type { SigninEventTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { newSortableId } from '../crypto/random.ts';
import type { GroupCommit } from '../store/durable/group-commit.ts';
import { AppError } from '../errors/app-error.ts';
import type { ReportReader } from './report-reader.ts';
import type { AdminSigninEvent, SigninEvent } from './signin-event.ts';
import { SIGNIN_CSV_HEADER, type ExportFormat } from './signin-export-format.ts';

/** Rows per export page: a few milliseconds of work for the worker, a few hundred KB of text. */
const EXPORT_PAGE_ROWS = 2000;

export interface SigninEventInput {
  tenantId: string;
  userId: string | null;
  username: string;
  ip?: string | undefined;
  userAgent?: string | undefined;
  app?: string | undefined;
  step: 'password' | 'second-factor' | 'passkey';
  outcome: 'success' | 'failure';
  reason: SigninReason;
  method?: string | undefined;
  /** Which of the user's methods it was (a second factor or passkey that matched). */
  credentialId?: string | undefined;
}

export type { AdminSigninEvent, SigninEvent } from './signin-event.ts';
import type { SigninReason } from './signin-reasons.ts';

export interface SigninFilter {
  userId?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  method?: string | undefined;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

/** Append-only record of sign-in attempts. */
export class SigninEvents {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly nodeName: string,
    /** Every attempt writes a row: group-committed with the other hot-path inserts. */
    private readonly groupCommit: GroupCommit,
    /** The report workers: exports always use them; admin log pages too when `lists` (SQLite, whose queries block the thread that runs them). */
    private readonly reports: { reader: ReportReader; lists: boolean },
  ) {}

  private readonly observers: ((event: SigninEventInput) => void)[] = [];

  /** Told of every attempt as it is recorded (the configuration canary compares sign-in outcomes by slice). */
  onRecord(observer: (event: SigninEventInput) => void): void {
    this.observers.push(observer);
  }

  async record(input: SigninEventInput): Promise<void> {
    for (const observe of this.observers) observe(input);
    const at = this.clock.now();
    const row: SigninEventTable = {
      id: newSortableId(at),
      tenant_id: input.tenantId,
      user_id: input.userId,
      username: input.username.slice(0, 256),
      at,
      ip: input.ip?.slice(0, 64) ?? null,
      user_agent: input.userAgent?.slice(0, 512) ?? null,
      app: input.app?.slice(0, 200) ?? null,
      step: input.step,
      outcome: input.outcome,
      reason: input.reason,
      method: input.method ?? null,
      node: this.nodeName,
      degraded: 0,
      reported_at: null,
      credential_id: input.credentialId ?? null,
    };
    await this.groupCommit.insert('signin_events', row);
  }

  /** A user's own sign-ins, newest first; `cursor` is the opaque `next` of the previous page. Answered on the main thread: it is short. */
  async listForUser(tenantId: string, userId: string, limit: number, cursor?: string): Promise<Page<SigninEvent>> {
    const rows = await this.pageQuery(tenantId, { userId }, limit + 1, cursor ? decodeCursor(cursor) : undefined).execute();
    return toPage(rows.map(toAdminEvent), limit);
  }

  /**
   * A tenant's sign-ins, newest first, filtered for the admin. On SQLite the
   * query runs in the report worker: a filter that matches rarely can read a
   * long way, and never on the thread that serves sign-ins.
   */
  async list(tenantId: string, filter: SigninFilter, limit: number, cursor?: string): Promise<Page<AdminSigninEvent>> {
    const query = this.pageQuery(tenantId, filter, limit + 1, cursor ? decodeCursor(cursor) : undefined);
    const rows = this.reports.lists ? ((await this.reports.reader.page(query.compile(), 'rows')).rows ?? []) : (await query.execute()).map(toAdminEvent);
    return toPage(rows, limit);
  }

  /**
   * Every matching sign-in, newest first, as CSV (with its header line) or
   * NDJSON, UTF-8 encoded, a page at a time: the caller pulls the next page
   * when it has sent the last (back-pressure), the pages are queried,
   * formatted and encoded in the report worker, and while the node serves
   * requests the export pauses between pages (ExportPacing). No cap: a
   * narrower filter is the way to a smaller file.
   */
  async *export(tenantId: string, filter: SigninFilter, format: ExportFormat, pageSize = EXPORT_PAGE_ROWS): AsyncGenerator<Buffer> {
    if (format === 'csv') yield Buffer.from(SIGNIN_CSV_HEADER);
    let after: { at: number; id: string } | undefined;
    for (;;) {
      const query = this.pageQuery(tenantId, filter, pageSize, after);
      const started = performance.now();
      const page = await this.reports.reader.page(query.compile(), format);
      const pageMs = performance.now() - started;
      // The worker's buffer as it is: no copy on this thread.
      if (page.bytes && page.bytes.byteLength > 0) yield Buffer.from(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
      if (page.count < pageSize || !page.last) return;
      after = page.last;
      await this.reports.reader.pacing.afterPage(pageMs);
    }
  }

  /** One of the node's export slots (see ReportReader.takeExportSlot); throws `unavailable` when all are taken. */
  takeExportSlot(): () => void {
    return this.reports.reader.takeExportSlot();
  }

  /** One page of the log, newest first, after the keys `after`. */
  private pageQuery(tenantId: string, filter: SigninFilter, limit: number, after: { at: number; id: string } | undefined) {
    let query = this.db.selectFrom('signin_events').selectAll().where('tenant_id', '=', tenantId);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    // A literal, not a parameter: the planner can then use the failures-only index.
    if (filter.outcome) query = query.where('outcome', '=', sql.lit(filter.outcome === 'failure' ? 'failure' : 'success'));
    if (filter.method) query = query.where('method', '=', filter.method);
    if (filter.since !== undefined) query = query.where('at', '>=', filter.since);
    if (filter.until !== undefined) query = query.where('at', '<', filter.until);
    if (after) {
      // `at <= ?` first, alone: a range the (…, at) indexes walk; the OR only sorts out the rows of that one millisecond.
      query = query.where('at', '<=', after.at).where((eb) => eb.or([eb('at', '<', after.at), eb('id', '<', after.id)]));
    }
    return query.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit);
  }

  /** Marks one of the user's own sign-ins as reported; when it was and whether it succeeded, or undefined when it is not theirs. */
  async markReported(
    tenantId: string,
    userId: string,
    eventId: string,
  ): Promise<{ at: number; outcome: 'success' | 'failure'; method: string | null; credentialId: string | null; first: boolean } | undefined> {
    // Marked once: `first` says whether this report is the one that marked it (a report repeated does nothing more).
    const result = await this.db
      .updateTable('signin_events')
      .set({ reported_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('id', '=', eventId)
      .where('reported_at', 'is', null)
      .executeTakeFirst();
    const row = await this.db
      .selectFrom('signin_events')
      .select(['at', 'outcome', 'method', 'credential_id'])
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('id', '=', eventId)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      at: Number(row.at),
      outcome: row.outcome,
      method: row.method,
      credentialId: row.credential_id ?? null,
      first: Number(result.numUpdatedRows) === 1,
    };
  }
}

/** A stored row as the admin sees it (the user's own view is the same without user id and name). */
export function toAdminEvent(row: SigninEventTable): AdminSigninEvent {
  return {
    id: row.id,
    at: Number(row.at),
    ip: row.ip,
    userAgent: row.user_agent,
    app: row.app,
    step: row.step,
    method: row.method,
    outcome: row.outcome,
    reason: row.reason,
    reportedAt: row.reported_at === null ? null : Number(row.reported_at),
    userId: row.user_id,
    username: row.username,
  };
}

function toPage<T extends SigninEvent>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next: rows.length > limit && last ? encodeCursor(last) : null };
}

function encodeCursor(event: SigninEvent): string {
  return Buffer.from(JSON.stringify([event.at, event.id])).toString('base64url');
}

function decodeCursor(cursor: string): { at: number; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string') return { at: parsed[0], id: parsed[1] };
  } catch {
    // reported below
  }
  throw new AppError('invalid-request', 'the page cursor is not one this service gave out');
}
