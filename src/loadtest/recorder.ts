/** Records each journey of a load test and sums them up: rates, latencies, failures by reason. */
import type { Kind } from './journeys.ts';

export interface JourneyResult {
  kind: Kind;
  /** ms since the run started, when the journey began and ended. */
  startedMs: number;
  endedMs: number;
  ok: boolean;
  error?: string;
}

export interface Figures {
  offered: number;
  succeeded: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SecondFigures {
  second: number;
  succeeded: number;
  failed: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  failedByKind: Partial<Record<Kind, number>>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Every journey of the run, and the figures drawn from them. */
export class Recorder {
  readonly results: JourneyResult[] = [];
  /** Journeys not started for want of a free user or because too many were in flight: the generator's limit, not the server's. */
  skipped = 0;

  add(result: JourneyResult): void {
    this.results.push(result);
  }

  figures(filter: (r: JourneyResult) => boolean = () => true): Figures {
    const picked = this.results.filter(filter);
    const latencies = picked
      .filter((r) => r.ok)
      .map((r) => r.endedMs - r.startedMs)
      .sort((a, b) => a - b);
    const failed = picked.filter((r) => !r.ok).length;
    return {
      offered: picked.length,
      succeeded: picked.length - failed,
      failed,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
    };
  }

  errors(): [string, number][] {
    const counts = new Map<string, number>();
    for (const r of this.results) if (!r.ok) counts.set(r.error ?? 'failed', (counts.get(r.error ?? 'failed') ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1]);
  }

  /** Per second of the run, by when journeys ended: what a dashboard would have shown. */
  timeline(seconds: number): SecondFigures[] {
    const buckets = Array.from({ length: seconds }, () => [] as JourneyResult[]);
    for (const r of this.results) buckets[Math.min(seconds - 1, Math.floor(r.endedMs / 1000))]?.push(r);
    return buckets.map((rs, second) => {
      const latencies = rs
        .filter((r) => r.ok)
        .map((r) => r.endedMs - r.startedMs)
        .sort((a, b) => a - b);
      const failedByKind: Partial<Record<Kind, number>> = {};
      for (const r of rs) if (!r.ok) failedByKind[r.kind] = (failedByKind[r.kind] ?? 0) + 1;
      const failed = rs.filter((r) => !r.ok).length;
      return {
        second,
        succeeded: rs.length - failed,
        failed,
        p50Ms: round(percentile(latencies, 50)),
        p90Ms: round(percentile(latencies, 90)),
        p99Ms: round(percentile(latencies, 99)),
        failedByKind,
      };
    });
  }
}
