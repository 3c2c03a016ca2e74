import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdmissionController, AdmissionEvents } from '../admission/admission-controller.ts';

/** The node's Prometheus metrics, on its own registry (several nodes can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly admitted = new Counter({ name: 'steadfast_admission_admitted_total', help: 'Requests admitted, by class', labelNames: ['class'], registers: [this.registry] });
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

  /** Gauges read at scrape time from the controller. */
  watch(admission: AdmissionController, hashingQueue: () => number): void {
    const state = () => admission.state;
    new Gauge({ name: 'steadfast_admission_in_flight', help: 'Requests being worked on', registers: [this.registry], collect() {
      this.set(state().inFlight);
    } });
    new Gauge({ name: 'steadfast_admission_queued', help: 'Requests waiting for a slot', registers: [this.registry], collect() {
      this.set(state().queued);
    } });
    new Gauge({ name: 'steadfast_admission_limit', help: 'Requests worked on at once, at most', registers: [this.registry], collect() {
      this.set(state().limit);
    } });
    new Gauge({ name: 'steadfast_password_hashing_pending', help: 'Argon2id hashes running or waiting', registers: [this.registry], collect() {
      this.set(hashingQueue());
    } });
  }
}
