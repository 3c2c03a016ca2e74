export type Slice = 'canary' | 'stable';

/** What one slice did since the canary began: the health signals compared by the judge. */
export interface SliceStats {
  requests: number;
  /** 5xx other than 503. */
  serverErrors: number;
  /** 503: refused by admission, a store away, no usable method. */
  unavailable: number;
  /** Sign-in requests by step (the admission class: start-signin, finish-signin, ...): how many, how many failed. */
  steps: Record<string, { total: number; failed: number }>;
  deliveries: { attempts: number; failures: number };
  breakerOpens: number;
  /** Recent response times, ms (the newest LATENCY_SAMPLES). */
  latenciesMs: number[];
}

const LATENCY_SAMPLES = 2000;
const emptyStats = (): SliceStats => ({
  requests: 0,
  serverErrors: 0,
  unavailable: 0,
  steps: {},
  deliveries: { attempts: 0, failures: 0 },
  breakerOpens: 0,
  latenciesMs: [],
});

/**
 * Health of the canary slice and of the rest, counted per comparison (`node`
 * for every request, `tenant:{slug}` for a tenant whose policy is on a
 * canary) while a canary bakes. In memory, per node: at each judging round
 * the node publishes these counts (`SliceTally`) and the judge compares the
 * sum over every node.
 */
export class SliceHealth {
  private readonly stats = new Map<string, Record<Slice, SliceStats>>();

  /** Starts (or restarts) counting for a comparison. */
  begin(key: string): void {
    this.stats.set(key, { canary: emptyStats(), stable: emptyStats() });
  }

  end(key: string): void {
    this.stats.delete(key);
  }

  watching(key: string): boolean {
    return this.stats.has(key);
  }

  snapshot(key: string): Record<Slice, SliceStats> | undefined {
    return this.stats.get(key);
  }

  /** One answered request; `step` is its admission class. */
  request(key: string, slice: Slice, status: number, ms: number, step: string): void {
    {
      const s = this.stats.get(key)?.[slice];
      if (!s) return;
      s.requests++;
      if (status === 503) s.unavailable++;
      else if (status >= 500) s.serverErrors++;
      if (step.includes('signin')) {
        const st = (s.steps[step] ??= { total: 0, failed: 0 });
        st.total++;
        // A wrong password is the user's, and happens in both slices alike; what the slices are compared on is the rate.
        if (status >= 300) st.failed++;
      }
      s.latenciesMs.push(ms);
      if (s.latenciesMs.length > LATENCY_SAMPLES) s.latenciesMs.splice(0, s.latenciesMs.length - LATENCY_SAMPLES);
    }
  }

  /** A sign-in step's outcome as the sign-in recorded it (a 200 can still be a sign-in that did not go through). */
  signinStep(key: string, slice: Slice, step: string, failed: boolean): void {
    const s = this.stats.get(key)?.[slice];
    if (!s) return;
    const st = (s.steps[step] ??= { total: 0, failed: 0 });
    st.total++;
    if (failed) st.failed++;
  }

  delivery(key: string, slice: Slice, ok: boolean): void {
    const s = this.stats.get(key)?.[slice];
    if (!s) return;
    s.deliveries.attempts++;
    if (!ok) s.deliveries.failures++;
  }

  breakerOpened(key: string, slice: Slice): void {
    const s = this.stats.get(key)?.[slice];
    if (s) s.breakerOpens++;
  }
}
