// One pool at run time: its backends with their keep-alive upstream connection pools (the fast
// path's own, and undici's for what comes through node:http), its load balancer and health
// state, and its retry budget. Health events flow in from the checker
// (active), from the forwarder (passive outcomes) and from the admin port (drains); each one is
// applied to the balancer at once, so routing always follows health.

import type { IncomingHttpHeaders } from 'node:http';
import { H2CClient, Pool, type Dispatcher } from 'undici';
import { addressOf, expectedStatusOf, type HostPort, type PoolConfig } from '../../control/config.ts';
import { SeededRandom } from '../../random/seeded-random.ts';
import { DEFAULT_BALANCER_OPTIONS, LoadBalancer } from '../balance/load-balancer.ts';
import type { BackendLoad } from '../balance/types.ts';
import type { ActiveCheckOptions } from '../health/active-check.ts';
import type { HealthEvent } from '../health/events.ts';
import type { TrafficOutcome } from '../health/outlier-detection.ts';
import { PoolHealth, type BackendHealthView, type CheckKind } from '../health/pool-health.ts';
import { grpcProbe } from '../probes/grpc-probe.ts';
import { httpProbe } from '../probes/http-probe.ts';
import type { Probe } from '../probes/probe.ts';
import { tcpProbe } from '../probes/tcp-probe.ts';
import { monotonicMs, wallMs } from './clocks.ts';
import type { BackendGate } from './admission.ts';
import type { DeadlineSweeper } from './deadline-sweeper.ts';
import { Http1Upstream } from './fast-path-upstream.ts';
import { RetryBudget } from './retry-budget.ts';

/** Keep-alive connections to one backend are closed after this long idle (undici's default is 4 s). */
const UPSTREAM_KEEP_ALIVE_MS = 30_000;

export interface BackendRuntime {
  /** host:port as configured; unique within the pool. */
  readonly id: string;
  readonly address: HostPort;
  /**
   * undici's keep-alive HTTP/1.1 connection pool, or one multiplexed HTTP/2 connection (h2c), for
   * requests that come through node:http; created on first use (with the fast path, most never do).
   */
  dispatcher(): Dispatcher;
  /** The fast path's keep-alive connections (HTTP/1.1 pools with proxy.fastPath on). */
  readonly http1: Http1Upstream | undefined;
  readonly load: BackendLoad;
  /** Requests waiting for one of the backend's connections (both paths' queues), for the pending-requests circuit breaker. */
  pendingRequests(): number;
  /** Closes the backend's connections once their requests are done. */
  close(): Promise<void>;
}

/** What the pools' upstream connections share with the rest of the proxy. */
export interface UpstreamWiring {
  readonly sweeper: DeadlineSweeper;
  /** Whether HTTP/1.1 backends also get the fast path's connection pools. */
  readonly fastPath: boolean;
}

export interface BackendReport {
  address: string;
  zone: string | undefined;
  priority: number;
  state: BackendHealthView['state'];
  configuredWeight: number;
  effectiveWeight: number;
  activeRequests: number;
  ewmaLatencyMs: number;
  ejections: number;
  ejectedUntil: string | undefined;
  lastCheck: { ok: boolean; detail: string; at: string; durationMs: number } | undefined;
}

export type HashKeyOf = (headers: IncomingHttpHeaders, path: string) => string | undefined;

export class PoolRuntime {
  readonly name: string;
  readonly config: PoolConfig;
  readonly balancer: LoadBalancer;
  readonly health: PoolHealth;
  readonly retryBudget: RetryBudget;
  readonly probe: Probe | undefined;
  readonly hashKeyOf: HashKeyOf | undefined;
  /**
   * Client requests this pool is working on, including those between attempts (in a retry
   * backoff): the retry budget's base, as Envoy's "active requests". Counting only requests
   * on a backend would shrink the budget exactly when a failing backend's requests need it.
   */
  requestsInProgress = 0;
  /** Per-backend circuit breakers, when the pool sheds load (set by the proxy from its admission control). */
  backendGate: BackendGate | undefined;
  /** Whether the last applied events left the pool in panic (for panic-started/-ended events). */
  private panicking = false;
  private readonly backends = new Map<string, BackendRuntime>();
  private readonly onEvent: (event: HealthEvent) => void;

