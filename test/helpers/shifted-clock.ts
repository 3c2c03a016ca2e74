import type { Clock } from '../../src/clock.ts';

/**
 * Real time, moved on by hand. For tests where something on the other side
 * keeps time of its own (a browser's timers, a stream that renews a mark every
 * few seconds): a frozen clock jumped back to the wall clock later can land
 * past every mark those timers set, as if they had all stopped at once.
 */
export class ShiftedClock implements Clock {
  private shift = 0;
  now(): number {
    return Date.now() + this.shift;
  }
  advance(ms: number): void {
    this.shift += ms;
  }
  /** Back to the wall clock: what the browsers' own codes are computed from. */
  reset(): void {
    this.shift = 0;
  }
}
