/** Notices wait their turn, a few at a time, so they never take the email channel from sign-in codes. */

/**
 * Work that may wait, run `inFlight` at a time in arrival order, with at most
 * `limit` waiting. A security notice is such work: it goes through the same
 * providers as the codes people are waiting for at a sign-in page, and a batch
 * of them (an administrator resetting a department, a first day of new hires
 * registering) sent all at once would queue each code behind them in the SMTP
 * pool until it timed out, and the timeouts would open the provider's breaker
 * for codes too. Notices are not urgent; codes are.
 */
export class NoticeBacklog {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly inFlight: number,
    private readonly limit: number,
  ) {}

  /** How many are waiting for their turn (not counting those running). */
  get size(): number {
    return this.waiting.length;
  }

  /** Runs `work` in its turn; `undefined` without running it when the backlog is full. */
  async run<T>(work: () => Promise<T>): Promise<T | undefined> {
    if (this.running >= this.inFlight) {
      if (this.waiting.length >= this.limit) return undefined;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      // The turn passes straight to the next waiter, which keeps `running` as it is.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