  private readonly upstreams: UpstreamWiring;

  constructor(config: PoolConfig, zone: string | undefined, seed: number, onEvent: (event: HealthEvent) => void, upstreams: UpstreamWiring) {
    this.name = config.name;
    this.config = config;
    this.onEvent = onEvent;
    this.upstreams = upstreams;
    const random = new SeededRandom(seed);
    this.balancer = new LoadBalancer({
      ...DEFAULT_BALANCER_OPTIONS,
      algorithm: config.balance,
      localZone: zone,
      panicThresholdPercent: config.panicThresholdPercent,
      slowStart: config.slowStart,
    }, random.fork());
    const active = activeCheckOptions(config);
    this.health = new PoolHealth({
      pool: config.name,
      active,
      outlier: {
        ...config.outlierDetection,
        successRateRequestVolume: config.outlierDetection.successRate.requestVolume,
        successRateMinimumHosts: config.outlierDetection.successRate.minimumHosts,
        successRateStdevFactor: config.outlierDetection.successRate.stdevFactor,
      },
    }, random.fork());
    this.retryBudget = new RetryBudget(config.retries);
    this.probe = createProbe(config);
    this.hashKeyOf = hashKeyExtractor(config);
    this.setBackends(config, true);
  }

  /**
   * Sets the pool's backends. At start-up they are assumed healthy until checked; backends added
   * later wait for a passing check (then ramp up through slow start). Removed backends' connections
   * close once their requests finish.
   */
  setBackends(config: PoolConfig, startup: boolean): { added: BackendRuntime[]; removed: BackendRuntime[] } {
    const wanted = new Map(config.backends.map((backend) => [backend.address, backend]));
    const removed = [...this.backends.values()].filter((backend) => !wanted.has(backend.id));
    for (const backend of removed) {
      this.backends.delete(backend.id);
      this.health.removeBackend(backend.id);
      void backend.close();
    }
    this.balancer.setBackends(config.backends.map((backend) => ({ id: backend.address, zone: backend.zone, priority: backend.priority, weight: backend.weight })));
    const added: BackendRuntime[] = [];
    for (const backend of config.backends) {
      if (this.backends.has(backend.address)) continue;
      this.health.addBackend(backend.address, startup);
      const runtime = new Backend(config, backend.address, this.balancer.get(backend.address)!, this.upstreams);
      this.backends.set(backend.address, runtime);
      added.push(runtime);
      this.syncRouting(backend.address);
    }
    return { added, removed };
  }

  /** Whether the fast path forwards this pool's requests itself (HTTP/1.1 upstreams with proxy.fastPath on). */
  get servesFastPath(): boolean {
    return this.upstreams.fastPath && this.config.upstreamProtocol === 'http1';
  }

  get backendCount(): number {
    return this.backends.size;
  }

  backend(id: string): BackendRuntime | undefined {
    return this.backends.get(id);
  }

  allBackends(): BackendRuntime[] {
    return [...this.backends.values()];
  }

  /** Requests in flight to any backend of the pool. */
  activeRequests(): number {
    let total = 0;
    for (const backend of this.backends.values()) total += backend.load.activeRequests;
    return total;
  }

  /** Applies health events (from any source) to routing, and reports them, with a panic change they cause. */
  apply(events: readonly HealthEvent[]): void {
    for (const event of events) {
      this.syncRouting(event.backend);
      this.onEvent(event);
    }
    this.balancer.refresh(monotonicMs());
    if (this.balancer.inPanic !== this.panicking) {
      this.panicking = this.balancer.inPanic;
      const ids = [...this.backends.keys()].filter((id) => !this.health.isDraining(id));
      const healthy = ids.filter((id) => this.health.isHealthy(id)).length;
      this.onEvent({
        atMs: wallMs(), pool: this.name, backend: '*', kind: this.panicking ? 'panic-started' : 'panic-ended', cause: 'pool:panic-threshold',
        detail: `${healthy} of ${ids.length} backends healthy; panic below ${this.config.panicThresholdPercent} %${this.panicking ? ': health is ignored, traffic goes to every backend' : ''}`,
      });
    }
  }

