/** Runs the retention sweeps on a timer, in small batches, one node at a time. */
import { sql } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Db, Engine } from '../store/durable/database.ts';
import type { Tenant, Tenants } from '../directory/tenants.ts';
import type { Sweep } from './sweeps.ts';

export interface SweepReport {
  /** Rows removed, by sweep. */
  removed: Record<string, number>;
  /** Sweeps (with the tenant) another node was doing at the time (PostgreSQL): it does them, this node does not wait. */
  skipped: string[];
  /** Problems found on the way; the sweeper logs them and goes on with the rest. */
  problems: string[];
}

export interface SweeperOptions {
  engine: Engine;
  /** Rows per batch (one transaction). */
  batchSize?: number;
  onReport?: (report: SweepReport) => void;
  onError?: (err: unknown) => void;
  /** While true the timer's passes are skipped (signing in from the outage fallback: nothing there to sweep). */
  paused?: () => boolean;
}

const pause = (ms: number) => new Promise<void>((resolve) => (ms >= 1 ? setTimeout(resolve, ms) : setImmediate(resolve)));

/**
 * Removes what has expired, in small batches, so no transaction holds a lock
 * for long and the event loop serves requests between batches. Times come
 * from the injected clock, so tests move the clock and call `runOnce`.
 *
 * On PostgreSQL every batch first takes a transaction-scoped advisory lock
 * named after its sweep (and tenant) in this schema: when several nodes sweep,
 * one does each batch and the others move on instead of deleting the same rows
 * or waiting on each other's locks. On SQLite there is one node.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepReport> | undefined;
  private stopping = false;
  private readonly batchSize: number;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly tenants: Tenants,
    private readonly sweeps: Sweep[],
    private readonly options: SweeperOptions,
  ) {
    // SQLite deletes on the thread that serves requests: batches small enough to take a few
    // milliseconds (measured with `npm run bench -- data`); PostgreSQL works apart from it.
    this.batchSize = options.batchSize ?? (options.engine === 'sqlite' ? 250 : 1000);
  }

  /** One full pass over every sweep; a pass already under way is joined, not doubled. */
  runOnce(): Promise<SweepReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Sweeps every `everyMs` until stopped. The timer does not keep the process alive. */
  start(everyMs: number): void {
    if (this.timer || everyMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.options.paused?.()) return;
      this.runOnce().then(
        (report) => this.options.onReport?.(report),
        (err: unknown) => this.options.onError?.(err),
      );
    }, everyMs);
    this.timer.unref();
  }

  /** Stops the timer and a pass under way after its current batch (the next pass goes on from there). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private async pass(): Promise<SweepReport> {
    const now = this.clock.now();
    const report: SweepReport = { removed: {}, skipped: [], problems: [] };
    for (const sweep of this.sweeps) {
      report.removed[sweep.name] = 0;
      if (!sweep.perTenant) {
        await this.drain(sweep, now, undefined, report);
        continue;
      }
      let after = '';
      for (;;) {
        const tenants = await this.tenants.page(after, 100);
        for (const tenant of tenants) await this.drain(sweep, now, tenant, report);
        if (tenants.length < 100) break;
        after = tenants.at(-1)!.id;
      }
    }
    return report;
  }

  /** Batches until nothing more is due, another node holds the sweep, or a problem stops it. */
  private async drain(sweep: Sweep, now: number, tenant: Tenant | undefined, report: SweepReport): Promise<void> {
    const lockName = `steadfast-sweep:${sweep.name}${tenant ? `:${tenant.id}` : ''}`;
    while (!this.stopping) {
      const started = performance.now();
      const outcome = await this.db.transaction().execute(async (trx) => {
        if (this.options.engine === 'postgres') {
          const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(current_schema() || ':' || ${lockName})) as locked`.execute(
            trx,
          );
          if (!rows[0]?.locked) return 'skipped' as const;
        }
        return sweep.batch(trx, { now, limit: this.batchSize, ...(tenant ? { tenant } : {}) });
      });
      if (outcome === 'skipped') {
        report.skipped.push(tenant ? `${sweep.name} (${tenant.slug})` : sweep.name);
        return;
      }
      report.removed[sweep.name]! += outcome.removed;
      if (outcome.problem) {
        report.problems.push(`${sweep.name}${tenant ? ` (${tenant.slug})` : ''}: ${outcome.problem}`);
        return;
      }
      if (outcome.removed < this.batchSize) return;
      // Between batches the requests that came in meanwhile go first, and a sweep catching
      // up on a large backlog rests as long as it worked: at most half of the node's time.
      await pause(performance.now() - started);
    }
  }
}
