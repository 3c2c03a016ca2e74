/** Notices wait their turn, a few at a time and tenants in turns, so they never take the email channel from sign-in codes. */

export interface NoticeBacklogLimits {
  /** Run at once. */
  inFlight: number;
  /** Waiting at most, all tenants together. */
  waiting: number;
  /** Waiting at most for one tenant: one tenant's flood leaves room for everyone else's. */
  waitingPerTenant: number;
}

/** What became of a piece of work: run (with its value), or not, because the backlog was full or closed. */
export type Turn<T> = { ran: true; value: T } | { ran: false; why: 'full' | 'closed' };

interface Waiter {
  go: () => void;
  abandon: () => void;
}

/**
 * Work that may wait, run `inFlight` at a time. A security notice is such
 * work: it goes through the same providers as the codes people are waiting
 * for at a sign-in page, and a batch of them (an administrator resetting a
 * department, a first day of new hires registering) sent all at once would
 * queue each code behind them in the SMTP pool until it timed out, and the
 * timeouts would open the provider's breaker for codes too. Notices are not
 * urgent; codes are.
 *
 * Tenants take turns, each in arrival order: another tenant's flood of
 * notices delays one tenant's by one turn per tenant waiting, not by the
 * whole flood (round 28: 74 waiting from one tenant put another's 16 s
 * back). Closing abandons whatever still waits, and says how much.
 */
export class NoticeBacklog {
  private running = 0;
  private closed = false;
  // Tenant → its waiters in arrival order. Map order is the tenants' turn order.
  private readonly queues = new Map<string, Waiter[]>();
  private count = 0;

  constructor(private readonly limits: NoticeBacklogLimits) {}

  /** How many are waiting for their turn (not counting those running). */
  get size(): number {
    return this.count;
  }

  /** Runs `work` in its tenant's turn; refuses it without running when the backlog (or the tenant's part) is full, or closed. */
  async run<T>(tenant: string, work: () => Promise<T>): Promise<Turn<T>> {
    if (this.closed) return { ran: false, why: 'closed' };
    if (this.running >= this.limits.inFlight) {
      const own = this.queues.get(tenant);
      if (this.count >= this.limits.waiting || (own?.length ?? 0) >= this.limits.waitingPerTenant) return { ran: false, why: 'full' };
      const started = await new Promise<boolean>((resolve) => {
        const waiter = { go: () => resolve(true), abandon: () => resolve(false) };
        if (own) own.push(waiter);
        else this.queues.set(tenant, [waiter]);
        this.count++;
      });
      if (!started) return { ran: false, why: 'closed' };
    } else {
      this.running++;
    }
    try {
      return { ran: true, value: await work() };
    } finally {
      // The tenant that just had a turn goes to the back; the turn passes straight to the next waiter, which
      // keeps `running` as it is.
      const own = this.queues.get(tenant);
      if (own) {
        this.queues.delete(tenant);
        this.queues.set(tenant, own);
      }
      const next = this.next();
      if (next) next.go();
      else this.running--;
    }
  }

  /** Takes nothing more, and abandons every waiter (each `run` answers `closed`); how many there were. */
  close(): number {
    this.closed = true;
    const abandoned = this.count;
    for (const list of this.queues.values()) for (const waiter of list) waiter.abandon();
    this.queues.clear();
    this.count = 0;
    return abandoned;
  }

  /** The first waiter of the tenant whose turn it is; that tenant goes to the back. */
  private next(): Waiter | undefined {
    for (const [tenant, list] of this.queues) {
      const waiter = list.shift()!;
      this.queues.delete(tenant);
      if (list.length > 0) this.queues.set(tenant, list);
      this.count--;
      return waiter;
    }
    return undefined;
  }
}
