// Health checked once per backend per cluster. Every control-plane member runs this; each backend
// (a pool's static backends, or an autoscaled pool's instances) is owned by exactly one live member,
// chosen by rendezvous hashing over the registered members (sharding/rendezvous.ts). The owner
// probes it with the pool's check and rise/fall (the proxy's own health core and probes), and
// publishes the result at /concord/health/<pool>/<backend> for every proxy: at once when the
// verdict changes (with the detection time), and at least every refreshMs otherwise, so proxies
// can tell a current result from one nobody stands behind.
//
// When a member dies, its registration lease expires and its key disappears; the others see the
// new member list and the backends it owned move to the member with the next highest score, which
// starts from the published verdict (no flap) and probes within one interval. A member that is
// not registered (its lease lost, or not yet granted) owns nothing, so two members never both
// believe they own a backend for longer than it takes a watch to deliver the change.

import type { CoordStore } from '../coord/coord-store.ts';
import { SeededRandom } from '../random/seeded-random.ts';
import type { ProbeResult } from '../traffic/health/active-check.ts';
import type { HealthEvent } from '../traffic/health/events.ts';
import { PoolHealth } from '../traffic/health/pool-health.ts';
import { DEFAULT_MAX_CONCURRENT_CHECKS, HealthChecker } from '../traffic/probes/health-checker.ts';
import type { Probe } from '../traffic/probes/probe.ts';
import { activeCheckOptions, createProbe } from '../traffic/proxy/pool-runtime.ts';
import { addressOf, type ConcordConfig, type PoolConfig } from './config.ts';
import type { HealthRecord } from './health-record.ts';
import { ownerOf } from './sharding/rendezvous.ts';
import { healthKey } from './store-keys.ts';

export interface SharedHealthOptions {
  store: CoordStore;
  /** This member's name (as registered). */
  member: string;
  /** Wall clock for records and events. */
  clock?: () => number;
  /** Health transitions, for the event timeline. */
  onEvent?: (event: HealthEvent, checker: string) => void;
  onProbe?: (pool: string, backend: string, result: ProbeResult) => void;
  onNotice?: (message: string) => void;
}

interface PoolChecks {
  config: PoolConfig;
  /** The health section it was built from, to rebuild on a change. */
  signature: string;
  health: PoolHealth;
  probe: Probe;
}

interface Owned {
  pool: string;
  backend: string;
  /** When the record was last written by this member (wall clock), undefined before the first write. */
  publishedAtMs: number | undefined;
  /** Verdict reached by this member: since when, and the detection time of a marked-down. */
  sinceMs: number;
  detectionMs: number | undefined;
  detail: string;
  writing: Promise<void>;
}

const DEFAULT_REFRESH_MS = 5_000;

export class SharedHealthChecker {
  private readonly options: SharedHealthOptions;
  private readonly clock: () => number;
  private readonly checker: HealthChecker;
  private readonly pools = new Map<string, PoolChecks>();
  private readonly owned = new Map<string, Owned>();
  private config: ConcordConfig | undefined;
  private members: string[] = [];
  private registered = false;
  private instances = new Map<string, string[]>();
  private published = new Map<string, HealthRecord>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Probes this member has run, by result (for metrics). */
  readonly probeCounts = { pass: 0, fail: 0 };
  publishFailures = 0;

  constructor(options: SharedHealthOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.checker = new HealthChecker({
      // Until a configuration arrives; then controlPlane.health.maxConcurrentChecks (setConfig).
      maxConcurrentChecks: DEFAULT_MAX_CONCURRENT_CHECKS,
      onResult: (pool, backend, result, events) => this.onResult(pool, backend, result, events),
    });
  }

