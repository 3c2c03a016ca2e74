import type { Clock } from '../clock.ts';
import type { Incidents } from '../incidents/incidents.ts';
import { judgeCanary, DEFAULT_THRESHOLDS, type JudgeThresholds } from './canary-judge.ts';
import type { ConfigRollouts } from './config-rollouts.ts';
import type { RuntimeConfig } from './runtime-config.ts';
import type { SliceHealth } from './slice-health.ts';
import type { ClusterStats, SliceTally } from './slice-tally.ts';

export interface CanaryDecision {
  scope: string;
  version: number;
  outcome: 'rolled-back' | 'promoted';
  reason: string;
  /** From the version's apply to this decision, ms on the node's clock. */
  afterMs: number;
}

export interface CanaryGuardDeps {
  runtime: RuntimeConfig;
  rollouts: ConfigRollouts;
  health: SliceHealth;
  /** Where the nodes publish their counts and read everyone's: the judge compares cluster-wide figures. */
  tally: SliceTally;
  incidents: Incidents;
  clock: Clock;
  thresholds?: JudgeThresholds;
  /** Tells administrators (an error log line with `alert`, a metric): a canary was rolled back. */
  alert(decision: CanaryDecision): void;
  onPromoted?(decision: CanaryDecision): void;
  onError?(err: unknown, what: string): void;
}

/** How often a node reads the versions and judges its canaries: a bad canary is rolled back well within a minute. */
export const GUARD_INTERVAL_MS = 5_000;

/**
 * Watches every canary this node serves: on each tick it reads the versions
 * (so new ones are taken into use without a restart), publishes what it
 * counted and compares the canary slice with the rest over the whole cluster
 * (`SliceTally`, `judgeCanary`), rolls back a regression at once and
 * promotes a canary that baked clean. The rollback records why in the
 * history (the version's reason) and the audit log, opens (and closes) an
 * incident on the status page for the time the slice was exposed, and alerts.
 */
export class CanaryGuard {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CanaryDecision[]> | undefined;

  constructor(private readonly deps: CanaryGuardDeps) {}

  start(intervalMs = GUARD_INTERVAL_MS): void {
    this.timer ??= setInterval(() => {
      // One tick at a time: a slow store must not stack them up.
      if (!this.running) void this.tick().catch((err: unknown) => this.deps.onError?.(err, 'configuration check'));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    // A node leaving mid-bake leaves what it counted since its last round for the nodes that judge on.
    await this.publish().catch((err: unknown) => this.deps.onError?.(err, 'publishing canary counts'));
  }

  /** Publishes what this node counted for every canary baking, without judging (each round starts with it). */
  async publish(): Promise<void> {
    for (const { scope, key, canary } of this.deps.runtime.baking) {
      const own = this.deps.health.snapshot(key);
      if (own) await this.deps.tally.publish(scope, canary.version, own);
    }
  }

  /** One round: refresh, judge, decide. Tests call it directly, with the clock where they want it. */
  tick(): Promise<CanaryDecision[]> {
    const run = (async () => {
      await this.deps.runtime.refresh();
      const decisions: CanaryDecision[] = [];
      for (const { scope, key, canary } of this.deps.runtime.baking) {
        const stats = await this.clusterStats(scope, canary.version, key);
        const now = this.deps.clock.now();
        const afterMs = now - canary.createdAt;
        const verdict = stats ? judgeCanary(stats.canary, stats.stable, this.deps.thresholds ?? DEFAULT_THRESHOLDS) : { regressed: false, reasons: [] };
        if (verdict.regressed) {
          const reason = `rolled back automatically: ${verdict.reasons.join('; ')}`;
          // Another node that judged the same figures may have decided first: then this one records nothing.
          if (!(await this.deps.rollouts.rollBackCanary(scope, canary.version, { actor: 'system:canary-guard', reason }))) continue;
          const decision: CanaryDecision = { scope, version: canary.version, outcome: 'rolled-back', reason, afterMs };
          decisions.push(decision);
          await this.recordIncident(scope, canary, decision);
          this.deps.alert(decision);
        } else if (afterMs >= canary.bakeSeconds * 1000) {
          const requests = stats ? stats.canary.requests : 0;
          const nodes = stats ? stats.nodes : 0;
          const reason = `promoted after baking ${canary.bakeSeconds} s without regression (${requests} canary requests on ${nodes} node${nodes === 1 ? '' : 's'})`;
          if (!(await this.deps.rollouts.promote(scope, canary.version, reason))) continue;
          const decision: CanaryDecision = { scope, version: canary.version, outcome: 'promoted', reason, afterMs };
          decisions.push(decision);
          this.deps.onPromoted?.(decision);
        }
      }
      if (decisions.length > 0) await this.deps.runtime.refresh();
      return decisions;
    })();
    this.running = run;
    return run.finally(() => {
      if (this.running === run) this.running = undefined;
    });
  }

  /**
   * This node's counts published, then everyone's summed. When the shared
   * store cannot be reached either way, the node judges what it saw itself
   * rather than not at all: a bad canary on it is still rolled back.
   */
  private async clusterStats(scope: string, version: number, key: string): Promise<ClusterStats | undefined> {
    const own = this.deps.health.snapshot(key);
    if (own) await this.deps.tally.publish(scope, version, own).catch((err: unknown) => this.deps.onError?.(err, 'publishing canary counts'));
    try {
      return await this.deps.tally.read(scope, version, own);
    } catch (err) {
      this.deps.onError?.(err, 'reading the cluster canary counts');
      return own ? { ...own, nodes: 1 } : undefined;
    }
  }

  private async recordIncident(scope: string, canary: { version: number; percent: number; createdAt: number }, decision: CanaryDecision): Promise<void> {
    const tenantId = scope.startsWith('tenant:') ? scope.slice('tenant:'.length) : '';
    const what = tenantId ? 'sign-in policy' : 'configuration';
    const incident = await this.deps.incidents.open({
      tenantId,
      component: 'config',
      title: `A ${what} change (version ${canary.version}) failed for some users and was rolled back`,
      advice: 'If a sign-in failed for you in this time, try again: everyone is back on the last good configuration.',
      source: 'auto',
      startedAt: canary.createdAt,
    });
    await this.deps.incidents.update(incident.id, tenantId, { text: `${decision.reason}. ${canary.percent}% of users were on the canary.`, resolved: true });
  }
}
