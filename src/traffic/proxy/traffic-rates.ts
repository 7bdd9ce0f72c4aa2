// What the autoscaler reads from a proxy: per pool the requests served and shed per second, the
// error ratio and latency percentiles; per backend its requests per second, requests in flight and
// whether it is healthy. They are added to the admin port's /backends report, the JSON the
// autoscaler's ProxyMetricsSource reads:
//
//   { "pools": [ { "name": "web", ...the proxy's own fields...,
//                  "requestsPerSecond": 120, "shedPerSecond": 2.5, "errorRatio": 0.01,
//                  "latencyMs": { "mean": 12, "p50": 9, "p95": 30, "p99": 55 },
//                  "backends": [ { "address": "127.0.0.1:9100", ..., "healthy": true, "inflight": 3, "requestsPerSecond": 41.5 } ] } ] }
//
// Rates are differences of the proxy's own Prometheus counters over a sliding window
// (windowMs, sampled every sampleIntervalMs), so counting costs nothing per request. Shed requests
// (refused by admission control or a circuit breaker) are offered load that was not served: the
// autoscaler adds them to what was served, so a shedding pool still looks as loaded as it is.
// Percentiles come from the latency histogram's buckets (0.5 ms doubling), interpolated within
// a bucket. Until the window holds two samples, the pool fields are left out: no data is not zero.

import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { PoolAdmissions } from './pool-admissions.ts';
import type { PoolsReport, ProxyExtension, ProxyServer } from './proxy-server.ts';

export const DEFAULT_RATE_WINDOW_MS = 10_000;
export const DEFAULT_RATE_SAMPLE_INTERVAL_MS = 1_000;

interface PoolCounts {
  /** Every response sent to clients, refusals included. */
  total: number;
  /** Refusals of admission control, by priority class. */
  rejectedByPriority: Record<string, number>;
  /** Responses by backend (not 'none'). */
  byBackend: Map<string, number>;
  /** Responses with status >= 500 from a backend. */
  backendErrors: number;
  /** 5xx the proxy answered itself (no backend), shed refusals included. */
  proxyErrors: number;
  shed: number;
  latencySum: number;
  latencyCount: number;
  /** Cumulative bucket counts by upper bound in seconds. */
  buckets: Map<number, number>;
}

interface Sample {
  atMs: number;
  pools: Map<string, PoolCounts>;
}

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

function emptyCounts(): PoolCounts {
  return { total: 0, rejectedByPriority: { critical: 0, default: 0, sheddable: 0 }, byBackend: new Map(), backendErrors: 0, proxyErrors: 0, shed: 0, latencySum: 0, latencyCount: 0, buckets: new Map() };
}

/** One sample from the proxy's and admission control's registries. */
export function countsOf(proxyMetrics: Metrics, shedMetrics: Metrics): Map<string, PoolCounts> {
  const pools = new Map<string, PoolCounts>();
  const of = (pool: string) => {
    let counts = pools.get(pool);
    if (counts === undefined) pools.set(pool, (counts = emptyCounts()));
    return counts;
  };
  for (const metric of proxyMetrics) {
    for (const value of metric.values) {
      const labels = value.labels as Record<string, string | number | undefined>;
      const pool = String(labels.pool ?? '');
      if (pool === '') continue;
      if (metric.name === 'concord_proxy_requests_total') {
        const counts = of(pool);
        const backend = String(labels.backend);
        const status = Number(labels.status);
        counts.total += value.value;
        if (backend === 'none') {
          if (status >= 500) counts.proxyErrors += value.value;
        } else {
          counts.byBackend.set(backend, (counts.byBackend.get(backend) ?? 0) + value.value);
          if (status >= 500) counts.backendErrors += value.value;
        }
      } else if (metric.name === 'concord_proxy_admission_rejected_total') {
        of(pool).shed += value.value;
      } else if (metric.name === 'concord_proxy_request_duration_seconds') {
        const counts = of(pool);
        const name = (value as { metricName?: string }).metricName ?? '';
        if (name.endsWith('_bucket')) counts.buckets.set(labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le), value.value);
        else if (name.endsWith('_sum')) counts.latencySum = value.value;
        else if (name.endsWith('_count')) counts.latencyCount = value.value;
      }
    }
  }
  for (const metric of shedMetrics) {
    if (metric.name !== 'concord_shed_rejected_total') continue;
    for (const value of metric.values) {
      const labels = value.labels as Record<string, string | undefined>;
      if (labels.pool === undefined) continue;
      const counts = of(labels.pool);
      // Admission refusals are in the proxy's own counter already; circuit breakers refuse after admission.
      if (labels.reason === 'circuit-breaker') counts.shed += value.value;
      if (labels.priority !== undefined && labels.reason !== 'cancelled') counts.rejectedByPriority[labels.priority] = (counts.rejectedByPriority[labels.priority] ?? 0) + value.value;
    }
  }
  return pools;
}

