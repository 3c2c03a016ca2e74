/** Counts of a tenant's last day of sign-ins, for the console's overview charts. */
import { sql } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { ReportReader } from './report-reader.ts';
import { COMPLETING_REASONS } from './signin-reasons.ts';

export const HOUR_MS = 3_600_000;

/** One hour of a tenant's sign-ins: those that got in, and the failed attempts. */
export interface HourOfSignins {
  /** Start of the hour, epoch ms. */
  start: number;
  succeeded: number;
  failed: number;
}

/** A tenant's sign-in activity over the last day, counted by the database. */
export interface DayOfSignins {
  /** The window, epoch ms: 24 whole hours, the last one the current hour. */
  from: number;
  until: number;
  hours: HourOfSignins[];
  /** Failed attempts by recorded reason, most first. */
  failures: { reason: string; count: number }[];
  /** Completed sign-ins by the method that completed them, most first. */
  methods: { method: string; count: number }[];
}

/**
 * The sign-in counts the console's overview draws. One aggregate query over
 * the tenant's last 24 hours, on the (tenant_id, at) index, that answers a few
 * dozen rows: the counting is the database's, never a loop over events here.
 * On SQLite it runs in the report worker, as the admin log's pages do: a busy
 * tenant's day is many rows, and the thread that serves sign-ins never reads them.
 */
export class SigninActivity {
  constructor(private readonly deps: { db: Db; clock: Clock; reports: { reader: Pick<ReportReader, 'page'>; lists: boolean } }) {}

  async lastDay(tenantId: string): Promise<DayOfSignins> {
    const until = Math.floor(this.deps.clock.now() / HOUR_MS) * HOUR_MS + HOUR_MS;
    const from = until - 24 * HOUR_MS;
    const query = this.countsQuery(tenantId, from, until);
    const rows = (this.deps.reports.lists ? ((await this.deps.reports.reader.page(query.compile(), 'counts')).counts ?? []) : await query.execute()) as {
      hour: number | string;
      outcome: string;
      reason: string;
      method: string | null;
      n: number | string;
    }[];

    const hours: HourOfSignins[] = Array.from({ length: 24 }, (_, i) => ({ start: from + i * HOUR_MS, succeeded: 0, failed: 0 }));
    const failures = new Map<string, number>();
    const methods = new Map<string, number>();
    for (const row of rows) {
      const n = Number(row.n);
      const hour = hours[Number(row.hour)];
      if (!hour) continue;
      if (row.outcome === 'failure') {
        hour.failed += n;
        failures.set(row.reason, (failures.get(row.reason) ?? 0) + n);
      } else {
        hour.succeeded += n;
        const method = row.method ?? 'unknown';
        methods.set(method, (methods.get(method) ?? 0) + n);
      }
    }
    const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return {
      from,
      until,
      hours,
      failures: sorted(failures).map(([reason, count]) => ({ reason, count })),
      methods: sorted(methods).map(([method, count]) => ({ method, count })),
    };
  }

  /** The aggregate, hour by hour from `from`: exposed so a test can ask the database how it runs it. */
  countsQuery(tenantId: string, from: number, until: number) {
    // Completed sign-ins and failures only: a password that led to a second step is a step, not a sign-in.
    return this.deps.db
      .selectFrom('signin_events')
      .select([sql<number>`cast((at - ${from}) / ${HOUR_MS} as integer)`.as('hour'), 'outcome', 'reason', 'method', sql<number>`count(*)`.as('n')])
      .where('tenant_id', '=', tenantId)
      .where('at', '>=', from)
      .where('at', '<', until)
      .where((eb) => eb.or([eb('outcome', '=', 'failure'), eb.and([eb('outcome', '=', 'success'), eb('reason', 'in', COMPLETING_REASONS)])]))
      .groupBy([sql`1`, 'outcome', 'reason', 'method']);
  }
}
