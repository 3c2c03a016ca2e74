import type { Db } from '../store/durable/database.ts';
import type { SigninEventTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { newSortableId } from '../crypto/random.ts';
import type { GroupCommit } from '../store/durable/group-commit.ts';
import { AppError } from '../errors/app-error.ts';

export interface SigninEventInput {
  tenantId: string;
  userId: string | null;
  username: string;
  ip?: string | undefined;
  userAgent?: string | undefined;
  app?: string | undefined;
  step: 'password' | 'second-factor' | 'passkey';
  outcome: 'success' | 'failure';
  /** A stable machine word: ok, invalid_credentials, invalid_code, rate_limited, … */
  reason: string;
  method?: string | undefined;
}

export interface SigninEvent {
  id: string;
  at: number;
  ip: string | null;
  userAgent: string | null;
  app: string | null;
  step: string;
  method: string | null;
  outcome: 'success' | 'failure';
  reason: string;
  reportedAt: number | null;
}

export interface AdminSigninEvent extends SigninEvent {
  userId: string | null;
  username: string;
}

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
  ) {}

  async record(input: SigninEventInput): Promise<void> {
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
    };
    await this.groupCommit.insert('signin_events', row);
  }

  /** Newest first; `cursor` is the opaque `next` of the previous page. */
  listForUser(tenantId: string, userId: string, limit: number, cursor?: string): Promise<Page<SigninEvent>> {
    return this.list(tenantId, { userId }, limit, cursor);
  }

  /** A tenant's sign-ins, newest first, filtered for the admin. */
  async list(tenantId: string, filter: SigninFilter, limit: number, cursor?: string): Promise<Page<AdminSigninEvent>> {
    let query = this.db.selectFrom('signin_events').selectAll().where('tenant_id', '=', tenantId);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.outcome) query = query.where('outcome', '=', filter.outcome);
    if (filter.method) query = query.where('method', '=', filter.method);
    if (filter.since !== undefined) query = query.where('at', '>=', filter.since);
    if (filter.until !== undefined) query = query.where('at', '<', filter.until);
    const after = cursor ? decodeCursor(cursor) : undefined;
    if (after) {
      query = query.where((eb) => eb.or([eb('at', '<', after.at), eb.and([eb('at', '=', after.at), eb('id', '<', after.id)])]));
    }
    const rows = await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map((row) => ({ ...toEvent(row), userId: row.user_id, username: row.username }));
    const last = items.at(-1);
    return { items, next: rows.length > limit && last ? encodeCursor(last) : null };
  }

  async markReported(tenantId: string, userId: string, eventId: string): Promise<boolean> {
    const result = await this.db
      .updateTable('signin_events')
      .set({ reported_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('id', '=', eventId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

function toEvent(row: SigninEventTable): SigninEvent {
  return {
    id: row.id,
    at: row.at,
    ip: row.ip,
    userAgent: row.user_agent,
    app: row.app,
    step: row.step,
    method: row.method,
    outcome: row.outcome,
    reason: row.reason,
    reportedAt: row.reported_at,
  };
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
