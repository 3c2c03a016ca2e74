import { CompiledQuery, sql } from 'kysely';
import type { Database as SqliteHandle } from 'better-sqlite3';
import type { Clock } from '../../clock.ts';
import type { KeyRing } from '../../crypto/key-ring.ts';
import { isUnavailable } from '../../errors/is-unavailable.ts';
import type { Db } from '../durable/database.ts';
import { FED_TABLES, FallbackSnapshot, type FedTable } from './fallback-snapshot.ts';
import type { FallbackRouting } from './fallback-dialect.ts';
import type { JournalEntry, JournalPayload, OutageJournal } from './outage-journal.ts';

export type DurableMode = 'primary' | 'fallback' | 'replaying';

export interface DurableFailoverOptions {
  clock: Clock;
  keyRing: KeyRing;
  node: string;
  snapshotFile: string;
  journal: OutageJournal;
  /** How often the change feed is read (bounded staleness of the fallback). */
  pollMs?: number;
  /** How often an unreachable database is tried again. */
  probeMs?: number;
  /** How often the sealed snapshot file is written (when it changed). */
  saveMs?: number;
  /** How often the whole copy is taken again, as a safety net under the change feed. */
  fullCopyMs?: number;
  onModeChange?: (mode: DurableMode, reason?: string) => void;
  /** A journal entry the database refused (not an outage): it is set aside, reported here, and replay goes on. */
  onReplayRejected?: (entry: JournalEntry, error: Error) => void;
  onBackgroundError?: (error: Error, what: string) => void;
  /** Journal entries per replay transaction (default 100). */
  replayGroup?: number;
  /** The share of the time replay may take while it drains, 0.05 to 1 (default 0.5). */
  replayShare?: number;
  /** Connects to the database outside the pool and asks it something: confirms an ambiguous failure. */
  probeDirect?: () => Promise<void>;
}

// Errors that can only mean the database is not there (refused, reset, shut down, not found);
// a timeout may be load and is confirmed before the node switches (DurableFailover.markDown).
const CLEARLY_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);

function clearlyDown(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && CLEARLY_DOWN_CODES.has(code)) || /Connection terminated|ECONNREFUSED/.test(error.message);
}

// A deadlock or serialization failure says nothing about the write itself: it is tried again, not set aside.
const TRANSIENT_CODES = new Set(['40P01', '40001', '55P03']);
const TRANSIENT_ATTEMPTS = 5;

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

/** How long a gap in the change feed's sequence is waited for (a transaction still open) before it is given up as a rollback. */
const GAP_PATIENCE_MS = 30_000;
const FEED_BATCH = 2000;
const FEED_KEEP_MS = 15 * 60_000;
/** Journal entries replayed per database transaction (one commit, one claim statement, one fsync to forget them). */
const REPLAY_GROUP = 100;
/** The most of the node's time replay takes while it drains (it rests the remainder between groups). */
const REPLAY_SHARE = 0.5;

function addTo(map: Map<FedTable, Set<string>>, table: FedTable, id: string): void {
  const ids = map.get(table) ?? new Set<string>();
  ids.add(id);
  map.set(table, ids);
}

/** Gives the event loop back: at once (setImmediate) when there is nothing to rest, else for `ms`. */
function rest(ms: number): Promise<void> {
  return new Promise((resolve) => (ms >= 1 ? setTimeout(resolve, Math.min(ms, 1000)) : setImmediate(resolve)));
}

/**
 * Keeps the node signing in when PostgreSQL does not answer (issue 12): holds
 * the local snapshot fresh from the change feed, notices the outage (a
 * statement or connection failing as unreachable), routes statements to the
 * snapshot while it lasts (FallbackDialect), probes for the database's
 * return, replays the journal in order and exactly once, and only then sends
 * statements to the database again.
 */
