import type { SliceStats } from './slice-health.ts';

export interface JudgeThresholds {
  /** Requests (or sends) the canary must have served before a rate says anything. */
  minSamples: number;
  /** A rate must be worse by at least this much (0.10: ten points)... */
  minRateIncrease: number;
  /** ...and the difference this many standard errors (a two-proportion z-test). */
  minZ: number;
  /** p99 counts as a regression above this multiple of the rest's and at least this much slower. */
  p99Factor: number;
  p99MinIncreaseMs: number;
  /** Latencies each slice must have before p99 is compared: below 100 a "p99" is the slowest request, one GC pause. */
  minLatencySamples: number;
  /** Canary requests that must be that slow: a latency regression shows in several requests, a hiccup in one. */
  minSlowRequests: number;
}

export const DEFAULT_THRESHOLDS: JudgeThresholds = {
  minSamples: 10,
  minRateIncrease: 0.1,
  minZ: 3,
  p99Factor: 2,
  p99MinIncreaseMs: 250,
  minLatencySamples: 100,
  minSlowRequests: 5,
};

export interface Verdict {
  regressed: boolean;
  /** Each regression found, in words for the history, the audit log and the alert. */
  reasons: string[];
}

/**
 * Compares the canary slice with the rest on the signals Steadfast already
 * has: sign-in failures by step, 5xx and 503 rates, p99, delivery failures,
 * breaker opens. A regression is a rate worse by a clear margin (ten points)
 * and unlikely to be chance (z ≥ 3), so one unlucky user does not roll back
 * a good version; when the rest served too little to compare with, the
 * canary alone must look bad (half its requests failing).
 */
export function judgeCanary(canary: SliceStats, stable: SliceStats, t: JudgeThresholds = DEFAULT_THRESHOLDS): Verdict {
  const reasons: string[] = [];
  const rate = (what: string, badC: number, nC: number, badS: number, nS: number) => {
    if (nC < t.minSamples) return;
    const pC = badC / nC;
    const enoughRest = nS >= t.minSamples;
    const pS = enoughRest ? badS / nS : 0;
    const diff = pC - pS;
    if (diff < t.minRateIncrease) return;
    if (enoughRest) {
      const pooled = (badC + badS) / (nC + nS);
      const se = Math.sqrt(pooled * (1 - pooled) * (1 / nC + 1 / nS));
      if (se > 0 && diff / se < t.minZ) return;
    } else if (pC < 0.5) return;
    reasons.push(`${what}: ${pct(pC)} on the canary against ${enoughRest ? pct(pS) : 'too few requests'} on the rest (${badC} of ${nC})`);
  };

  for (const [step, c] of Object.entries(canary.steps)) {
    const s = stable.steps[step] ?? { total: 0, failed: 0 };
    rate(`${step} failures`, c.failed, c.total, s.failed, s.total);
  }
  rate('5xx rate', canary.serverErrors, canary.requests, stable.serverErrors, stable.requests);
  rate('503 rate', canary.unavailable, canary.requests, stable.unavailable, stable.requests);
  rate('delivery failures', canary.deliveries.failures, canary.deliveries.attempts, stable.deliveries.failures, stable.deliveries.attempts);
  if (canary.breakerOpens > 0 && stable.breakerOpens === 0)
    reasons.push(`provider breakers opened ${canary.breakerOpens} time(s) on the canary and never on the rest`);
  if (canary.latenciesMs.length >= t.minLatencySamples && stable.latenciesMs.length >= t.minLatencySamples) {
    const pc = p99(canary.latenciesMs);
    const ps = p99(stable.latenciesMs);
    const slowerThan = Math.max(ps * t.p99Factor, ps + t.p99MinIncreaseMs);
    const slow = canary.latenciesMs.filter((ms) => ms > slowerThan).length;
    if (pc > slowerThan && slow >= t.minSlowRequests) reasons.push(`p99 ${Math.round(pc)} ms on the canary against ${Math.round(ps)} ms on the rest`);
  }
  return { regressed: reasons.length > 0, reasons };
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

const pct = (p: number) => `${(p * 100).toFixed(1)}%`;
