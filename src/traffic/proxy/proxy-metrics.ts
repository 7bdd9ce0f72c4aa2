// The proxy's Prometheus metrics (concord_proxy_*). The two counted on every request are plain
// tallies turned into series at scrape time (request-tallies.ts); the rest are prom-client's.

import { Counter, Gauge, Registry } from 'prom-client';
import { DurationHistogram, RequestCounter } from './request-tallies.ts';

/** Request latency buckets: 0.5 ms doubling to about 16 s. */
const LATENCY_BUCKETS_SECONDS = Array.from({ length: 16 }, (_, i) => 0.0005 * 2 ** i);

export interface BackendGaugeSample {
  pool: string;
  backend: string;
  activeRequests: number;
  healthy: boolean;
  state: string;
  effectiveWeight: number;
}

// With several worker processes the primary sums the workers' counters and in-flight gauges; the
// per-backend state gauges take the maximum ("some process sees this backend ejected").
export const BACKEND_STATES = ['healthy', 'unhealthy', 'ejected', 'draining', 'drained'] as const;

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly requests = new RequestCounter(
    'concord_proxy_requests_total', 'responses sent to clients, by pool, backend (none when no backend answered) and status', this.registry);
  private readonly duration = new DurationHistogram(
    'concord_proxy_request_duration_seconds', 'time from request received to response finished, by pool', LATENCY_BUCKETS_SECONDS, this.registry);
  private readonly retries = new Counter({
    name: 'concord_proxy_retries_total', help: 'requests sent again to another backend, by pool and reason (status, connect-failure, reset)',
    labelNames: ['pool', 'reason'], registers: [this.registry],
  });
  private readonly budgetExhausted = new Counter({
    name: 'concord_proxy_retry_budget_exhausted_total', help: 'retries not made because the retry budget was spent, by pool',
    labelNames: ['pool'], registers: [this.registry],
  });
  private readonly ejections = new Counter({
    name: 'concord_proxy_ejections_total', help: 'passive outlier ejections, by pool, backend and cause',
    labelNames: ['pool', 'backend', 'cause'], registers: [this.registry],
  });
  private readonly healthEvents = new Counter({
    name: 'concord_proxy_health_events_total', help: 'health events (marked-down, marked-up, ejected, readmitted, drain-*) by pool and kind',
    labelNames: ['pool', 'kind'], registers: [this.registry],
  });
  private readonly checks = new Counter({
    name: 'concord_proxy_health_checks_total', help: 'active health checks by pool, backend and result (pass, fail)',
    labelNames: ['pool', 'backend', 'result'], registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'concord_proxy_admission_rejected_total', help: 'requests refused by admission control before reaching a backend, by pool and status',
    labelNames: ['pool', 'status'], registers: [this.registry],
  });
  private readonly handOffs = new Counter({
    name: 'concord_proxy_fast_path_handoffs_total', help: 'client connections the fast path handed to node:http, by reason (the request it could not serve itself)',
    labelNames: ['reason'], registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: 'concord_proxy_refused_total', help: 'connections and requests refused by a resource limit, by the limit\'s config key',
    labelNames: ['limit'], registers: [this.registry],
  });
  private readonly activeRequests = new Gauge({
    name: 'concord_proxy_active_requests', help: 'requests in flight to a backend', labelNames: ['pool', 'backend'], registers: [this.registry],
  });
  private readonly backendHealthy = new Gauge({
    name: 'concord_proxy_backend_healthy', help: '1 when the backend may take new requests (healthy, not ejected, not draining)', labelNames: ['pool', 'backend'], aggregator: 'max', registers: [this.registry],
  });
  private readonly backendState = new Gauge({
    name: 'concord_proxy_backend_state', help: '1 for the state the backend is in', labelNames: ['pool', 'backend', 'state'], aggregator: 'max', registers: [this.registry],
  });
  private readonly backendWeight = new Gauge({
    name: 'concord_proxy_backend_effective_weight', help: 'weight in force (lower during slow start)', labelNames: ['pool', 'backend'], aggregator: 'max', registers: [this.registry],
  });
  countRequest(pool: string, backend: string, status: number, seconds: number): void {
    this.requests.count(pool, backend, status);
    this.duration.observe(pool, seconds);
  }

  countRetry(pool: string, reason: 'status' | 'first-byte-timeout' | 'connect-failure' | 'reset'): void {
    this.retries.labels(pool, reason).inc();
  }

  countBudgetExhausted(pool: string): void {
    this.budgetExhausted.labels(pool).inc();
  }

  countHealthEvent(pool: string, backend: string, kind: string, cause: string): void {
    this.healthEvents.labels(pool, kind).inc();
    if (kind === 'ejected') this.ejections.labels(pool, backend, cause).inc();
  }

  countCheck(pool: string, backend: string, ok: boolean): void {
    this.checks.labels(pool, backend, ok ? 'pass' : 'fail').inc();
  }

  countHandOff(reason: string): void {
    this.handOffs.labels(reason).inc();
  }

  /** A refusal by a resource limit; `limit` is its config key (maxHeaderBytes, maxClientConnections, maxRequestBodyBytes). */
  countRefused(limit: string): void {
    this.refused.labels(limit).inc();
  }

  countRejected(pool: string, status: number): void {
    this.rejected.labels(pool, String(status)).inc();
  }

  /** Gauges are read from the live pools when scraped, so they are never stale. */
  sampleBackendsAtScrape(sample: () => BackendGaugeSample[]): void {
    const refresh = () => {
      this.activeRequests.reset();
      this.backendHealthy.reset();
      this.backendState.reset();
      this.backendWeight.reset();
      for (const backend of sample()) {
        this.activeRequests.labels(backend.pool, backend.backend).set(backend.activeRequests);
        this.backendHealthy.labels(backend.pool, backend.backend).set(backend.healthy ? 1 : 0);
        this.backendWeight.labels(backend.pool, backend.backend).set(backend.effectiveWeight);
        for (const state of BACKEND_STATES) this.backendState.labels(backend.pool, backend.backend, state).set(state === backend.state ? 1 : 0);
      }
    };
    (this.activeRequests as unknown as { collect: () => void }).collect = refresh;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
