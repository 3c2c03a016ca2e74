/** A bounded pool for expensive work (Argon2id): a short queue ranked by class, shared by tenants in turns. */
import { AppError } from '../errors/app-error.ts';
import { PRIORITY, type WorkClass } from './admission-class.ts';

export interface BulkheadOptions {
  /** Units of work at once. */
  limit: number;
  /** Waiters at most; beyond it a less deserving waiter gives up its place, or the newcomer is refused. */
  queueLimit: number;
  /** The longest a waiter waits for its turn before it is refused. */
  maxWaitMs: number;
  /**
   * Slots one tenant may hold at once (default: all). Below the limit, it
   * keeps room that a surging tenant cannot take, so another tenant's request
   * starts at once instead of queueing behind work that holds its slot long.
   */
  tenantLimit?: number;
  /**
   * Slots beyond the limit that only a tenant with nothing running may take
   * (default none). With every slot busy with one tenant's surge, another
   * tenant's request starts at once instead of waiting for one to free: on a
   * saturated pool the extra work only shares the cores a little more finely,
   * and the other tenant is answered in about its usual time.
   */
  spare?: number;
}

/**
 * Why a request was refused: `queue-full` at once (no place, or its predicted
 * wait too long), `evicted` from the queue for a more deserving one,
 * `timed-out` after waiting the maximum.
 */
export type ShedReason = 'queue-full' | 'evicted' | 'timed-out';

export interface BulkheadEvents {
  admitted?(cls: WorkClass, waitedMs: number): void;
  shed?(cls: WorkClass, tenant: string, why: ShedReason): void;
}

export interface AcquireOptions {
  /** The client went away: leave the queue without ever running. */
  signal?: AbortSignal | undefined;
  /**
   * Part of a request already let in (its second hash, its tenth recovery
   * code), or work from no request at all: it waits its turn but is never
   * refused for load, since refusing it would waste what was already done.
   */
  committed?: boolean | undefined;
  /** Told at once (before the returned promise settles) when the work is let in, to run or to wait. */
  onLetIn?: (() => void) | undefined;
  /**
   * Told when the work takes its slot, whether its tenant still has more of
   * its own waiting then: a tenant asking for more than the pool gives it (a
   * surge), whose work may run at a lower priority than others'.
   */
  onStart?: ((backlogged: boolean) => void) | undefined;
}

export type Release = () => void;

interface Waiter {
  cls: WorkClass;
  tenant: string;
  committed: boolean;
  enqueuedAt: number;
  admit: () => void;
  refuse: (err: AppError) => void;
}

// Another tenant that started work this recently still counts as having work (see start()).
const OTHERS_RECENT_MS = 5000;
// Weight of the newest sample in the moving average of hold times.
const EWMA_WEIGHT = 0.2;
const RANKS = [...new Set(Object.values(PRIORITY))].sort((a, b) => b - a);

/**
 * A concurrency limit with a bounded queue that is fair twice over: the most
 * important class goes first, and within a rank tenants take turns, so one
 * tenant's surge gets one turn in as many as there are tenants waiting.
 *
 * Overload is answered at once, not by timeouts: a newcomer whose predicted
 * wait (the waiters that will really go before it, given its rank and its
 * tenant's turns, times the measured hold time) comes near the maximum is
 * refused on arrival; one tenant's waiters take at most three quarters of
 * the queue; when the queue is full, the least deserving waiter (a lower
 * class, or a tenant holding more than its share) gives up its place, the
 * newest first, so the one refused has waited least.
 */
export class Bulkhead {
  private running = 0;
  private queued = 0;
  /** Moving average of how long a unit of work holds its slot. */
  private holdMs = 0;
  private lastActiveAt = 0;
  /** When each tenant last started work, kept for OTHERS_RECENT_MS. */
  private readonly lastStartByTenant = new Map<string, number>();
  private readonly runningByTenant = new Map<string, number>();
  // Rank → tenant → its waiters in arrival order. Map order is the tenants' turn order.
  private readonly queues = new Map<number, Map<string, Waiter[]>>();