export class DurableFailover implements FallbackRouting {
  mode: DurableMode = 'primary';
  snapshot: FallbackSnapshot | undefined;
  /** Entries replayed into the database since the node started, and the ones the database refused. */
  replayed = 0;
  rejected = 0;
  /** Clock ms when the current outage began (0 when none). */
  downSince = 0;
  private primary: Db | undefined;
  private timers: NodeJS.Timeout[] = [];
  private probing = false;
  private confirming = false;
  private polling = false;
  private replaying: Promise<void> | undefined;
  private floor = 0;
  private readonly seen = new Set<number>();
  private readonly gapSince = new Map<number, number>();
  private lastFullCopy = 0;
  /** While a full copy runs: the rows the change feed named meanwhile, brought up to date again once it is swapped in. */
  private changedDuringCopy: Map<FedTable, Set<string>> | undefined;
  private deferAudit: ((tenantId: string, entry: Record<string, unknown>) => Promise<void>) | undefined;

  constructor(private readonly options: DurableFailoverOptions) {}

  get journal(): OutageJournal {
    return this.options.journal;
  }

  /** Seconds since the snapshot last matched the database (the staleness the fallback would serve with). */
  ageSeconds(): number {
    return this.snapshot ? Math.max(0, (this.options.clock.now() - this.snapshot.syncedAt) / 1000) : Number.POSITIVE_INFINITY;
  }

  usesFallback(): boolean {
    return this.mode !== 'primary';
  }

  snapshotDatabase(): SqliteHandle | undefined {
    return this.snapshot?.sqlite;
  }

  isOutage(error: unknown): boolean {
    return error instanceof Error && isUnavailable(error);
  }

  markDown(reason: unknown): boolean {
    if (this.mode !== 'primary') return true;
    // A pool wait timing out is what a busy database looks like too: switching on it would send a
    // healthy cluster's writes to journals under load. It is confirmed by a connection of its own first.
    if (!clearlyDown(reason) && this.options.probeDirect) {
      void this.confirmDown(reason);
      return false;
    }
    this.goDown(reason);
    return true;
  }

  private async confirmDown(reason: unknown): Promise<void> {
    if (this.confirming) return;
    this.confirming = true;
    try {
      await this.options.probeDirect!();
    } catch {
      if (this.mode === 'primary') this.goDown(reason);
    } finally {
      this.confirming = false;
    }
  }

  private goDown(reason: unknown): void {
    this.downSince = this.options.clock.now();
    this.setMode('fallback', reason instanceof Error ? reason.message : String(reason));
  }

  journalWrites(payloads: JournalPayload[]): Promise<void> {
    return this.options.journal.append(this.options.clock.now(), payloads);
  }

  touched(): void {
    this.snapshot?.touched();
  }

  /** The audit log defers its entries to the journal during an outage; replay appends them through `appendAudit`. */
  onReplayAudit(append: (tenantId: string, entry: Record<string, unknown>) => Promise<void>): void {
    this.deferAudit = append;
  }

  /**
   * Starts on a reachable database: the snapshot from the sealed file (quick)
   * or empty, brought up to date with a full copy, then kept fresh.
   */
  async start(primary: Db): Promise<void> {
    this.primary = primary;
    this.snapshot = (await FallbackSnapshot.restore(this.options.snapshotFile, this.options.keyRing)) ?? (await FallbackSnapshot.create());
    // The feed's head before the copy: what changes while it is taken comes again through the feed.
    this.floor = await this.feedHead();
    await this.fullCopy();
    this.schedule();
    // A journal left by an outage the node did not see the end of (it was restarted during it).
    if (this.options.journal.depth > 0) await this.replay();
  }

