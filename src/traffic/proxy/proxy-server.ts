// `concord proxy`: the HTTP/1.1 data plane. Builds the pools from a PoolSource, runs the active
// checks, serves traffic on the listen address and the admin API on the admin address, and on
// stop drains: stop accepting, let in-flight requests finish up to a deadline, then close.
//
// Per request: route to a pool, ask admission control, pick a backend, forward with retries
// (exchange.ts). Everything that decides lives in the pure cores (balance/, health/); this file wires.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { addressOf, type ConcordConfig, type ProxySettings } from '../../control/config.ts';
import type { HealthEvent } from '../health/events.ts';
import type { ProbeResult } from '../health/active-check.ts';
import { HealthChecker } from '../probes/health-checker.ts';
import { AccessLog } from './access-log.ts';
import { ADMITTED, admitAll, type Admission, type AdmissionDecision } from './admission.ts';
import { createAdminServer } from './admin-server.ts';
import { NodeClientRequest, requestIdOf, type ClientRequest } from './client-request.ts';
import { monotonicMs } from './clocks.ts';
import { DeadlineSweeper } from './deadline-sweeper.ts';
import { EventLog } from './event-log.ts';
import { Exchange, type ExchangeIo, type ExchangeServices } from './exchange.ts';
import type { FastPathHandler } from './fast-path.ts';
import { PoolRuntime, type BackendReport } from './pool-runtime.ts';
import type { PoolSnapshot, PoolSource } from './pool-source.ts';
import { ProxyMetrics } from './proxy-metrics.ts';
import { Router } from './router.ts';
import { createTrafficListener, type TrafficListener } from './traffic-listener.ts';
import { passUpgrade, refuseUpgrade } from './upgrade.ts';

/** How often ejection expiry, success-rate intervals and drain completion are checked. */
const HEALTH_TICK_MS = 100;

export interface ProxyServerOptions {
  settings: ProxySettings;
  source: PoolSource;
  admission?: Admission;
  /** Where log lines go (default: stdout, asynchronously). */
  log?: AccessLog;
  /** Seeds balancing randomness (default: random); tests fix it. */
  seed?: number;
  /** false in worker processes whose health state comes from the primary. */
  runHealthChecks?: boolean;
  /** false in the multi-process primary, which checks health and serves the admin port only. */
  serveTraffic?: boolean;
  /** false in worker processes: the primary serves the admin port for all. */
  serveAdmin?: boolean;
  /** Called with each probe result (the multi-process primary broadcasts them to workers). */
  onProbeResult?: (pool: string, backend: string, result: ProbeResult) => void;
  /** What other parts add to the admin port (load shedding's /shed, the store's rates). */
  extensions?: ProxyExtension[];
  /** Asked before every mutating admin request (not GET or HEAD); rejects with { status, code, message } to refuse it. */
  adminGate?: AdminGate;
}

/** Decides whether a mutating admin request may go on (a store-fed proxy asks the store's identities: admin-auth.ts). */
export type AdminGate = (req: IncomingMessage, path: string) => Promise<void>;

/** A part of the proxy built around it (load shedding, the store feed) that adds to the admin port. */
export interface ProxyExtension {
  /** Answers an admin request; false when the path is not its own. */
  handleAdmin?(req: IncomingMessage, res: ServerResponse): boolean;
  /** Prometheus text appended to /metrics. */
  metricsText?(): Promise<string>;
  /** Adds fields to the /backends report (rates for the autoscaler). */
  decorateBackends?(report: PoolsReport): void;
}

export interface PoolsReport {
  pools: { name: string; balance: string; panic: boolean; activeRequests: number; backends: BackendReport[] }[];
}

/** How the multi-process primary answers for all processes on its admin port. */
export interface AdminAggregation {
  metricsText(): Promise<string>;
  backends(): Promise<PoolsReport>;
  /** Tells the workers about a drain or undrain done on the primary's admin port. */
  drainChanged(pool: string, backend: string, draining: boolean): void;
}

