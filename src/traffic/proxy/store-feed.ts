// Everything a proxy takes from, and gives to, the coordination store (`concord proxy --store URL`):
//
//   takes   /concord/config                        pools and routes (StorePoolSource), applied live
//           /concord/autoscale/pools/*/instances/  an autoscaled pool's backends, and which are draining
//           /concord/drains/<pool>/<backend>       operators' drains (concord pool drain, the dashboard)
//           /concord/health/<pool>/<backend>       the control plane's verdicts (StoreHealthFeed)
//   gives   /concord/proxies/<name>                its registration (lease): where its admin port is,
//                                                  so the control plane can read its metrics
//           /concord/events/...                    its own events: ejections, drains, shedding, panic
//
// Static stability: every mirror keeps its last contents while the store is unreachable, so the
// proxy keeps serving with its last configuration, backends and verdicts; health results that go
// stale make it check backends itself (store-health-feed.ts). Nothing here ever stops traffic.

import { hostname } from 'node:os';
import type { CoordStore } from '../../coord/coord-store.ts';
import { AppliedConfigWatcher } from '../../control/config-store.ts';
import type { ProxySettings } from '../../control/config.ts';
import { EventSink } from '../../control/event-sink.ts';
import { Registration } from '../../control/registration.ts';
import { DRAINS_PREFIX, HEALTH_PREFIX, poolAndBackendOf, proxyKey } from '../../control/store-keys.ts';
import { StoreMirror } from '../../control/store-mirror.ts';
import { AUTOSCALE_PREFIX } from '../../autoscale/state/keys.ts';
import { parseInstanceState, type InstanceState } from '../../autoscale/state/records.ts';
import type { HealthEvent } from '../health/events.ts';
import { StoreHealthFeed } from './store-health-feed.ts';
import { StorePoolSource } from './store-pool-source.ts';
import type { ProxyServer } from './proxy-server.ts';

export const DEFAULT_PROXY_REGISTRATION_TTL_SECONDS = 10;
export const DEFAULT_HEALTH_TICK_MS = 500;
export const DEFAULT_STORE_START_TIMEOUT_MS = 5_000;
/** Until a configuration says otherwise (controlPlane.health.maxResultAgeMs). */
const DEFAULT_MAX_RESULT_AGE_MS = 15_000;

const INSTANCE_KEY = /^\/concord\/autoscale\/pools\/([^/]+)\/instances\/[^/]+$/;

export interface StoreFeedOptions {
  store: CoordStore;
  settings: ProxySettings;
  /** The proxy's name in the store (default: proxy.name, else host-pid). */
  name?: string;
  registrationTtlSeconds?: number;
  /** How often staleness and drains are looked at. */
  healthTickMs?: number;
  /** How long start() waits for the store before serving the cached configuration. */
  startTimeoutMs?: number;
  /** Where the last configuration read from the store is kept, for a start without the store. */
  cacheFile?: string;
  eventFlushIntervalMs?: number;
  onNotice?: (message: string, fields?: Record<string, unknown>) => void;
}

export function defaultComponentName(prefix: string): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 40) || prefix;
  return `${host}-${process.pid}`;
}

/** host:port for others to reach a listener: a wildcard address is replaced by this host's name. */
export function advertisedAddress(address: { address: string; port: number }): string {
  const host = address.address === '0.0.0.0' || address.address === '::' ? hostname() : address.address;
  return host.includes(':') ? `[${host}]:${address.port}` : `${host}:${address.port}`;
}

export class StoreFeed {
  readonly poolSource: StorePoolSource;
  readonly health: StoreHealthFeed;
  readonly name: string;
  private readonly options: StoreFeedOptions;
  private readonly configWatcher: AppliedConfigWatcher;
  private readonly instanceMirror: StoreMirror;
  private readonly drainMirror: StoreMirror;
  private readonly healthMirror: StoreMirror;
  private readonly events: EventSink;
  private readonly instances = new Map<string, Map<string, InstanceState>>();
  /** pool/backend drains this feed started (and so may end); drains made on the proxy's own admin port stay. */
  private readonly drainedByStore = new Set<string>();
  private registration: Registration | undefined;
  private proxy: ProxyServer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly startedAtMs = Date.now();

