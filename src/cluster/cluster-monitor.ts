/** A node's heartbeat: announces itself and its load, reads the cluster's view, warns when a node could not be lost. */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { FORGET_AFTER_MS, type Membership, type MemberRecord, type MemberState } from './membership.ts';
import type { LoadWindow } from './load-window.ts';
import { clusterView, type ClusterView } from './headroom.ts';

export interface ClusterSettings {
  /** How often each process announces itself; also the length of a load bucket. */
  heartbeatMs: number;
  /** How far back the peak load is taken. */
  peakWindowMs: number;
}

export interface ClusterMonitorDeps {
  membership: Membership;
  load: LoadWindow;
  clock: Clock;
  /** Password checks this process has run so far (a plain counter on the hot path). */
  checksDone: () => number;
  /** Whether this deployment is meant to be a cluster (shared stores): only then is "would not survive" worth a warning. */
  clustered: boolean;
  logger?: Logger | undefined;
}

/** The peak is read from the durable store every this many heartbeats; in between, only the current load can raise it. */
const PEAK_REFRESH_BEATS = 6;
/** While the cluster stays unable to lose a node, the warning is repeated this often. */
const WARN_AGAIN_MS = 60 * 60_000;

/**
 * This process's side of cluster membership: at each heartbeat it adds the
 * password checks it counted to the shared load window, announces its state,
 * capacity and load, and re-assesses whether the cluster survives losing its
 * largest node, logging a warning when it would not.
 */
export class ClusterMonitor {
  state: MemberState = 'up';
  capacityPerSecond = 0;
  /** The latest assessment, for gauges and pages that must not wait on a store. */
  latest: ClusterView | undefined;
  private lastChecks = 0;
  private lastBeatAt: number | undefined;
  private unrecorded = 0;
  private beats = 0;
  private peak = 0;
  private warnedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  /** Whether this deployment is meant to be a cluster (see ClusterMonitorDeps.clustered). */
  get clustered(): boolean {
    return this.deps.clustered;
  }

  constructor(
    private readonly deps: ClusterMonitorDeps,
    private readonly settings: ClusterSettings,
    private readonly identity: { name: string; node: string },
  ) {}

  /** Starts counting from now; call once the node is about to take traffic. */
  begin(capacityPerSecond: number): void {
    this.capacityPerSecond = capacityPerSecond;
    this.lastChecks = this.deps.checksDone();
    this.lastBeatAt = this.deps.clock.now();
  }

  /** Beats on the wall clock, on bucket boundaries shared by every node. */
  startTimer(): void {
    const schedule = () => {
      if (this.stopped) return;
      const wait = this.settings.heartbeatMs - (Date.now() % this.settings.heartbeatMs) + 5;
      this.timer = setTimeout(() => {
        void this.beat().finally(schedule);
      }, wait);
      this.timer.unref();
    };
    schedule();
  }

  /** One heartbeat; failures are logged and retried at the next one. */
  beat(): Promise<void> {
    this.running ??= this.tick()
      .catch((err: unknown) => this.deps.logger?.warn({ err: { message: (err as Error).message } }, 'cluster heartbeat failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async tick(): Promise<void> {
    const { clock, load, membership } = this.deps;
    const now = clock.now();
    const checks = this.deps.checksDone();
    const counted = checks - this.lastChecks;
    const seconds = Math.max(1, now - (this.lastBeatAt ?? now - this.settings.heartbeatMs)) / 1000;
    this.lastChecks = checks;
    this.lastBeatAt = now;
    // The interval that just ended; half a bucket back absorbs timer lateness.
    const bucket = load.bucketOf(now - this.settings.heartbeatMs / 2);
    this.unrecorded += counted;
    try {
      await load.add(bucket, this.unrecorded);
      this.unrecorded = 0;
    } catch (err) {
      this.deps.logger?.warn({ err: { message: (err as Error).message } }, 'could not record the load; kept for the next heartbeat');
    }
    await membership.announce(this.record(now, counted / seconds));
    if (this.beats++ % PEAK_REFRESH_BEATS === 0) {
      this.peak = await load.peakPerSecond(now - this.settings.peakWindowMs);
      await load.prune(now - this.settings.peakWindowMs);
      await membership.prune(now - FORGET_AFTER_MS);
    }
    const view = await this.currentView(now);
    // Between reads of the store, the load just seen can only raise the peak.
    this.peak = Math.max(this.peak, view.peakLoadPerSecond);
    this.assess(view);
  }

  /** The cluster now: every member's latest heartbeat and the peak of the window. */
  async view(): Promise<ClusterView> {
    return this.currentView(this.deps.clock.now());
  }

  /** Announces a change of state (draining on shutdown) at once, not at the next beat. */
  async announceState(state: MemberState): Promise<void> {
    this.state = state;
    await this.deps.membership.announce(this.record(this.deps.clock.now(), 0));
  }

  /** Stops beating and says so: the node shows as down until it is forgotten. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.announceState('down').catch(() => {});
  }

  private record(now: number, loadPerSecond: number): MemberRecord {
    return {
      name: this.identity.name,
      node: this.identity.node,
      state: this.state,
      capacityPerSecond: this.capacityPerSecond,
      loadPerSecond: Math.round(loadPerSecond * 10) / 10,
      lastSeen: now,
      heartbeatMs: this.settings.heartbeatMs,
    };
  }

  private async currentView(now: number): Promise<ClusterView> {
    return clusterView(await this.deps.membership.members(now - FORGET_AFTER_MS), this.peak, now);
  }

  private assess(view: ClusterView): void {
    const was = this.latest;
    this.latest = view;
    if (!this.deps.clustered || view.survivesNodeLoss) {
      if (this.warnedAt !== undefined && this.deps.clustered)
        this.deps.logger?.info(
          { capacityAfterLossPerSecond: view.capacityAfterLossPerSecond, peakLoadPerSecond: view.peakLoadPerSecond },
          'the cluster survives losing its largest node again',
        );
      this.warnedAt = undefined;
      return;
    }
    const now = this.deps.clock.now();
    if (this.warnedAt !== undefined && now - this.warnedAt < WARN_AGAIN_MS && was && !was.survivesNodeLoss) return;
    this.warnedAt = now;
    this.deps.logger?.warn(
      {
        alert: 'cluster-headroom',
        nodesUp: view.nodes.filter((n) => n.state === 'up').length,
        capacityPerSecond: view.capacityPerSecond,
        capacityAfterLossPerSecond: view.capacityAfterLossPerSecond,
        peakLoadPerSecond: view.peakLoadPerSecond,
      },
      'the cluster would not survive losing its largest node at its observed peak: add a node or capacity before changing anything',
    );
  }
}