  recordOutcome(id: string, outcome: TrafficOutcome): void {
    if (!this.backends.has(id)) return;
    const events = this.health.recordOutcome(id, outcome, wallMs());
    if (events.length > 0) this.apply(events);
  }

  /** Advances ejections, success-rate intervals and drains. */
  tick(): void {
    const events = this.health.tick(wallMs(), (id) => this.backends.get(id)?.load.activeRequests ?? 0);
    if (events.length > 0) this.apply(events);
  }

  startDrain(id: string): HealthEvent[] {
    const events = this.health.startDrain(id, wallMs(), this.config.drainTimeoutMs);
    this.apply(events);
    this.tick(); // an idle backend is drained at once
    return events;
  }

  cancelDrain(id: string): HealthEvent[] {
    const events = this.health.cancelDrain(id, wallMs());
    this.apply(events);
    return events;
  }

  /**
   * Starts from the verdicts and drains of the runtime this one replaces (a configuration change),
   * without reporting them again as events: nothing happened to the backends.
   */
  adoptStateFrom(previous: PoolRuntime): void {
    const now = wallMs();
    for (const id of this.backends.keys()) {
      if (previous.backend(id) === undefined) continue;
      const view = previous.health.view(id);
      if (view.activeHealthy !== undefined) this.health.applyVerdict(id, { healthy: view.activeHealthy, atMs: now, detail: 'carried over', ...(view.lastCheck === undefined ? {} : { lastProbe: view.lastCheck }) });
      if (previous.health.isDraining(id)) this.health.startDrain(id, now, this.config.drainTimeoutMs);
      this.syncRouting(id);
    }
    this.balancer.refresh(monotonicMs());
  }

  report(): BackendReport[] {
    const now = monotonicMs();
    this.balancer.refresh(now);
    return [...this.backends.values()].map((backend) => {
      const view = this.health.view(backend.id);
      const last = view.lastCheck;
      return {
        address: backend.id,
        zone: backend.load.zone,
        priority: backend.load.priority,
        state: view.state,
        configuredWeight: backend.load.configuredWeight,
        effectiveWeight: backend.load.effectiveWeight,
        activeRequests: backend.load.activeRequests,
        ewmaLatencyMs: Number(backend.load.latency.estimate(now).toFixed(3)),
        ejections: view.ejections,
        ejectedUntil: view.ejectedUntilMs === undefined ? undefined : new Date(view.ejectedUntilMs).toISOString(),
        lastCheck: last === undefined ? undefined : { ok: last.ok, detail: last.detail, at: new Date(last.finishedAtMs).toISOString(), durationMs: Math.round(last.finishedAtMs - last.startedAtMs) },
      };
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.backends.values()].map((backend) => backend.close()));
  }

  private syncRouting(id: string): void {
    if (!this.backends.has(id)) return;
    this.balancer.setRoutable(id, this.health.isHealthy(id), monotonicMs());
    this.balancer.setDraining(id, this.health.isDraining(id));
  }
}

class Backend implements BackendRuntime {
  readonly id: string;
  readonly address: HostPort;
  readonly load: BackendLoad;
  readonly http1: Http1Upstream | undefined;
  private readonly config: PoolConfig;
  private undici: Dispatcher | undefined;

  constructor(config: PoolConfig, id: string, load: BackendLoad, upstreams: UpstreamWiring) {
    this.id = id;
    this.address = addressOf(id);
    this.load = load;
    this.config = config;
    this.http1 = upstreams.fastPath && config.upstreamProtocol === 'http1' ? new Http1Upstream(this.address, {
      maxConnections: maxConnectionsOf(config),
      keepAliveMs: UPSTREAM_KEEP_ALIVE_MS,
      connectMs: config.timeouts.connectMs,
      firstByteMs: config.timeouts.firstByteMs,
      idleMs: config.timeouts.idleMs,
    }, upstreams.sweeper) : undefined;
  }