  constructor(options: StoreFeedOptions) {
    this.options = options;
    this.name = options.name ?? options.settings.name ?? defaultComponentName('proxy');
    const notice = (message: string, fields: Record<string, unknown> = {}) => options.onNotice?.(message, fields);
    this.poolSource = new StorePoolSource(options.cacheFile === undefined ? {} : { cacheFile: options.cacheFile });
    this.health = new StoreHealthFeed({
      maxConcurrentChecks: options.settings.maxConcurrentChecks,
      maxResultAgeMs: () => this.poolSource.applied?.config.controlPlane.health.maxResultAgeMs ?? DEFAULT_MAX_RESULT_AGE_MS,
      onNotice: notice,
    });
    this.configWatcher = new AppliedConfigWatcher(options.store, {
      onConfig: (applied) => {
        notice(`configuration revision ${applied.revision} (${applied.digest}) applied`, { revision: applied.revision.toString(), pools: applied.config.pools.map((pool) => pool.name) });
        this.poolSource.setConfig(applied);
        void this.registration?.refresh();
        this.afterChange();
      },
      onRejected: (problem) => notice(`configuration revision ${problem.revision} (${problem.digest}) refused; the running configuration stays: ${problem.message}`, { revision: problem.revision.toString() }),
      onDeleted: (revision) => notice(`the configuration was deleted at revision ${revision}; the running configuration stays`),
      onProblem: (message) => notice(message),
    });
    this.instanceMirror = new StoreMirror(options.store, {
      key: AUTOSCALE_PREFIX, prefix: true, onProblem: (message) => notice(message),
      onChange: (change) => {
        for (const key of change.deleted) this.forgetInstance(key);
        for (const kv of change.updated) this.recordInstance(kv.key, kv.value);
        this.poolSource.setInstances(new Map([...this.instances].map(([pool, byId]) => [pool, [...byId.values()]])));
        this.afterChange();
      },
    });
    this.drainMirror = new StoreMirror(options.store, { key: DRAINS_PREFIX, prefix: true, onProblem: (message) => notice(message), onChange: () => this.afterChange() });
    this.healthMirror = new StoreMirror(options.store, {
      key: HEALTH_PREFIX, prefix: true, onProblem: (message) => notice(message),
      onChange: (change) => this.health.onRecords(change.updated, change.deleted, change.reread),
    });
    this.events = new EventSink(options.store, { writer: this.name, source: 'proxy', flushIntervalMs: options.eventFlushIntervalMs, onProblem: (message) => notice(message) });
  }