  constructor(
    private readonly options: BulkheadOptions,
    private readonly events: BulkheadEvents = {},
  ) {}

  get state(): { running: number; queued: number; limit: number } {
    return { running: this.running, queued: this.queued, limit: this.options.limit };
  }

  /** How long nothing has held a slot (0 while something does): work that comes in bursts is still "busy" between them. */
  get idleForMs(): number {
    return this.running > 0 || this.queued > 0 ? 0 : Date.now() - this.lastActiveAt;
  }

  /** Waits for a slot; the returned function gives it back. Throws a 503 problem when refused. */
  acquire(cls: WorkClass, tenant: string, options: AcquireOptions = {}): Promise<Release> {
    if (options.signal?.aborted) return Promise.reject(clientGone());
    if (this.canStartNow(tenant)) {
      options.onLetIn?.();
      return Promise.resolve(this.start(cls, tenant, 0, options.onStart));
    }
    const committed = options.committed === true;
    if (!committed) {
      const decision = this.decide(cls, tenant);
      if (decision === 'refuse') {
        this.events.shed?.(cls, tenant, 'queue-full');
        return Promise.reject(busy());
      }
      if (decision) {
        this.remove(decision);
        this.events.shed?.(decision.cls, decision.tenant, 'evicted');
        decision.refuse(busy());
      }
    }
    return new Promise<Release>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.remove(waiter);
        waiter.refuse(clientGone());
      };
      const settle = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        cls,
        tenant,
        committed,
        enqueuedAt: Date.now(),
        admit: () => {
          settle();
          resolve(this.start(cls, tenant, Date.now() - waiter.enqueuedAt, options.onStart));
        },
        refuse: (err) => {
          settle();
          reject(err);
        },
      };
      if (!committed) {
        timer = setTimeout(() => {
          this.remove(waiter);
          this.events.shed?.(cls, tenant, 'timed-out');
          waiter.refuse(busy());
        }, this.maxWaitFor());
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.enqueue(waiter);
      options.onLetIn?.();
      // Slots may be free while everyone queued belongs to tenants at their limit.
      this.pump();
    });
  }

  /**
   * Whether a request of this class and tenant would be let in now, without
   * queueing it: for refusing at the door work that would be refused at the
   * pool anyway, before anything is spent on it. Counts the refusal.
   */
  refusesAtOnce(cls: WorkClass, tenant: string): boolean {
    if (this.canStartNow(tenant)) return false;
    if (this.decide(cls, tenant) !== 'refuse') return false;
    this.events.shed?.(cls, tenant, 'queue-full');
    return true;
  }

  /** How long a newcomer of this class and tenant would wait, from the waiters that would go before it. */
  predictedWaitMs(cls: WorkClass, tenant: string): number {
    return ((this.aheadOf(cls, tenant) + 1) * this.holdMs) / this.options.limit;
  }

  /** How many waiters would go before a newcomer of this class and tenant. */
  private aheadOf(cls: WorkClass, tenant: string): number {
    const rank = PRIORITY[cls];
    const own = this.queues.get(rank)?.get(tenant)?.length ?? 0;
    const ownRunning = this.runningByTenant.get(tenant) ?? 0;
    let ahead = 0;
    for (const [r, byTenant] of this.queues) {
      if (r < rank) continue;
      for (const [t, list] of byTenant) {
        if (r > rank || t === tenant) ahead += list.length;
        // Within its rank a tenant waits for each other tenant's turns, as many
        // as its own queue plus one, but none for a tenant running more than it.
        else ahead += Math.min(list.length, (this.runningByTenant.get(t) ?? 0) > ownRunning ? own : own + 1);
      }
    }
    return ahead;
  }

  /**
   * The longest a waiter waits: the configured maximum, but never less than
   * about one slot's turn (twice the mean hold time over the limit), so that
   * whoever is next in line is not refused for work that merely holds its
   * slots longer than the maximum (sign-ins waiting for the hashing pool on a
   * loaded machine).
   */
  private maxWaitFor(): number {
    return Math.max(this.options.maxWaitMs, (2 * this.holdMs) / this.options.limit);
  }

  /** `undefined`: take a free place; a waiter: take its place; `refuse`: no place for this one. */
  private decide(cls: WorkClass, tenant: string): Waiter | 'refuse' | undefined {
    // Half the maximum leaves room for the prediction's error and for the more
    // important work that will arrive and go ahead while this one waits.
    // Whoever would be next in line waits its turn.
    const ahead = this.aheadOf(cls, tenant);
    if (ahead > 0 && ((ahead + 1) * this.holdMs) / this.options.limit > this.options.maxWaitMs / 2) return 'refuse';
    // One tenant's waiters take at most three quarters of the queue: the rest is
    // kept for other tenants and more important work, so they seldom have to
    // push anyone out (and whoever is pushed out has waited, so refused slowly).
    const own = this.waitingOf(tenant);
    if (own >= Math.ceil((this.options.queueLimit * 3) / 4)) return this.newestOwnBelow(tenant, PRIORITY[cls]) ?? 'refuse';
    if (this.queued < this.options.queueLimit) return undefined;
    return this.leastDeserving(cls, tenant) ?? 'refuse';
  }

  private waitingOf(tenant: string): number {
    let n = 0;
    for (const byTenant of this.queues.values()) n += byTenant.get(tenant)?.length ?? 0;
    return n;
  }

  /** The tenant's own newest waiter of a lower class, to make room within its share for its more important work. */
  private newestOwnBelow(tenant: string, rank: number): Waiter | undefined {
    for (const r of [...RANKS].reverse()) {
      if (r >= rank) return undefined;
      const victim = this.queues
        .get(r)
        ?.get(tenant)
        ?.findLast((w) => !w.committed);
      if (victim) return victim;
    }
    return undefined;
  }

  /**
   * The waiter to refuse to make room for this newcomer: the newest of a lower
   * class, else the newest of a tenant of the same rank that holds more than
   * the newcomer's tenant would (its waiters there plus its running work, so a
   * tenant already being served gives way first).
   */
  private leastDeserving(cls: WorkClass, tenant: string): Waiter | undefined {
    const rank = PRIORITY[cls];
    for (const r of [...RANKS].reverse()) {
      if (r > rank) return undefined;
      const byTenant = this.queues.get(r);
      if (!byTenant) continue;
      const load = (t: string) => (byTenant.get(t)?.length ?? 0) + (this.runningByTenant.get(t) ?? 0);
      const floor = r < rank ? 0 : load(tenant) + 1;
      let heaviest: { list: Waiter[]; load: number } | undefined;
      for (const [t, list] of byTenant) {
        if (r === rank && t === tenant) continue;
        const l = load(t);
        if (l > floor && l > (heaviest?.load ?? 0) && list.some((w) => !w.committed)) heaviest = { list, load: l };
      }
      const victim = heaviest?.list.findLast((w) => !w.committed);
      if (victim) return victim;
    }
    return undefined;
  }

  private start(cls: WorkClass, tenant: string, waitedMs: number, onStart: AcquireOptions['onStart']): Release {
    // A surge is one tenant wanting more while others have work (or had, moments ago: a quiet tenant's
    // sign-ins come one at a time). A tenant alone on the node is never one, or its own peak would run its
    // hashes below everything else on the host.
    onStart?.(this.waitingOf(tenant) > 0 && this.othersHaveWork(tenant));
    this.lastStartByTenant.set(tenant, Date.now());
    this.running++;
    this.runningByTenant.set(tenant, (this.runningByTenant.get(tenant) ?? 0) + 1);
    this.events.admitted?.(cls, waitedMs);
    const startedAt = Date.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.lastActiveAt = Date.now();
      const left = (this.runningByTenant.get(tenant) ?? 1) - 1;
      if (left === 0) this.runningByTenant.delete(tenant);
      else this.runningByTenant.set(tenant, left);
      const held = Date.now() - startedAt;
      this.holdMs = this.holdMs === 0 ? held : this.holdMs + EWMA_WEIGHT * (held - this.holdMs);
      this.pump();
    };
  }

  private othersHaveWork(tenant: string): boolean {
    // Both maps hold only tenants with work: an entry is deleted when its count or its list reaches none.
    for (const other of this.runningByTenant.keys()) if (other !== tenant) return true;
    for (const byTenant of this.queues.values()) for (const other of byTenant.keys()) if (other !== tenant) return true;
    const now = Date.now();
    for (const [other, at] of this.lastStartByTenant) {
      if (now - at > OTHERS_RECENT_MS) this.lastStartByTenant.delete(other);
      else if (other !== tenant) return true;
    }
    return false;
  }

  private pump(): void {
    while (this.queued > 0) {
      const next = this.next();
      if (!next) return;
      this.remove(next);
      next.admit();
    }
  }

  /**
   * The first waiter of the highest rank, from the tenant with the least work
   * running (ties: whose turn it is) that may take another slot; that tenant
   * goes to the back. A tenant with nothing running goes next, so another
   * tenant's request waits for one slot to free, not for the surge's turn too.
   */
  private next(): Waiter | undefined {
    for (const rank of RANKS) {
      const byTenant = this.queues.get(rank);
      if (!byTenant) continue;
      let chosen: [string, Waiter[]] | undefined;
      let least = Infinity;
      for (const [tenant, list] of byTenant) {
        const running = this.runningByTenant.get(tenant) ?? 0;
        if (running < least && this.mayStart(tenant)) {
          chosen = [tenant, list];
          least = running;
        }
      }
      if (!chosen) continue;
      byTenant.delete(chosen[0]);
      byTenant.set(chosen[0], chosen[1]);
      return chosen[1][0];
    }
    return undefined;
  }

  /** A slot is free for this tenant and nobody who may take it is waiting. */
  private canStartNow(tenant: string): boolean {
    if (!this.mayStart(tenant)) return false;
    if (this.queued === 0) return true;
    for (const byTenant of this.queues.values()) for (const t of byTenant.keys()) if (this.mayStart(t)) return false;
    return true;
  }

  /** Whether this tenant may take a slot now: one under the limit, or a spare one when it has nothing running. */
  private mayStart(tenant: string): boolean {
    if (this.running < this.options.limit) return this.underTenantLimit(tenant);
    return this.running < this.options.limit + (this.options.spare ?? 0) && !this.runningByTenant.has(tenant);
  }

  private underTenantLimit(tenant: string): boolean {
    return this.options.tenantLimit === undefined || (this.runningByTenant.get(tenant) ?? 0) < this.options.tenantLimit;
  }

  private enqueue(waiter: Waiter): void {
    const rank = PRIORITY[waiter.cls];
    let byTenant = this.queues.get(rank);
    if (!byTenant) this.queues.set(rank, (byTenant = new Map()));
    const list = byTenant.get(waiter.tenant);
    if (list) list.push(waiter);
    else byTenant.set(waiter.tenant, [waiter]);
    this.queued++;
  }

  private remove(waiter: Waiter): void {
    const byTenant = this.queues.get(PRIORITY[waiter.cls]);
    const list = byTenant?.get(waiter.tenant);
    const index = list?.indexOf(waiter) ?? -1;
    if (!byTenant || !list || index < 0) return;
    list.splice(index, 1);
    if (list.length === 0) byTenant.delete(waiter.tenant);
    this.queued--;
  }
}

export function busy(): AppError {
  return new AppError('unavailable', 'the service is busy; retry shortly', {}, 1);
}

function clientGone(): AppError {
  return new AppError('unavailable', 'the client went away', {}, 1);
}