/** The latency at quantile `q` (0-1) from cumulative bucket differences, interpolated within the bucket. */
export function quantileMs(buckets: [number, number][], q: number): number {
  const total = buckets.length === 0 ? 0 : buckets[buckets.length - 1]![1];
  if (total <= 0) return 0;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lowerBound * 1000;
      const share = count === lowerCount ? 1 : (rank - lowerCount) / (count - lowerCount);
      return (lowerBound + (bound - lowerBound) * share) * 1000;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound * 1000;
}

export class TrafficRates implements ProxyExtension {
  private readonly proxyOf: () => ProxyServer | undefined;
  private readonly admissions: PoolAdmissions;
  private readonly windowMs: number;
  private readonly sampleIntervalMs: number;
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(proxy: () => ProxyServer | undefined, admissions: PoolAdmissions, options: { windowMs?: number; sampleIntervalMs?: number } = {}) {
    this.proxyOf = proxy;
    this.admissions = admissions;
    this.windowMs = options.windowMs ?? DEFAULT_RATE_WINDOW_MS;
    this.sampleIntervalMs = options.sampleIntervalMs ?? DEFAULT_RATE_SAMPLE_INTERVAL_MS;
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.sampleIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  decorateBackends(report: PoolsReport): void {
    const newest = this.samples[this.samples.length - 1];
    const oldest = this.samples[0];
    for (const pool of report.pools as (PoolsReport['pools'][number] & Record<string, unknown>)[]) {
      const now = newest?.pools.get(pool.name) ?? emptyCounts();
      const then = oldest?.pools.get(pool.name) ?? emptyCounts();
      pool.requestsTotal = now.total;
      const admission = this.admissions.admission(pool.name)?.snapshot();
      pool.shed = admission === undefined ? null : {
        algorithm: admission.algorithm, limit: Number.isFinite(admission.limit) ? admission.limit : null, inflight: admission.inflight, queueLength: admission.queueLength,
        shedding: admission.shedding, override: admission.override.mode, rejected: { ...now.rejectedByPriority },
      };
      const seconds = newest === undefined || oldest === undefined || newest === oldest ? 0 : (newest.atMs - oldest.atMs) / 1000;
      const perSecond = (value: number) => (seconds > 0 ? Math.max(0, value) / seconds : 0);
      for (const backend of pool.backends as (PoolsReport['pools'][number]['backends'][number] & Record<string, unknown>)[]) {
        backend.healthy = backend.state === 'healthy';
        backend.inflight = backend.activeRequests;
        if (seconds > 0) backend.requestsPerSecond = round(perSecond((now.byBackend.get(backend.address) ?? 0) - (then.byBackend.get(backend.address) ?? 0)));
      }
      if (seconds === 0) continue;
      const served = [...now.byBackend.values()].reduce((sum, value) => sum + value, 0) - [...then.byBackend.values()].reduce((sum, value) => sum + value, 0);
      const shed = now.shed - then.shed;
      const errors = now.backendErrors - then.backendErrors + Math.max(0, now.proxyErrors - then.proxyErrors - shed);
      const answered = now.latencyCount - then.latencyCount - shed;
      const buckets = [...now.buckets].sort((a, b) => a[0] - b[0]).map(([bound, count]): [number, number] => [bound, count - (then.buckets.get(bound) ?? 0)]);
      pool.requestsPerSecond = round(perSecond(served));
      pool.shedPerSecond = round(perSecond(shed));
      pool.errorRatio = answered > 0 ? round(Math.min(1, errors / answered)) : 0;
      const count = now.latencyCount - then.latencyCount;
      pool.latencyMs = {
        mean: count > 0 ? round(((now.latencySum - then.latencySum) / count) * 1000) : 0,
        p50: round(quantileMs(buckets, 0.5)),
        p95: round(quantileMs(buckets, 0.95)),
        p99: round(quantileMs(buckets, 0.99)),
      };
    }
  }

  private async sample(): Promise<void> {
    const proxy = this.proxyOf();
    if (proxy === undefined) return;
    const [own, shed] = await Promise.all([proxy.metrics.registry.getMetricsAsJSON(), this.admissions.metrics.registry.getMetricsAsJSON()]);
    const atMs = performance.now();
    this.samples.push({ atMs, pools: countsOf(own, shed) });
    while (this.samples.length > 2 && atMs - this.samples[1]!.atMs >= this.windowMs) this.samples.shift();
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
