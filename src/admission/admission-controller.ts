/** Admission at the door: a lane per request class with a concurrency limit, a bounded queue and a deadline; refused fast with Retry-After. */
import { SHEDDABLE_CLASSES, type AdmissionClass, type SheddableClass } from './admission-class.ts';
import { Bulkhead, type BulkheadEvents, type Release } from './bulkhead.ts';

export type { AdmissionClass } from './admission-class.ts';
export type { Release } from './bulkhead.ts';

export interface AdmissionOptions {
  /** Requests of one class worked on at once. */
  limit: number;
  /** Requests of one class that may wait for a slot. */
  queueLimit: number;
  /** The longest a request waits for a slot before it is refused. */
  maxWaitMs: number;
}

export type AdmissionEvents = BulkheadEvents;

const NOTHING_TO_RELEASE: Release = () => {};

/**
 * Admission at the door, before a request's body is read: one bulkhead (lane)
 * per class, each with its own concurrency limit, queue and measured hold time.
 * A surge of one kind of request fills only its own lane, so a second factor
 * or a first registration never waits behind password sign-ins, and each
 * lane predicts its waits from its own work, not from an average that
 * Argon2id dominates. Within a lane tenants take turns, and no tenant holds
 * more than three quarters of its slots.
 *
 * The expensive work itself (Argon2id) is shed again, by class and tenant,
 * at the hashing pool (`PasswordHasher`), the real bottleneck.
 */
export class AdmissionController {
  private readonly lanes: Record<SheddableClass, Bulkhead>;

  constructor(
    private readonly options: AdmissionOptions,
    events: AdmissionEvents = {},
  ) {
    // A quarter of each lane stays for the other tenants: one tenant's surge of
    // slow requests cannot fill the lane and make everyone else queue behind it.
    const lane = { ...options, tenantLimit: Math.max(1, Math.ceil((options.limit * 3) / 4)) };
    this.lanes = Object.fromEntries(SHEDDABLE_CLASSES.map((cls) => [cls, new Bulkhead(lane, events)])) as Record<SheddableClass, Bulkhead>;
  }

  /** Totals over every lane, and each lane's own figures. `limit` is per lane. */
  get state(): { inFlight: number; queued: number; limit: number; classes: Record<SheddableClass, { inFlight: number; queued: number }> } {
    let inFlight = 0;
    let queued = 0;
    const classes = {} as Record<SheddableClass, { inFlight: number; queued: number }>;
    for (const cls of SHEDDABLE_CLASSES) {
      const lane = this.lanes[cls].state;
      classes[cls] = { inFlight: lane.running, queued: lane.queued };
      inFlight += lane.running;
      queued += lane.queued;
    }
    return { inFlight, queued, limit: this.options.limit, classes };
  }

  /**
   * Waits for a slot in the class's lane; the returned function gives it back.
   * Throws a 503 problem when refused. A request whose client goes away
   * (`signal`) leaves the queue without ever running.
   */
  admit(cls: AdmissionClass, tenant: string, signal?: AbortSignal): Promise<Release> {
    if (cls === 'ops') return Promise.resolve(NOTHING_TO_RELEASE);
    return this.lanes[cls].acquire(cls, tenant, { signal });
  }
}
