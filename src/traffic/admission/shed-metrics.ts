// Prometheus metrics of admission control, for every pool in one registry (a `pool` label), so the
// proxy's admin port can merge it with its own (prom-client's Registry.merge). Counters move with
// each decision; gauges are read from each pool's live state at scrape time, so they are never stale
// and cost nothing per request.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AdmissionSnapshot } from '../shed/admission-core.ts';
import { PRIORITIES } from '../shed/priority.ts';

/** Queue waits from 0.5 ms to about 1 s, doubling. */
const QUEUE_WAIT_BUCKETS_SECONDS = Array.from({ length: 12 }, (_, i) => 0.0005 * 2 ** i);
const OVERRIDE_MODES = ['configured', 'off', 'fixed'] as const;

type SnapshotSource = () => AdmissionSnapshot;

export class ShedMetrics {
  readonly registry: Registry;
  private readonly pools = new Map<string, SnapshotSource>();
  readonly admitted: Counter<'pool' | 'priority'>;
  readonly rejected: Counter<'pool' | 'reason' | 'priority'>;
  readonly exempt: Counter<'pool'>;
  readonly queueWaitSeconds: Histogram<'pool' | 'priority'>;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.admitted = new Counter({ name: 'concord_shed_admitted_total', help: 'requests admitted, by pool and priority class', labelNames: ['pool', 'priority'], registers });
    this.rejected = new Counter({
      name: 'concord_shed_rejected_total', help: 'requests refused (503, or 429 for client-rate-limit), by pool, reason and priority class',
      labelNames: ['pool', 'reason', 'priority'], registers,
    });
    this.exempt = new Counter({ name: 'concord_shed_exempt_total', help: 'requests exempt from shedding (never limited nor counted)', labelNames: ['pool'], registers });
    this.queueWaitSeconds = new Histogram({
      name: 'concord_shed_queue_wait_seconds', help: 'time admitted requests waited in the admission queue',
      labelNames: ['pool', 'priority'], buckets: QUEUE_WAIT_BUCKETS_SECONDS, registers,
    });
    this.gauge('concord_shed_limit', 'concurrency limit in force (+Inf when nothing is limited)', (s) => s.limit);
    this.gauge('concord_shed_inflight', 'admitted requests not yet finished', (s) => s.inflight);
    this.gauge('concord_shed_queue_length', 'requests waiting for a slot', (s) => s.queueLength);
    this.gauge('concord_shed_min_rtt_seconds', 'baseline RTT of the limit algorithm (gradient minRTT, vegas no-load RTT)', (s) => s.minRttMs / 1000);
    this.gauge('concord_shed_sampled_rtt_seconds', 'RTT of the last gradient sample window (its configured percentile)', (s) => s.sampledRttMs / 1000);
    this.gauge('concord_shed_shedding', '1 while a shedding episode is going on, else 0', (s) => (s.shedding ? 1 : 0));
    this.gauge('concord_shed_client_buckets', 'clients with a rate-limit bucket', (s) => s.clients);
    new Gauge({
      name: 'concord_shed_override', help: '1 for the operator override in force (mode: configured, off or fixed)', labelNames: ['pool', 'mode'], registers,
      collect: this.collector((gauge, pool, snapshot) => {
        for (const mode of OVERRIDE_MODES) gauge.set({ pool, mode }, snapshot.override.mode === mode ? 1 : 0);
      }),
    });
    new Gauge({
      name: 'concord_shed_inflight_by_priority', help: 'admitted requests not yet finished, by priority class', labelNames: ['pool', 'priority'], registers,
      collect: this.collector((gauge, pool, snapshot) => {
        for (const priority of PRIORITIES) gauge.set({ pool, priority }, snapshot.inflightByPriority[priority]);
      }),
    });
  }

  /** Adds a pool whose gauges are read from `snapshot` at each scrape; returns its removal. */
  register(pool: string, snapshot: SnapshotSource): () => void {
    if (this.pools.has(pool)) throw new Error(`bug: pool '${pool}' already has admission metrics`);
    this.pools.set(pool, snapshot);
    return () => this.pools.delete(pool); // gauges are rebuilt at every scrape
  }

  private gauge(name: string, help: string, read: (snapshot: AdmissionSnapshot) => number): void {
    new Gauge({
      name, help, labelNames: ['pool'], registers: [this.registry],
      collect: this.collector((gauge, pool, snapshot) => gauge.set({ pool }, read(snapshot))),
    });
  }

  private collector(set: (gauge: Gauge<string>, pool: string, snapshot: AdmissionSnapshot) => void): (this: Gauge<string>) => void {
    const pools = this.pools;
    return function collect(this: Gauge<string>) {
      this.reset();
      for (const [pool, snapshot] of pools) set(this, pool, snapshot());
    };
  }
}
