import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { DurableFailover } from '../store/fallback/durable-failover.ts';
import type { Admission, AdmissionEvents } from '../admission/admission-controller.ts';
import type { BulkheadEvents } from '../admission/bulkhead.ts';
import type { PasswordHasher } from '../directory/password-hasher.ts';
import type { DeliveryPort } from '../delivery/delivery.ts';
import type { DeliveryEvents } from '../delivery/provider-chain.ts';
import type { ClusterMonitor } from '../cluster/cluster-monitor.ts';

/** The node's Prometheus metrics, on its own registry (several nodes can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly admitted = new Counter({
    name: 'steadfast_admission_admitted_total',
    help: 'Requests admitted, by class',
    labelNames: ['class'],
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'steadfast_admission_shed_total',
    help: 'Requests refused with 503 by admission control, by class, tenant and reason',
    labelNames: ['class', 'tenant', 'reason'],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'steadfast_admission_queue_wait_seconds',
    help: 'Time admitted requests waited for a slot',
    labelNames: ['class'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
    registers: [this.registry],
  });

  readonly hashingAdmitted = new Counter({
    name: 'steadfast_hashing_admitted_total',
    help: 'Argon2id hashes let into the hashing pool, by class',
    labelNames: ['class'],
    registers: [this.registry],
  });
  readonly hashingShed = new Counter({
    name: 'steadfast_hashing_shed_total',
    help: 'Requests refused with 503 by the hashing pool (at the door or at the pool), by class, tenant and reason',
    labelNames: ['class', 'tenant', 'reason'],
    registers: [this.registry],
  });
  readonly hashingWait = new Histogram({
    name: 'steadfast_hashing_wait_seconds',
    help: 'Time hashes waited for a turn in the hashing pool',
    labelNames: ['class'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
    registers: [this.registry],
  });

  readonly breakGlassSignins = new Counter({
    name: 'steadfast_break_glass_signins_total',
    help: 'Sign-ins of break-glass (emergency) accounts; alert on any increase',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly securityNotices = new Counter({
    name: 'steadfast_security_notices_total',
    help: "Security notices (a change to a user's way in, told by email) by action and outcome: sent, no-address, no-channel, capped, failed, backlog-full (too many waiting on this node; dropped), lost-at-shutdown (still waiting when the node stopped)",
    labelNames: ['action', 'outcome'],
    registers: [this.registry],
  });
  readonly deliveryAttempts = new Counter({
    name: 'steadfast_delivery_attempts_total',
    help: 'Sends tried per provider, by outcome: delivered, unavailable (counts against the breaker), rejected (the destination), skipped (breaker open)',
    labelNames: ['channel', 'provider', 'outcome'],
    registers: [this.registry],
  });
  readonly deliverySeconds = new Histogram({
    name: 'steadfast_delivery_seconds',
    help: 'Time a provider took to take or fail a message',
    labelNames: ['channel', 'provider'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
    registers: [this.registry],
  });

  readonly sweptRows = new Counter({
    name: 'steadfast_swept_rows_total',
    help: 'Expired rows removed by the sweeper (retention and expiry), by sweep',
    labelNames: ['sweep'],
    registers: [this.registry],
  });
  readonly sweepProblems = new Counter({
    name: 'steadfast_sweep_problems_total',
    help: 'Sweeps stopped by a problem (an audit chain that does not check out is never pruned); alert on any increase',
    registers: [this.registry],
  });

  readonly configRollbacks = new Counter({
    name: 'steadfast_config_rollbacks_total',
    help: 'Configuration canaries rolled back automatically for a regression, by scope (node, policy); alert on any increase',
    labelNames: ['scope'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'steadfast_' });
  }

  /** Admission events counted here; tenant labels are cut to a bounded set by the caller's slugs. */
  admissionEvents(): AdmissionEvents {
    return {
      admitted: (cls, waitedMs) => {
        this.admitted.inc({ class: cls });
        this.queueWait.observe({ class: cls }, waitedMs / 1000);
      },
      shed: (cls, tenant, why) => this.shed.inc({ class: cls, tenant, reason: why }),
    };
  }

  /** Hashing pool events counted here; tenant labels are the caller's known slugs (or `other`). */
  hashingEvents(): BulkheadEvents {
    return {
      admitted: (cls, waitedMs) => {
        this.hashingAdmitted.inc({ class: cls });
        this.hashingWait.observe({ class: cls }, waitedMs / 1000);
      },
      shed: (cls, tenant, why) => this.hashingShed.inc({ class: cls, tenant, reason: why }),
    };
  }

  /** Delivery attempts counted here; `log` hears of failures and breaker changes, never of message content. */
  deliveryEvents(log: DeliveryEvents): DeliveryEvents {
    return {
      attempt: (channel, provider, outcome, seconds, reason) => {
        this.deliveryAttempts.inc({ channel, provider, outcome });
        if (outcome !== 'skipped') this.deliverySeconds.observe({ channel, provider }, seconds);
        log.attempt(channel, provider, outcome, seconds, reason);
      },
      breaker: (channel, provider, state) => log.breaker(channel, provider, state),
    };
  }

  /** Breaker state per provider (0 closed, 1 half-open, 2 open) and channel availability, read at scrape time. */
  watchDelivery(delivery: DeliveryPort): void {
    const STATE = { closed: 0, 'half-open': 1, open: 2 } as const;
    new Gauge({
      name: 'steadfast_delivery_breaker_state',
      help: 'Circuit breaker of each provider: 0 closed, 1 half-open, 2 open',
      labelNames: ['channel', 'provider'],
      registers: [this.registry],
      collect() {
        for (const [channel, health] of Object.entries(delivery.health())) {
          for (const p of health.providers) this.set({ channel, provider: p.name }, STATE[p.state]);
        }
      },
    });
    new Gauge({
      name: 'steadfast_delivery_channel_available',
      help: 'Whether a channel has a provider that can take a message now (1) or not (0)',
      labelNames: ['channel'],
      registers: [this.registry],
      collect() {
        for (const [channel, health] of Object.entries(delivery.health())) this.set({ channel }, health.state === 'down' ? 0 : 1);
      },
    });
  }

  /** Security notices waiting for their turn on this node, read at scrape time (they go a few at a time, behind codes). */
  watchNotices(notices: { readonly waiting: number }): void {
    new Gauge({
      name: 'steadfast_security_notices_waiting',
      help: 'Security notices waiting for their turn on this node; they are sent a few at a time so codes on the same channel never wait behind them',
      registers: [this.registry],
      collect() {
        this.set(notices.waiting);
      },
    });
  }

  /** Gauges read at scrape time from the controller. */
  watch(admission: Admission, hasher: PasswordHasher): void {
    const state = () => admission.state;
    new Gauge({
      name: 'steadfast_admission_in_flight',
      help: 'Requests being worked on, all classes',
      registers: [this.registry],
      collect() {
        this.set(state().inFlight);
      },
    });
    new Gauge({
      name: 'steadfast_admission_queued',
      help: 'Requests waiting for a slot, all classes',
      registers: [this.registry],
      collect() {
        this.set(state().queued);
      },
    });
    new Gauge({
      name: 'steadfast_admission_class_in_flight',
      help: 'Requests being worked on, by class (each class has its own lane)',
      labelNames: ['class'],
      registers: [this.registry],
      collect() {
        for (const [cls, lane] of Object.entries(state().classes)) this.set({ class: cls }, lane.inFlight);
      },
    });
    new Gauge({
      name: 'steadfast_admission_class_queued',
      help: 'Requests waiting for a slot, by class',
      labelNames: ['class'],
      registers: [this.registry],
      collect() {
        for (const [cls, lane] of Object.entries(state().classes)) this.set({ class: cls }, lane.queued);
      },
    });
    new Gauge({
      name: 'steadfast_admission_limit',
      help: 'Requests of one class worked on at once, at most',
      registers: [this.registry],
      collect() {
        this.set(state().limit);
      },
    });
    new Gauge({
      name: 'steadfast_password_hashing_pending',
      help: 'Argon2id hashes running or waiting',
      registers: [this.registry],
      collect() {
        this.set(hasher.pending);
      },
    });
    new Gauge({
      name: 'steadfast_hashing_running',
      help: 'Argon2id hashes running',
      registers: [this.registry],
      collect() {
        this.set(hasher.pool.state.running);
      },
    });
    new Gauge({
      name: 'steadfast_hashing_queued',
      help: 'Argon2id hashes waiting for a turn',
      registers: [this.registry],
      collect() {
        this.set(hasher.pool.state.queued);
      },
    });
    new Gauge({
      name: 'steadfast_hashing_concurrency',
      help: 'Argon2id hashes run at once, at most',
      registers: [this.registry],
      collect() {
        this.set(hasher.pool.state.limit);
      },
    });
  }

  /** Cluster headroom as of the latest heartbeat (gauges read at scrape time, no store is asked). */
  watchCluster(cluster: ClusterMonitor): void {
    const registers = [this.registry];
    const latest = () => cluster.latest;
    new Gauge({
      name: 'steadfast_node_capacity_per_second',
      help: 'Password sign-ins per second this process can carry (calibrated at start or configured)',
      registers,
      collect() {
        this.set(cluster.capacityPerSecond);
      },
    });
    new Gauge({
      name: 'steadfast_cluster_nodes',
      help: 'Nodes in the cluster by state (up, draining, down)',
      labelNames: ['state'],
      registers,
      collect() {
        const nodes = latest()?.nodes ?? [];
        for (const state of ['up', 'draining', 'down']) this.set({ state }, nodes.filter((n) => n.state === state).length);
      },
    });
    new Gauge({
      name: 'steadfast_cluster_capacity_per_second',
      help: 'Password sign-ins per second the nodes that are up can carry together',
      registers,
      collect() {
        this.set(latest()?.capacityPerSecond ?? 0);
      },
    });
    new Gauge({
      name: 'steadfast_cluster_capacity_after_node_loss_per_second',
      help: 'Capacity left after losing the largest node',
      registers,
      collect() {
        this.set(latest()?.capacityAfterLossPerSecond ?? 0);
      },
    });
    new Gauge({
      name: 'steadfast_cluster_peak_load_per_second',
      help: 'Busiest interval of the peak window, in password checks per second over the whole cluster',
      registers,
      collect() {
        this.set(latest()?.peakLoadPerSecond ?? 0);
      },
    });
    new Gauge({
      name: 'steadfast_cluster_survives_node_loss',
      help: '1 when the cluster carries its observed peak after losing its largest node, else 0',
      registers,
      collect() {
        this.set(latest()?.survivesNodeLoss ? 1 : 0);
      },
    });
  }

  /** Which tier takes flows, codes and counters (1 for the one serving): anything but `redis` on a cluster member means Redis is away. */
  watchEphemeral(store: Pick<EphemeralStore, 'servingFrom'>): void {
    new Gauge({
      name: 'steadfast_ephemeral_serving',
      help: 'Where flows, one-time codes and counters go now: 1 for the serving tier (redis, durable fallback, node memory)',
      labelNames: ['tier'],
      registers: [this.registry],
      collect() {
        const serving = store.servingFrom();
        for (const tier of ['redis', 'durable', 'memory']) this.set({ tier }, tier === serving ? 1 : 0);
      },
    });
  }

  /** The local fallback of the durable store: its age, the outage journal and the replay (issue 12). */
  watchFallback(fallback: DurableFailover): void {
    const registers = [this.registry];
    new Gauge({
      name: 'steadfast_fallback_age_seconds',
      help: 'Seconds since the local fallback last matched the database (the change feed keeps it within a few seconds)',
      registers,
      collect() {
        const age = fallback.ageSeconds();
        this.set(Number.isFinite(age) ? age : -1);
      },
    });
    new Gauge({
      name: 'steadfast_fallback_active',
      help: '1 while sign-in runs from the local fallback (the database is unreachable or the journal is being replayed)',
      registers,
      collect() {
        this.set(fallback.usesFallback() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'steadfast_outage_journal_depth',
      help: 'Writes made during a database outage not yet replayed into the database',
      registers,
      collect() {
        this.set(fallback.journal.depth);
      },
    });
    new Gauge({
      name: 'steadfast_outage_journal_replayed_total',
      help: 'Journal entries replayed into the database since the node started',
      registers,
      collect() {
        this.set(fallback.replayed);
      },
    });
    new Gauge({
      name: 'steadfast_outage_journal_rejected_total',
      help: 'Journal entries the database refused on replay (set aside and logged)',
      registers,
      collect() {
        this.set(fallback.rejected);
      },
    });
  }
}
