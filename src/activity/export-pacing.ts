/**
 * How exports yield to the node's requests: while the node is serving
 * requests (sign-ins above all), an export takes at most a share of the time
 * (an eighth by default), pausing between its pages; on an idle node it runs
 * at full speed.
 *
 * Why pauses and not only a lower thread priority: an export's page costs CPU
 * in three places, the report worker (niced), the database server that
 * answers the page query and the main thread that writes the page to the
 * socket. The last two run at the node's priority, and on a node that shares
 * its cores with its database they take them from the hashing threads and
 * the event loop. Pausing between pages bounds all three at once, wherever
 * the database runs. The pause is proportional to the page's own time, so a
 * slower page (a busier machine) pauses longer and the share holds.
 */
export class ExportPacing {
  private readonly share: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly options: {
      /** Whether the node is serving anything besides reports right now. */
      busy: () => boolean;
      /** The share of the time an export may take while the node is busy, (0, 1]. */
      share?: number;
      sleep?: (ms: number) => Promise<void>;
    },
  ) {
    this.share = Math.min(1, Math.max(0.01, options.share ?? DEFAULT_EXPORT_SHARE));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Whether the node is serving anything besides reports right now (exports then pause between pages). */
  busy(): boolean {
    return this.options.busy();
  }

  /** Resolves when the export may fetch its next page, after one that took `pageMs` (wall time). */
  async afterPage(pageMs: number): Promise<void> {
    if (this.share >= 1 || !this.busy()) return;
    const pause = Math.min(MAX_PAUSE_MS, (pageMs * (1 - this.share)) / this.share);
    if (pause >= 1) await this.sleep(pause);
  }
}

/**
 * While the node serves requests, an export takes at most an eighth of the
 * time. At a quarter, sign-ins at 60% of capacity had a p99 1.23x their own
 * without an export on PostgreSQL (1M events, a quiet machine); at an eighth
 * 1.04x. A million-row export alone takes about 9 s, so on a busy node about
 * a minute.
 */
export const DEFAULT_EXPORT_SHARE = 0.125;

/** A page that took very long (a filter that reads far for few rows) never stops its export for more than this at once. */
const MAX_PAUSE_MS = 2000;

/** Never pauses: for a node that serves only reports, and for tests that do not measure pacing. */
export const NO_PACING = new ExportPacing({ busy: () => false });