  /**
   * Starts while the database does not answer (item 5): from the sealed file
   * of the last run. False when there is none (or it does not open with this
   * key ring): the node then cannot serve sign-ins until the database returns.
   */
  async startInFallback(primary: Db, reason: unknown): Promise<boolean> {
    this.primary = primary;
    this.snapshot = await FallbackSnapshot.restore(this.options.snapshotFile, this.options.keyRing);
    if (!this.snapshot) return false;
    this.downSince = this.options.clock.now();
    this.setMode('fallback', reason instanceof Error ? reason.message : String(reason));
    this.schedule();
    return true;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.replaying;
    try {
      await this.snapshot?.save(this.options.snapshotFile, this.options.keyRing);
    } catch (error) {
      this.options.onBackgroundError?.(error as Error, 'saving the fallback snapshot');
    }
    await this.snapshot?.close();
    // Appends still being flushed are waited for (their callers are answered once they are on disk).
    await this.options.journal.durable().catch(() => {});
    await this.options.journal.close();
  }

  /** Reads the change feed once (tests call it; the timer does in a node). */
  async pollOnce(): Promise<void> {
    if (this.mode !== 'primary' || !this.primary || !this.snapshot || this.polling) return;
    this.polling = true;
    const started = this.options.clock.now();
    try {
      const rows = await this.primary
        .selectFrom('change_feed')
        .select(['seq', 'tbl', 'row_id'])
        .where('seq', '>', this.floor)
        .orderBy('seq')
        .limit(FEED_BATCH)
        .execute();
      const byTable = new Map<FedTable, Set<string>>();
      for (const row of rows) {
        const seq = Number(row.seq);
        if (this.seen.has(seq)) continue;
        this.seen.add(seq);
        if ((FED_TABLES as readonly string[]).includes(row.tbl)) {
          const ids = byTable.get(row.tbl as FedTable) ?? new Set();
          ids.add(row.row_id);
          byTable.set(row.tbl as FedTable, ids);
        }
      }
      if (this.changedDuringCopy) for (const [table, ids] of byTable) for (const id of ids) addTo(this.changedDuringCopy, table, id);
      for (const [table, ids] of byTable) await this.snapshot.refreshRows(this.primary, table, [...ids], started);
      this.advanceFloor(started);
      // Everything committed before this poll began is in the copy now, but for gaps still open (counted as unseen).
      if (rows.length < FEED_BATCH) this.snapshot.syncedAt = started;
    } catch (error) {
      this.noteFailure(error, 'reading the change feed');
    } finally {
      this.polling = false;
    }
  }

  /**
   * The whole copy again (at start, and now and then as a safety net under the
   * feed), written in slices beside the copy in use and swapped in at the end
   * (FallbackSnapshot.copyFrom). The feed goes on meanwhile; the rows it named
   * during the copy may have been read before they changed, so they are
   * brought up to date again in the new copy. A copy finished after the node
   * began signing in from the snapshot is dropped: the copy in use then holds
   * the outage's own writes.
   */
  async fullCopy(): Promise<void> {
    if (!this.primary || !this.snapshot || this.changedDuringCopy) return;
    const at = this.options.clock.now();
    const changed = new Map<FedTable, Set<string>>();
    this.changedDuringCopy = changed;
    try {
      if (!(await this.snapshot.copyFrom(this.primary, at, { swapIf: () => this.mode === 'primary' }))) return;
      this.lastFullCopy = at;
      for (const [table, ids] of changed) await this.snapshot.refreshRows(this.primary, table, [...ids], this.options.clock.now());
    } finally {
      this.changedDuringCopy = undefined;
    }
  }

  /** Tries the database; when it answers, replays the journal and goes back to it. */
  async probeOnce(): Promise<void> {
    if (this.mode !== 'fallback' || !this.primary || this.probing) return;
    this.probing = true;
    try {
      await sql`select 1`.execute(this.primary);
      await this.replay();
    } catch (error) {
      if (!this.isOutage(error)) this.options.onBackgroundError?.(error as Error, 'probing the database');
    } finally {
      this.probing = false;
    }
  }

