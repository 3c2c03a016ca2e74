import type { Incident } from './incidents.ts';

const DAY_MS = 86_400_000;

export interface UptimeDay {
  /** Midnight UTC of the day, epoch ms. */
  day: number;
  /** Share of the day (0 to 1) the component was in an incident; for today, of the day so far. */
  down: number;
}

/**
 * A component's last `days` days (oldest first), each with the share of the
 * day covered by its incidents. Overlapping incidents count once.
 */
export function uptimeDays(incidents: Incident[], component: string, now: number, days = 90): UptimeDay[] {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const spans = incidents.filter((i) => i.component === component).map((i) => [i.startedAt, i.endedAt ?? now] as const);
  const result: UptimeDay[] = [];
  for (let d = days - 1; d >= 0; d--) {
    const start = today - d * DAY_MS;
    const end = Math.min(start + DAY_MS, now);
    const clipped = spans
      .map(([a, b]) => [Math.max(a, start), Math.min(b, end)] as const)
      .filter(([a, b]) => b > a)
      .sort((x, y) => x[0] - y[0]);
    let covered = 0;
    let reach = start;
    for (const [a, b] of clipped) {
      if (b <= reach) continue;
      covered += b - Math.max(a, reach);
      reach = b;
    }
    result.push({ day: start, down: end > start ? Math.min(1, covered / (end - start)) : 0 });
  }
  return result;
}
