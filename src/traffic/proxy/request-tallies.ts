// The two metrics counted on every request — concord_proxy_requests_total and
// concord_proxy_request_duration_seconds — kept as plain numbers and turned into Prometheus
// series only when scraped. prom-client's own Counter and Histogram hash and validate their
// labels and allocate on every increment, which cost several per cent of the proxy's CPU at
// saturation; here a request costs three Map lookups and a few additions. Both objects are
// registered in the proxy's prom-client Registry as custom metrics (name, help, type, get()), so
// /metrics and the multi-process aggregation (AggregatorRegistry) see them like any other.

import type { Registry } from 'prom-client';

/** The shape prom-client's Registry and AggregatorRegistry read from a metric. */
interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
}

interface Tally {
  value: number;
}

/** Responses sent, by pool, backend and status. */
export class RequestCounter {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  // Nested maps rather than one joined key: no string is built per request.
  private readonly tallies = new Map<string, Map<string, Map<number, Tally>>>();

  constructor(name: string, help: string, registry: Registry) {
    this.name = name;
    this.help = help;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  count(pool: string, backend: string, status: number): void {
    let byBackend = this.tallies.get(pool);
    if (byBackend === undefined) {
      byBackend = new Map();
      this.tallies.set(pool, byBackend);
    }
    let byStatus = byBackend.get(backend);
    if (byStatus === undefined) {
      byStatus = new Map();
      byBackend.set(backend, byStatus);
    }
    const tally = byStatus.get(status);
    if (tally === undefined) byStatus.set(status, { value: 1 });
    else tally.value += 1;
  }

  get(): MetricSnapshot {
    const values: MetricSnapshot['values'] = [];
    for (const [pool, byBackend] of this.tallies) {
      for (const [backend, byStatus] of byBackend) {
        for (const [status, tally] of byStatus) values.push({ labels: { pool, backend, status: String(status) }, value: tally.value });
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

interface DurationTally {
  /** Observations per bucket (not cumulative); the last slot is above the largest bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** Request durations by pool, in Prometheus histogram buckets (an observation counts in the first bucket whose bound is at least its value). */
export class DurationHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: readonly number[];
  private readonly tallies = new Map<string, DurationTally>();

  constructor(name: string, help: string, boundsSeconds: readonly number[], registry: Registry) {
    this.name = name;
    this.help = help;
    for (let i = 1; i < boundsSeconds.length; i++) if (!(boundsSeconds[i]! > boundsSeconds[i - 1]!)) throw new RangeError('bug: histogram bounds must increase');
    this.bounds = boundsSeconds;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  observe(pool: string, seconds: number): void {
    let tally = this.tallies.get(pool);
    if (tally === undefined) {
      tally = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.tallies.set(pool, tally);
    }
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > bounds[bucket]!) bucket++;
    tally.buckets[bucket]! += 1;
    tally.sum += seconds;
    tally.count += 1;
  }

  get(): MetricSnapshot {
    const values: MetricSnapshot['values'] = [];
    const bucketName = `${this.name}_bucket`;
    for (const [pool, tally] of this.tallies) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += tally.buckets[i]!;
        values.push({ labels: { le: this.bounds[i]!, pool }, value: cumulative, metricName: bucketName });
      }
      values.push({ labels: { le: '+Inf', pool }, value: tally.count, metricName: bucketName });
      values.push({ labels: { pool }, value: tally.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { pool }, value: tally.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