export class ProxyServer implements FastPathHandler {
  readonly metrics = new ProxyMetrics();
  readonly events: EventLog;
  readonly log: AccessLog;
  private readonly settings: ProxySettings;
  private readonly admission: Admission;
  private readonly pools = new Map<string, PoolRuntime>();
  private router: Router;
  private readonly checker: HealthChecker | undefined;
  private readonly traffic: TrafficListener;
  private readonly admin: Server;
  private readonly ticker: NodeJS.Timeout;
  private readonly stopWatching: () => void;
  private inFlight = 0;
  private stopping = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly eventListeners: ((event: HealthEvent) => void)[] = [];
  private aggregation: AdminAggregation | undefined;
  readonly extensions: readonly ProxyExtension[];
  readonly adminGate: AdminGate | undefined;
  /** Times the fast path's connections out (client and upstream). */
  private readonly sweeper = new DeadlineSweeper();
  /** Whether plain HTTP/1.1 traffic takes the fast path (proxy.fastPath; TLS listeners never do). */
  private readonly fastPath: boolean;
  private readonly services: ExchangeServices;

  private constructor(options: ProxyServerOptions) {
    this.extensions = options.extensions ?? [];
    this.adminGate = options.adminGate;
    this.settings = options.settings;
    this.fastPath = options.settings.fastPath && options.settings.tls === undefined;
    this.admission = options.admission ?? admitAll;
    this.log = options.log ?? new AccessLog();
    this.events = new EventLog(options.settings.maxEvents);
    this.services = { metrics: this.metrics, accessLog: this.settings.accessLog ? this.log : undefined, done: () => this.requestDone() };
    this.checker = options.runHealthChecks === false ? undefined : new HealthChecker({
      maxConcurrentChecks: options.settings.maxConcurrentChecks,
      onResult: (pool, backend, result, events) => {
        this.metrics.countCheck(pool, backend, result.ok);
        this.pools.get(pool)?.apply(events);
        options.onProbeResult?.(pool, backend, result);
      },
    });
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
    const snapshot = options.source.current();
    snapshot.pools.forEach((pool, index) => this.addPool(pool, seed + index));
    this.router = new Router([...this.pools.keys()], snapshot.routes);
    this.stopWatching = options.source.watch((next) => this.applySnapshot(next, seed));
    this.metrics.sampleBackendsAtScrape(() => [...this.pools.values()].flatMap((pool) => pool.report().map((backend) => ({
      pool: pool.name, backend: backend.address, activeRequests: backend.activeRequests, healthy: backend.state === 'healthy',
      state: backend.state, effectiveWeight: backend.effectiveWeight,
    }))));
    this.traffic = createTrafficListener(options.settings, {
      request: (req, res, expectsContinue) => this.onRequest(req, res, expectsContinue),
      upgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
      refused: (limit) => this.metrics.countRefused(limit),
    }, this.fastPath ? { handler: this, sweeper: this.sweeper } : undefined);
    this.admin = createAdminServer(this);
    this.ticker = setInterval(() => {
      for (const pool of this.pools.values()) pool.tick();
    }, HEALTH_TICK_MS);
    this.ticker.unref();
  }

  static async start(options: ProxyServerOptions): Promise<ProxyServer> {
    const proxy = new ProxyServer(options);
    try {
      if (options.serveAdmin !== false) await listen(proxy.admin, options.settings.admin);
      if (options.serveTraffic !== false) await proxy.traffic.listen(options.settings.workers > 1);
    } catch (error) {
      await proxy.stop(0);
      throw error;
    }
    for (const pool of proxy.pools.values()) {
      if (pool.config.autoscale !== undefined && pool.backendCount === 0) proxy.log.notice(`pool ${pool.name}: autoscaled, so its instances come from the control plane through the store (proxy.store); until then it has no backends`, { pool: pool.name });
    }
    return proxy;
  }

  get trafficAddress(): AddressInfo {
    return this.traffic.address();
  }

  /** The cleartext HTTP/2 listener's address, when proxy.h2cListen is set. */
  get h2cAddress(): AddressInfo | undefined {
    return this.traffic.h2cAddress();
  }

