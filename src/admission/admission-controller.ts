import { AppError } from '../errors/app-error.ts';

/**
 * What a request is for, from most to least important when the node is full:
 * finishing a sign-in already past the password, starting one, self-service,
 * then administration and reporting. Health, readiness and metrics ("ops")
 * are never held back.
 */
export type AdmissionClass = 'ops' | 'finish-signin' | 'start-signin' | 'self-service' | 'admin';

const PRIORITY: Record<Exclude<AdmissionClass, 'ops'>, number> = { 'finish-signin': 3, 'start-signin': 2, 'self-service': 1, admin: 0 };

export interface AdmissionOptions {
  /** Requests worked on at once. */
  limit: number;
  /** Requests that may wait for a slot; beyond it the least important is refused at once. */
  queueLimit: number;
  /** The longest a request waits for a slot before it is refused. */
  maxWaitMs: number;
}

export interface AdmissionEvents {
  admitted?(cls: AdmissionClass, waitedMs: number): void;
  shed?(cls: AdmissionClass, tenant: string, why: 'queue-full' | 'evicted' | 'timed-out'): void;
}

// Weight of the newest sample in the moving average of slot hold times.
const EWMA_WEIGHT = 0.2;

interface Waiter {
  cls: Exclude<AdmissionClass, 'ops'>;
  tenant: string;
  enqueuedAt: number;
  admit: () => void;
  refuse: (err: AppError) => void;
  timer: NodeJS.Timeout;
}

export type Release = () => void;

const NOTHING_TO_RELEASE: Release = () => {};

/**
 * Admission control: a concurrency limit with a bounded, prioritised queue and
 * a maximum wait, so that overload is answered at once with 503 and
 * Retry-After instead of by timeouts. Within a class, tenants take turns, so
 * one tenant's surge cannot crowd out the others while they wait.
 */
export class AdmissionController {
  private inFlight = 0;
  private queued = 0;
  /** Moving average of how long a request holds a slot, to predict the wait of a new one. */
  private holdMs = 0;
  // Per priority: tenant → its waiters in arrival order, and whose turn is next.
  private readonly queues = new Map<number, Map<string, Waiter[]>>();

  constructor(
    private readonly options: AdmissionOptions,
    private readonly events: AdmissionEvents = {},
  ) {}

  get state(): { inFlight: number; queued: number; limit: number } {
    return { inFlight: this.inFlight, queued: this.queued, limit: this.options.limit };
  }

  /**
   * Waits for a slot; the returned function gives it back. Throws a 503 problem
   * when refused. A request whose client goes away (`signal`) leaves the queue
   * without ever running.
   */
  admit(cls: AdmissionClass, tenant: string, signal?: AbortSignal): Promise<Release> {
    if (cls === 'ops') return Promise.resolve(NOTHING_TO_RELEASE);
    if (this.inFlight < this.options.limit && this.queued === 0) {
      this.inFlight++;
      this.events.admitted?.(cls, 0);
      return Promise.resolve(this.releaser(Date.now()));
    }
    // Refuse at once what would be refused later anyway: when the predicted
    // wait (everyone ahead, served `limit` at a time) comes near the maximum
    // wait, waiting would only make the refusal slower. Half the
    // maximum leaves room for the prediction's error under a surge.
    const predictedWaitMs = ((this.queuedAtOrAbove(PRIORITY[cls]) + 1) * this.holdMs) / this.options.limit;
    if (this.queued >= this.options.queueLimit || predictedWaitMs > this.options.maxWaitMs / 2) {
      const victim = this.lowestBelow(PRIORITY[cls]);
      if (!victim) {
        this.events.shed?.(cls, tenant, 'queue-full');
        return Promise.reject(busy());
      }
      this.remove(victim);
      this.events.shed?.(victim.cls, victim.tenant, 'evicted');
      victim.refuse(busy());
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        cls,
        tenant,
        enqueuedAt: Date.now(),
        admit: () => {
          clearTimeout(waiter.timer);
          this.inFlight++;
          this.events.admitted?.(cls, Date.now() - waiter.enqueuedAt);
          resolve(this.releaser(Date.now()));
        },
        refuse: (err) => {
          clearTimeout(waiter.timer);
          reject(err);
        },
        timer: setTimeout(() => {
          this.remove(waiter);
          this.events.shed?.(cls, tenant, 'timed-out');
          reject(busy());
        }, this.options.maxWaitMs),
      };
      this.enqueue(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          this.remove(waiter);
          waiter.refuse(new AppError('unavailable', 'the client went away', {}, 1));
        },
        { once: true },
      );
    });
  }

  private releaser(admittedAt: number): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      const held = Date.now() - admittedAt;
      this.holdMs = this.holdMs === 0 ? held : this.holdMs + EWMA_WEIGHT * (held - this.holdMs);
      this.pump();
    };
  }

  private queuedAtOrAbove(priority: number): number {
    let count = 0;
    for (const [p, byTenant] of this.queues) if (p >= priority) for (const list of byTenant.values()) count += list.length;
    return count;
  }

  private pump(): void {
    while (this.inFlight < this.options.limit && this.queued > 0) {
      const next = this.highest();
      if (!next) return;
      this.remove(next);
      next.admit();
    }
  }

  private enqueue(waiter: Waiter): void {
    const priority = PRIORITY[waiter.cls];
    let byTenant = this.queues.get(priority);
    if (!byTenant) this.queues.set(priority, (byTenant = new Map()));
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

  /** The first waiter of the most important class; tenants take turns (the served tenant moves to the back). */
  private highest(): Waiter | undefined {
    for (const priority of [3, 2, 1, 0]) {
      const byTenant = this.queues.get(priority);
      if (!byTenant || byTenant.size === 0) continue;
      const [tenant, list] = byTenant.entries().next().value as [string, Waiter[]];
      // Map order is insertion order: re-inserting puts this tenant last in the rotation.
      byTenant.delete(tenant);
      byTenant.set(tenant, list);
      return list[0];
    }
    return undefined;
  }

  /** The newest waiter of the least important class below `priority`, to make room for a more important request. */
  private lowestBelow(priority: number): Waiter | undefined {
    for (const p of [0, 1, 2, 3]) {
      if (p >= priority) return undefined;
      const byTenant = this.queues.get(p);
      if (!byTenant || byTenant.size === 0) continue;
      // From the tenant with the most waiting: the surge gives way first.
      const longest = [...byTenant.values()].reduce((a, b) => (b.length > a.length ? b : a));
      return longest.at(-1);
    }
    return undefined;
  }
}

function busy(): AppError {
  return new AppError('unavailable', 'the service is busy; retry shortly', {}, 1);
}