  /**
   * Replays the journal into the database in the order it was written, a
   * group of entries per transaction with their ids in `outage_replays` (the
   * same transaction): an entry already there (a crash between commit and
   * forgetting it, or a second node replaying a shared journal) is skipped, so
   * nothing is applied twice. Statements keep going to the snapshot (and the
   * journal's tail) until the journal is empty, so a later change (a
   * revocation) never lands before an earlier one (the session it revokes),
   * and a sign-in never reads state older than what this node journaled (a
   * code used during the outage stays used).
   */
  replay(): Promise<void> {
    this.replaying ??= this.drain().finally(() => {
      this.replaying = undefined;
    });
    return this.replaying;
  }

  private async drain(): Promise<void> {
    const primary = this.primary;
    if (!primary) return;
    if (this.mode === 'fallback') this.setMode('replaying');
    const journal = this.options.journal;
    const group = Math.max(1, this.options.replayGroup ?? REPLAY_GROUP);
    const share = Math.min(1, Math.max(0.05, this.options.replayShare ?? REPLAY_SHARE));
    try {
      for (;;) {
        const batch = journal.head(group);
        if (batch.length === 0) break;
        const started = performance.now();
        const done = await this.applyGroup(primary, batch);
        // Forgotten a group at a time (one fsync); a group the database went away in is offered again whole.
        journal.remove(done);
        // Replay shares the cores with the sign-ins it must not starve (measured: one transaction per
        // entry made Argon2 checks several times slower and the hashing pool shed half the sign-ins):
        // after each group it rests in proportion, so it takes at most `share` of the time.
        await rest(((performance.now() - started) * (1 - share)) / share);
      }
      // Empty, checked in the same turn as the switch: nothing is appended in between.
      if (journal.depth === 0 && this.mode !== 'primary') {
        this.downSince = 0;
        this.setMode('primary');
      }
    } catch (error) {
      if (this.isOutage(error)) {
        if (this.mode === 'replaying') this.setMode('fallback', (error as Error).message);
        return;
      }
      throw error;
    }
  }

  /**
   * Applies a group in one transaction: the ids claimed in one statement
   * (those already applied come back unclaimed and are skipped), then each
   * claimed statement in order, then the commit. A statement the database
   * refuses rolls the whole group back, and the group is applied again one
   * entry per transaction, so the refused entry alone is set aside. Answers
   * the entries dealt with (applied, skipped or set aside).
   */
  private async applyGroup(primary: Db, batch: JournalEntry[]): Promise<number[]> {
    if (batch.length === 1) {
      await this.apply(primary, batch[0]!);
      return [batch[0]!.seq];
    }
    let claimed: Set<string>;
    try {
      claimed = await primary.transaction().execute(async (trx) => {
        const now = this.options.clock.now();
        const rows = await trx
          .insertInto('outage_replays')
          .values(batch.map((entry) => ({ id: entry.id, node: this.options.node, replayed_at: now })))
          .onConflict((oc) => oc.column('id').doNothing())
          .returning('id')
          .execute();
        const ids = new Set(rows.map((row) => row.id));
        for (const entry of batch) {
          if (ids.has(entry.id) && entry.payload.kind === 'sql') await trx.executeQuery(CompiledQuery.raw(entry.payload.sql, entry.payload.parameters));
        }
        return ids;
      });
    } catch (error) {
      if (this.isOutage(error)) throw error;
      const done: number[] = [];
      try {
        for (const entry of batch) {
          await this.apply(primary, entry);
          done.push(entry.seq);
        }
      } finally {
        if (done.length < batch.length) this.options.journal.remove(done);
      }
      return done;
    }
    // The audit log appends in its own transactions (it locks the chain's head); after the claims.
    for (const entry of batch) {
      if (entry.payload.kind === 'audit' && claimed.has(entry.id)) {
        try {
          await this.deferAudit?.(entry.payload.tenantId, entry.payload.entry);
        } catch (error) {
          if (this.isOutage(error)) throw error;
          this.rejected++;
          this.options.onReplayRejected?.(entry, error as Error);
          continue;
        }
      }
      this.replayed++;
    }
    return batch.map((entry) => entry.seq);
  }