  get adminAddress(): AddressInfo {
    return this.admin.address() as AddressInfo;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  pool(name: string): PoolRuntime | undefined {
    return this.pools.get(name);
  }

  poolNames(): string[] {
    return [...this.pools.keys()];
  }

  /** Applies a probe result another process observed (workers get their health from the primary). */
  applyProbeResult(poolName: string, backend: string, result: ProbeResult): void {
    const pool = this.pools.get(poolName);
    if (pool?.backend(backend) === undefined) return;
    pool.apply(pool.health.recordProbe(backend, result));
  }

  /** Records an event another process produced (a worker's passive ejection) without applying it here. */
  recordForeignEvent(event: HealthEvent): void {
    this.events.append(event);
    this.metrics.countHealthEvent(event.pool, event.backend, event.kind, event.cause);
  }

  /** Calls `listener` with every health event (the multi-process primary broadcasts them). */
  onHealthEvent(listener: (event: HealthEvent) => void): void {
    this.eventListeners.push(listener);
  }

  setAdminAggregation(aggregation: AdminAggregation): void {
    this.aggregation = aggregation;
  }

  /** Prometheus text for the admin port: this process's, or every process's through the primary. */
  async metricsText(): Promise<string> {
    const own = await (this.aggregation?.metricsText() ?? this.metrics.text());
    const added = await Promise.all(this.extensions.map((extension) => extension.metricsText?.() ?? ''));
    return [own, ...added].filter((text) => text !== '').join('\n');
  }

  async backendsView(): Promise<PoolsReport> {
    const report = await (this.aggregation?.backends() ?? this.backendsReport());
    for (const extension of this.extensions) extension.decorateBackends?.(report);
    return report;
  }

  drainBackend(poolName: string, backend: string): { pool: string; backend: string; state: string } | string {
    const pool = this.pools.get(poolName);
    if (pool?.backend(backend) === undefined) return `no backend ${backend} in pool ${poolName}`;
    pool.startDrain(backend);
    this.aggregation?.drainChanged(poolName, backend, true);
    return { pool: poolName, backend, state: pool.health.view(backend).state };
  }

  undrainBackend(poolName: string, backend: string): { pool: string; backend: string; state: string } | string {
    const pool = this.pools.get(poolName);
    if (pool?.backend(backend) === undefined) return `no backend ${backend} in pool ${poolName}`;
    pool.cancelDrain(backend);
    this.aggregation?.drainChanged(poolName, backend, false);
    return { pool: poolName, backend, state: pool.health.view(backend).state };
  }

  backendsReport(): PoolsReport {
    return {
      pools: [...this.pools.values()].map((pool) => {
        const backends = pool.report();
        return { name: pool.name, balance: pool.config.balance, panic: pool.balancer.inPanic, activeRequests: pool.activeRequests(), backends };
      }),
    };
  }

  /**
   * Drains and stops: no new connections, idle keep-alive connections closed, in-flight requests
   * get up to `deadlineMs` to finish; then every connection is closed.
   */
  async stop(deadlineMs: number = this.settings.shutdownDrainMs): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopWatching();
      this.checker?.stop();
      const trafficClosed = this.traffic.close();
      this.traffic.closeIdle();
      const idle = new Promise<void>((resolve) => {
        if (this.inFlight === 0) resolve();
        else this.idleWaiters.push(resolve);
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      })]);
      clearTimeout(timer);
      this.traffic.closeAll();
      await trafficClosed.catch(() => {});
      clearInterval(this.ticker);
      await Promise.all([...this.pools.values()].map((pool) => pool.close()));
      await new Promise<void>((resolve) => (this.admin.listening ? this.admin.close(() => resolve()) : resolve()));
      this.admin.closeAllConnections();
      this.sweeper.stop();
      this.log.flush();
    }
  }

  private addPool(config: ConcordConfig['pools'][number], seed: number): void {
    const pool = new PoolRuntime(config, this.settings.zone, seed, (event) => this.recordEvent(event), { sweeper: this.sweeper, fastPath: this.fastPath });
    pool.backendGate = this.admission.backendGate?.(config.name);
    this.pools.set(config.name, pool);
    for (const backend of pool.allBackends()) this.watchBackend(pool, backend.id);
  }

  private watchBackend(pool: PoolRuntime, id: string): void {
    const backend = pool.backend(id);
    if (this.checker === undefined || pool.probe === undefined || backend === undefined) return;
    this.checker.watch(pool.name, id, backend.address, pool.health, pool.probe);
  }

  /**
   * A new snapshot from the pool source: pools and backends added, changed or removed live. A pool
   * whose settings changed (not only its backends) gets a new runtime that starts from the old one's
   * health verdicts and drains; requests in flight finish on the old one, whose connections close
   * once they are done, so nothing is dropped.
   */
  private applySnapshot(snapshot: PoolSnapshot, seed: number): void {
    const wanted = new Set(snapshot.pools.map((pool) => pool.name));
    for (const [name, pool] of this.pools) {
      if (wanted.has(name)) continue;
      this.retirePool(pool);
    }
    snapshot.pools.forEach((config, index) => {
      const existing = this.pools.get(config.name);
      if (existing === undefined) {
        this.addPool(config, seed + 1000 + index);
        return;
      }
      if (!sameSettings(existing.config, config)) {
        this.retirePool(existing);
        this.addPool(config, seed + 2000 + index);
        this.pools.get(config.name)!.adoptStateFrom(existing);
        return;
      }
      const { added, removed } = existing.setBackends(config, false);
      for (const backend of removed) this.checker?.unwatch(config.name, backend.id);
      for (const backend of added) this.watchBackend(existing, backend.id);
    });
    this.router = new Router([...this.pools.keys()], snapshot.routes);
  }

  private retirePool(pool: PoolRuntime): void {
    for (const backend of pool.allBackends()) this.checker?.unwatch(pool.name, backend.id);
    this.pools.delete(pool.name);
    void pool.close();
  }

  /** Records an event of this process (logged, counted, in /events, and passed to every listener). */
  recordEvent(event: HealthEvent): void {
    this.events.append(event);
    this.metrics.countHealthEvent(event.pool, event.backend, event.kind, event.cause);
    this.log.event(event);
    for (const listener of this.eventListeners) listener(event);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const request = new NodeClientRequest(req, res, expectsContinue, this.settings.requestIdHeader, monotonicMs());
    const pool = this.route(request);
    if (pool !== undefined) this.handle(request, pool);
  }

  /** A request the fast path parsed; false hands it to node:http (pools the fast path does not serve). */
  handleFast(request: ClientRequest): boolean {
    const pool = this.route(request);
    if (pool === undefined) return true;
    if (!pool.servesFastPath) return false;
    this.handle(request, pool);
    return true;
  }

  handedOff(reason: string): void {
    this.metrics.countHandOff(reason);
  }

  /** The request's pool; when none matches, the client got a 404. */
  private route(request: ClientRequest): PoolRuntime | undefined {
    const poolName = this.router.route(request.host, request.path);
    const pool = poolName === undefined ? undefined : this.pools.get(poolName);
    if (pool === undefined) {
      const body = `CONCORD_E_PROXY_NO_ROUTE: no route for host ${request.host ?? '(none)'} and path ${request.path}; add one to routes:\n`;
      request.respond(404, { 'content-type': 'text/plain; charset=utf-8', 'x-concord-error': 'CONCORD_E_PROXY_NO_ROUTE' }, body, false);
    }
    return pool;
  }

  /** The request flow, for both client paths: body limit, admission, then the exchange with its retries. */
  private handle(request: ClientRequest, pool: PoolRuntime): void {
    const limit = pool.config.maxRequestBodyBytes ?? this.settings.maxRequestBodyBytes;
    if (limit > 0 && request.contentLength > limit) {
      this.metrics.countRefused('maxRequestBodyBytes');
      request.respond(413, { 'content-type': 'text/plain; charset=utf-8', 'x-concord-error': 'CONCORD_E_PROXY_BODY_TOO_LARGE' }, bodyTooLarge(pool, limit), true);
      return;
    }
    this.inFlight += 1;
    // Headers are read only when something needs them: building them costs, and most pools never look.
    const hashKey = pool.hashKeyOf?.(request.headers, request.path);
    const requestId = requestIdOf(request.givenRequestId);
    // A body of undeclared length (chunked, HTTP/2) is counted as it streams; the fast path only takes declared lengths.
    const bodyLimit = limit > 0 && request.contentLength < 0
      ? { maxBytes: limit, key: bodyLimitKey(pool), onRefused: () => this.metrics.countRefused('maxRequestBodyBytes') }
      : undefined;
    const io = request.prepareExchange(pool, requestId, bodyLimit);
    const decision = this.admission === admitAll ? ADMITTED
      : this.admission.admit({ pool: pool.name, method: request.method, path: request.path, headers: request.headers, clientKey: request.clientIp });
    if (decision instanceof Promise) {
      decision.then((admitted) => this.forward(request, pool, admitted, io, requestId, hashKey, monotonicMs()), (error: unknown) => this.admissionFailed(request, pool, error));
    } else {
      this.forward(request, pool, decision, io, requestId, hashKey, request.receivedMs);
    }
  }

  private forward(request: ClientRequest, pool: PoolRuntime, decision: AdmissionDecision, io: ExchangeIo, requestId: string, hashKey: string | undefined, admittedMs: number): void {
    if (!decision.admitted) {
      this.metrics.countRejected(pool.name, decision.status);
      this.metrics.countRequest(pool.name, 'none', decision.status, (monotonicMs() - request.receivedMs) / 1000);
      request.respond(decision.status, { 'content-type': 'text/plain; charset=utf-8', ...decision.headers }, `${decision.reason}\n`, false);
      this.requestDone();
      return;
    }
    const exchange = new Exchange({
      io, pool, method: request.method, path: request.path, host: request.host, requestId, clientIp: request.clientIp, hashKey,
      receivedMs: request.receivedMs, admittedMs, release: decision.release,
    }, this.services);
    request.exchangeStarted(exchange);
    exchange.start();
  }

  private admissionFailed(request: ClientRequest, pool: PoolRuntime, error: unknown): void {
    // Admission control failing is a bug in it; fail this request loudly rather than forward blindly.
    this.log.notice('admission control failed', { pool: pool.name, error: (error as Error).message });
    request.respond(500, { 'content-type': 'text/plain', 'x-concord-error': 'CONCORD_E_PROXY_ADMISSION_FAILED' }, 'CONCORD_E_PROXY_ADMISSION_FAILED: admission control failed\n', false);
    this.requestDone();
  }

  private requestDone(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = req.url ?? '/';
    const poolName = this.router.route(req.headers.host, path);
    const pool = poolName === undefined ? undefined : this.pools.get(poolName);
    if (pool === undefined || this.stopping) {
      refuseUpgrade(socket, pool === undefined ? 404 : 503, pool === undefined ? `no route for ${path}` : 'proxy is shutting down');
      return;
    }
    this.inFlight += 1;
    const headerName = this.settings.requestIdHeader;
    const given = req.headers[headerName];
    const requestId = requestIdOf(typeof given === 'string' ? given : undefined);
    passUpgrade(req, socket, head, pool, { clientIp: req.socket.remoteAddress ?? '', proto: this.traffic.proto, requestIdHeader: headerName, requestId }, () => this.requestDone());
  }
}

/** The config key that set a pool's body limit, for the 413 answer's text. */
function bodyLimitKey(pool: PoolRuntime): string {
  return pool.config.maxRequestBodyBytes === undefined ? 'proxy.maxRequestBodyBytes' : `pools[${pool.name}].maxRequestBodyBytes`;
}

/** The 413 answer's text for a declared Content-Length over the limit. */
function bodyTooLarge(pool: PoolRuntime, limit: number): string {
  return `CONCORD_E_PROXY_BODY_TOO_LARGE: request body over the limit of ${limit} bytes (${bodyLimitKey(pool)})\n`;
}

/** Whether two configurations of a pool differ in nothing but their backends (which change in place). */
function sameSettings(a: PoolSnapshot['pools'][number], b: PoolSnapshot['pools'][number]): boolean {
  return JSON.stringify({ ...a, backends: [] }) === JSON.stringify({ ...b, backends: [] });
}

function listen(server: Server, address: string): Promise<void> {
  const { host, port } = addressOf(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