  dispatcher(): Dispatcher {
    return (this.undici ??= createDispatcher(this.config, this.id));
  }

  async close(): Promise<void> {
    await Promise.all([this.undici?.close(), this.http1?.close()]);
  }

  pendingRequests(): number {
    // undici's pool is created on first use: a backend the fast path serves alone may have none.
    const stats = (this.undici as { stats?: { pending?: number; queued?: number } } | undefined)?.stats;
    return (stats?.pending ?? 0) + (stats?.queued ?? 0) + (this.http1?.waitingCount ?? 0);
  }
}

/** The shed: section's circuit breaker caps connections to one backend too (Envoy's max_connections), on both paths. */
function maxConnectionsOf(config: PoolConfig): number {
  return Math.min(config.maxConnectionsPerBackend, config.shed?.circuitBreaker.maxConnections ?? Number.POSITIVE_INFINITY);
}

function createDispatcher(config: PoolConfig, address: string): Dispatcher {
  if (config.upstreamProtocol === 'h2c') {
    return new H2CClient(`http://${address}`, {
      pipelining: config.maxConcurrentStreams,
      connectTimeout: config.timeouts.connectMs,
      headersTimeout: config.timeouts.firstByteMs,
      bodyTimeout: config.timeouts.idleMs,
      keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
    });
  }
  return new Pool(`http://${address}`, {
    connections: maxConnectionsOf(config),
    pipelining: 1,
    keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
    connect: { timeout: config.timeouts.connectMs },
    headersTimeout: config.timeouts.firstByteMs,
    bodyTimeout: config.timeouts.idleMs,
  });
}

export function activeCheckOptions(config: PoolConfig): (ActiveCheckOptions & { kind: CheckKind }) | undefined {
  const health = config.health;
  if (health === undefined) return undefined;
  const kind: CheckKind = health.http !== undefined ? 'http' : health.grpc !== undefined ? 'grpc' : 'tcp';
  return {
    kind,
    intervalMs: health.intervalMs,
    fastIntervalMs: health.fastIntervalMs ?? Math.max(1, Math.ceil(health.intervalMs / 2)),
    timeoutMs: health.timeoutMs,
    rise: health.rise,
    fall: health.fall,
    jitterPercent: health.jitterPercent,
  };
}

export function createProbe(config: PoolConfig): Probe | undefined {
  const health = config.health;
  if (health === undefined) return undefined;
  if (health.http !== undefined) {
    return httpProbe({
      method: health.http.method,
      path: health.http.path,
      host: health.http.host,
      expectStatus: expectedStatusOf(health),
      expectBody: health.http.expectBody,
      expectBodyRegex: health.http.expectBodyRegex === undefined ? undefined : new RegExp(health.http.expectBodyRegex),
      bodyCheckBytes: health.http.bodyCheckBytes,
      timeoutMs: health.timeoutMs,
    });
  }
  if (health.grpc !== undefined) return grpcProbe({ service: health.grpc.service, timeoutMs: health.timeoutMs });
  return tcpProbe({ timeoutMs: health.timeoutMs });
}

function hashKeyExtractor(config: PoolConfig): HashKeyOf | undefined {
  const hash = config.hash;
  if (hash === undefined) return undefined;
  if (hash.header !== undefined) {
    const name = hash.header.toLowerCase();
    return (headers) => {
      const value = headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
  }
  if (hash.cookie !== undefined) {
    const prefix = `${hash.cookie}=`;
    return (headers) => {
      for (const part of (headers.cookie ?? '').split(';')) {
        const trimmed = part.trim();
        if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length);
      }
      return undefined;
    };
  }
  return (_headers, path) => {
    const query = path.indexOf('?');
    return query === -1 ? path : path.slice(0, query);
  };
}