  /** Starts following the store; resolves once the configuration was read, or (store unreachable) after startTimeoutMs with the cache. */
  async start(): Promise<void> {
    this.configWatcher.start();
    this.instanceMirror.start();
    this.drainMirror.start();
    this.healthMirror.start();
    const timeoutMs = this.options.startTimeoutMs ?? DEFAULT_STORE_START_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const loaded = await Promise.race([
      Promise.all([this.configWatcher.loaded(), this.instanceMirror.loaded()]).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!loaded) this.options.onNotice?.(`the store did not answer within ${timeoutMs} ms: ${this.poolSource.loadCache()}`, {});
    else if (this.configWatcher.applied === undefined) this.options.onNotice?.('no configuration is applied in the store yet (concord config apply FILE); serving nothing until one is', {});
  }

  /** Connects the running proxy: verdicts, drains, its registration and its events. */
  async attach(proxy: ProxyServer): Promise<void> {
    this.proxy = proxy;
    this.health.attach(proxy);
    proxy.onHealthEvent((event) => {
      if (!this.health.applyingPublished) this.events.push(timelineEventOf(event));
    });
    this.events.start();
    const admin = `http://${advertisedAddress(proxy.adminAddress)}`;
    const listen = advertisedAddress(proxy.trafficAddress);
    this.registration = new Registration(this.options.store, {
      key: proxyKey(this.name),
      ttlSeconds: this.options.registrationTtlSeconds ?? DEFAULT_PROXY_REGISTRATION_TTL_SECONDS,
      value: () => JSON.stringify({
        name: this.name, admin, listen, host: hostname(), pid: process.pid, startedAtMs: this.startedAtMs,
        configRevision: this.poolSource.applied?.revision?.toString() ?? null,
      }),
      onChange: (registered, detail) => this.options.onNotice?.(`proxy registration: ${detail}`, { registered }),
    });
    this.registration.start();
    this.afterChange();
    this.ticker = setInterval(() => this.afterChange(), this.options.healthTickMs ?? DEFAULT_HEALTH_TICK_MS);
    this.ticker.unref();
  }

  /** Leaves the store: deregisters (so the control plane stops reading its metrics) and writes its last events. */
  async detach(): Promise<void> {
    clearInterval(this.ticker);
    this.health.detach();
    await this.registration?.stop();
    await this.events.stop();
    this.proxy = undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([this.configWatcher.stop(), this.instanceMirror.stop(), this.drainMirror.stop(), this.healthMirror.stop()]);
  }

  private afterChange(): void {
    if (this.proxy === undefined) return;
    this.health.tick();
    this.applyDrains(this.proxy);
  }

  private recordInstance(key: string, value: string): void {
    const match = INSTANCE_KEY.exec(key);
    if (match === null) return;
    const parsed = parseInstanceState(value, key);
    if (!parsed.ok) {
      this.options.onNotice?.(`ignoring ${parsed.problem}`, { key });
      return;
    }
    const pool = match[1]!;
    let byId = this.instances.get(pool);
    if (byId === undefined) this.instances.set(pool, (byId = new Map()));
    byId.set(key, parsed.value);
  }

  private forgetInstance(key: string): void {
    const match = INSTANCE_KEY.exec(key);
    if (match !== null) this.instances.get(match[1]!)?.delete(key);
  }

  /** Operators' drains and the autoscaler's (an instance it is removing) both stop new requests to a backend. */
  private applyDrains(proxy: ProxyServer): void {
    const wanted = new Set<string>();
    for (const kv of this.drainMirror.values()) {
      const names = poolAndBackendOf(DRAINS_PREFIX, kv.key);
      if (names !== undefined) wanted.add(`${names.pool}/${names.backend}`);
    }
    for (const [pool, byId] of this.instances) {
      for (const instance of byId.values()) if (instance.drainingSinceMs !== undefined) wanted.add(`${pool}/${instance.address}`);
    }
    for (const pool of proxy.poolNames()) {
      const runtime = proxy.pool(pool)!;
      for (const backend of runtime.allBackends()) {
        const key = `${pool}/${backend.id}`;
        if (wanted.has(key) && !runtime.health.isDraining(backend.id)) {
          proxy.drainBackend(pool, backend.id);
          this.drainedByStore.add(key);
        } else if (!wanted.has(key) && this.drainedByStore.has(key)) {
          proxy.undrainBackend(pool, backend.id);
          this.drainedByStore.delete(key);
        }
      }
    }
  }
}

/** A proxy's event as a timeline event: the backend and the cause go with it. */
export function timelineEventOf(event: HealthEvent): { atMs: number; kind: string; pool: string; message: string; data: Record<string, unknown> } {
  const subject = event.backend === '*' ? `pool ${event.pool}` : event.backend;
  return {
    atMs: event.atMs,
    kind: event.kind,
    pool: event.pool,
    message: `${subject}: ${event.detail}`,
    data: {
      backend: event.backend, cause: event.cause,
      ...(event.detectionMs === undefined ? {} : { detectionMs: event.detectionMs }),
      ...(event.ejectionMs === undefined ? {} : { ejectionMs: event.ejectionMs }),
    },
  };
}