  start(): void {
    this.scheduleRefresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.refreshTimer);
    this.checker.stop();
    this.owned.clear();
  }

  setConfig(config: ConcordConfig): void {
    this.config = config;
    this.checker.setMaxConcurrentChecks(config.controlPlane.health.maxConcurrentChecks);
    this.reconcile();
  }

  /** The live members, and whether this one is among them with a live lease. */
  setMembers(members: readonly string[], registered: boolean): void {
    this.members = [...members].sort();
    this.registered = registered;
    this.reconcile();
  }

  /** An autoscaled pool's instances (addresses), by pool. */
  setInstances(byPool: Map<string, string[]>): void {
    this.instances = byPool;
    this.reconcile();
  }

  /** The records currently published (read back from the store), by pool/backend. */
  setPublished(records: Map<string, HealthRecord>): void {
    this.published = records;
  }

  /** pool/backend of every backend this member checks now. */
  ownedBackends(): string[] {
    return [...this.owned.keys()].sort();
  }

  /** Every backend the configuration names, as pool/backend (what the cluster checks). */
  wantedBackends(): Map<string, { pool: string; backend: string }> {
    const wanted = new Map<string, { pool: string; backend: string }>();
    for (const pool of this.config?.pools ?? []) {
      if (pool.health === undefined) continue;
      const addresses = pool.autoscale === undefined ? pool.backends.map((backend) => backend.address) : (this.instances.get(pool.name) ?? []);
      for (const backend of addresses) wanted.set(`${pool.name}/${backend}`, { pool: pool.name, backend });
    }
    return wanted;
  }

  /** Which member checks pool/backend under the current member list. */
  ownerOf(key: string): string | undefined {
    return ownerOf(this.members, key);
  }

  private reconcile(): void {
    if (this.stopped) return;
    this.syncPools();
    const wanted = this.wantedBackends();
    const mine = new Set<string>();
    if (this.registered) for (const key of wanted.keys()) if (ownerOf(this.members, key) === this.options.member) mine.add(key);
    for (const [key, owned] of this.owned) {
      const checks = this.pools.get(owned.pool);
      if (mine.has(key) && checks?.health.ids().includes(owned.backend)) continue;
      this.checker.unwatch(owned.pool, owned.backend);
      checks?.health.removeBackend(owned.backend);
      this.owned.delete(key);
      this.options.onNotice?.(`stopped checking ${key}: ${this.registered ? `${ownerOf(this.members, key) ?? 'nobody'} owns it now` : 'this member is not registered'}`);
    }
    for (const key of mine) {
      if (this.owned.has(key)) continue;
      const { pool, backend } = wanted.get(key)!;
      this.take(pool, backend);
    }
  }

  /** One PoolHealth and probe per pool with a health section, rebuilt when the section changes. */
  private syncPools(): void {
    const pools = new Map((this.config?.pools ?? []).filter((pool) => pool.health !== undefined).map((pool) => [pool.name, pool]));
    for (const [name, checks] of this.pools) {
      const pool = pools.get(name);
      if (pool !== undefined && JSON.stringify(pool.health) === checks.signature) {
        checks.config = pool;
        continue;
      }
      for (const [key, owned] of this.owned) {
        if (owned.pool !== name) continue;
        this.checker.unwatch(name, owned.backend);
        this.owned.delete(key);
      }
      this.pools.delete(name);
    }
    for (const [name, pool] of pools) {
      if (this.pools.has(name)) continue;
      const active = activeCheckOptions(pool)!;
      const health = new PoolHealth({
        pool: name, active,
        // Passive detection is the proxies' (they see the traffic); here only the active check runs.
        outlier: { ...pool.outlierDetection, successRateRequestVolume: 0, successRateMinimumHosts: 1, successRateStdevFactor: 1 },
      }, new SeededRandom(Math.floor(Math.random() * 2 ** 31)));
      this.pools.set(name, { config: pool, signature: JSON.stringify(pool.health), health, probe: createProbe(pool)! });
    }
  }

  /** Starts checking a backend, from the published verdict when there is one. */
  private take(pool: string, backend: string): void {
    const checks = this.pools.get(pool);
    if (checks === undefined) return;
    const key = `${pool}/${backend}`;
    const record = this.published.get(key);
    checks.health.addBackend(backend, record === undefined || record.state === 'healthy');
    if (record !== undefined) {
      checks.health.applyVerdict(backend, { healthy: record.state === 'healthy', atMs: record.sinceMs, detail: record.detail, ...(record.lastProbe === undefined ? {} : { lastProbe: record.lastProbe }) });
    }
    this.owned.set(key, {
      pool, backend, publishedAtMs: undefined, sinceMs: record?.sinceMs ?? this.clock(), detectionMs: record?.detectionMs, detail: record?.detail ?? 'not checked yet', writing: Promise.resolve(),
    });
    this.checker.watch(pool, backend, addressOf(backend), checks.health, checks.probe);
    this.options.onNotice?.(`checking ${key}${record === undefined ? '' : ` (continuing from ${record.state}, published by ${record.checker})`}`);
  }

  private onResult(pool: string, backend: string, result: ProbeResult, events: HealthEvent[]): void {
    const key = `${pool}/${backend}`;
    const owned = this.owned.get(key);
    if (owned === undefined) return;
    this.probeCounts[result.ok ? 'pass' : 'fail'] += 1;
    this.options.onProbe?.(pool, backend, result);
    const transitions = events.filter((event) => event.kind === 'marked-down' || event.kind === 'marked-up');
    for (const event of transitions) {
      owned.sinceMs = event.atMs;
      owned.detectionMs = event.detectionMs;
      owned.detail = event.detail;
      this.options.onEvent?.(event, this.options.member);
    }
    if (transitions.length === 0) owned.detail = result.detail;
    if (transitions.length > 0 || owned.publishedAtMs === undefined) this.publish(owned);
  }

  private publish(owned: Owned): void {
    const checks = this.pools.get(owned.pool);
    if (checks === undefined) return;
    const view = checks.health.view(owned.backend);
    const now = this.clock();
    const record: HealthRecord = {
      pool: owned.pool, backend: owned.backend,
      state: view.activeHealthy === false ? 'unhealthy' : 'healthy',
      sinceMs: owned.sinceMs, detail: owned.detail, checker: this.options.member, publishedAtMs: now,
      refreshMs: this.config?.controlPlane.health.refreshMs ?? DEFAULT_REFRESH_MS,
      ...(view.activeHealthy === false && owned.detectionMs !== undefined ? { detectionMs: owned.detectionMs } : {}),
      ...(view.lastCheck === undefined ? {} : { lastProbe: { ok: view.lastCheck.ok, detail: view.lastCheck.detail, startedAtMs: view.lastCheck.startedAtMs, finishedAtMs: view.lastCheck.finishedAtMs } }),
    };
    owned.publishedAtMs = now;
    // Writes of one backend stay in order; a failed one is retried by the next refresh.
    owned.writing = owned.writing.then(() => this.options.store.put(healthKey(owned.pool, owned.backend), JSON.stringify(record)).then(() => undefined, (error: unknown) => {
      this.publishFailures += 1;
      owned.publishedAtMs = 0;
      this.options.onNotice?.(`cannot publish the health of ${owned.pool}/${owned.backend}: ${(error as Error).message}`);
    }));
  }

  /** Rewrites every owned result older than refreshMs, so proxies know it is current. */
  private scheduleRefresh(): void {
    const refreshMs = this.config?.controlPlane.health.refreshMs ?? DEFAULT_REFRESH_MS;
    this.refreshTimer = setTimeout(() => {
      const now = this.clock();
      for (const owned of this.owned.values()) {
        if (owned.publishedAtMs === undefined) continue; // not probed yet: nothing to stand behind
        if (now - owned.publishedAtMs >= refreshMs * 0.9) this.publish(owned);
      }
      if (!this.stopped) this.scheduleRefresh();
    }, Math.max(50, Math.floor(refreshMs / 4)));
    this.refreshTimer.unref();
  }
}