  private async apply(primary: Db, entry: JournalEntry): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.applyOnce(primary, entry);
        return;
      } catch (error) {
        // Two nodes replaying at once can deadlock on the same rows: that write is not refused, only unlucky. Tried again.
        if (!isTransient(error) || attempt >= TRANSIENT_ATTEMPTS) throw error;
        await rest(20 * attempt);
      }
    }
  }

  private async applyOnce(primary: Db, entry: JournalEntry): Promise<void> {
    try {
      await primary.transaction().execute(async (trx) => {
        const claimed = await trx
          .insertInto('outage_replays')
          .values({ id: entry.id, node: this.options.node, replayed_at: this.options.clock.now() })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        if (Number(claimed.numInsertedOrUpdatedRows ?? 0n) === 0) return;
        const payload = entry.payload;
        if (payload.kind === 'sql') await trx.executeQuery(CompiledQuery.raw(payload.sql, payload.parameters));
      });
      // The audit log appends in its own transaction (it locks the chain's head); after the claim.
      if (entry.payload.kind === 'audit') await this.deferAudit?.(entry.payload.tenantId, entry.payload.entry);
      this.replayed++;
    } catch (error) {
      if (this.isOutage(error) || isTransient(error)) throw error;
      // A write the database will not take (the user was deleted meanwhile): set aside and reported, never retried forever.
      this.rejected++;
      this.options.onReplayRejected?.(entry, error as Error);
    }
  }

  private schedule(): void {
    const every = (ms: number, task: () => Promise<unknown> | void, what: string) => {
      const timer = setInterval(() => {
        Promise.resolve()
          .then(task)
          .catch((error: unknown) => this.options.onBackgroundError?.(error as Error, what));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.pollMs ?? 1000, () => this.pollOnce(), 'reading the change feed');
    every(this.options.probeMs ?? 1000, () => this.probeOnce(), 'probing the database');
    every(this.options.saveMs ?? 5000, () => this.snapshot?.save(this.options.snapshotFile, this.options.keyRing), 'saving the fallback snapshot');
    every(60_000, () => this.housekeeping(), 'pruning the change feed');
  }

  private async housekeeping(): Promise<void> {
    if (this.mode !== 'primary' || !this.primary) return;
    const now = this.options.clock.now();
    await this.primary
      .deleteFrom('change_feed')
      .where('at', '<', now - FEED_KEEP_MS)
      .execute();
    if (now - this.lastFullCopy >= (this.options.fullCopyMs ?? 15 * 60_000)) await this.fullCopy();
  }

  private async feedHead(): Promise<number> {
    const row = await this.primary!.selectFrom('change_feed')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /** Moves the floor over every sequence number seen, or waited for long enough (a rolled-back transaction's number never comes). */
  private advanceFloor(now: number): void {
    const top = Math.max(this.floor, ...this.seen);
    for (let seq = this.floor + 1; seq <= top; seq++) {
      if (this.seen.has(seq)) continue;
      const since = this.gapSince.get(seq) ?? now;
      this.gapSince.set(seq, since);
    }
    while (this.floor < top) {
      const next = this.floor + 1;
      if (this.seen.has(next) || now - (this.gapSince.get(next) ?? now) >= GAP_PATIENCE_MS) {
        this.seen.delete(next);
        this.gapSince.delete(next);
        this.floor = next;
      } else break;
    }
  }

  private noteFailure(error: unknown, what: string): void {
    if (this.isOutage(error)) this.markDown(error);
    else this.options.onBackgroundError?.(error as Error, what);
  }

  private setMode(mode: DurableMode, reason?: string): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.options.onModeChange?.(mode, reason);
  }
}
