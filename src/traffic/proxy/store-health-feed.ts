// Health for a store-fed proxy. The control plane checks each backend once for the whole cluster
// and publishes the verdict at /concord/health/<pool>/<backend> (src/control/health-record.ts);
// this proxy applies each published verdict to its own health state, so every proxy routes by
// the same checks without probing anything itself.
//
// Static stability: a result counts as current while it was rewritten within maxResultAgeMs (on
// this proxy's clock, from when it saw the write; a member rewrites it every refreshMs). When it
// goes stale (the store or the checking member is gone), nothing changes at once: the backend
// keeps its last state, and this proxy starts checking it itself, from that state, with the pool's
// own rise and fall. Stale data is never a reason to mark anything down, so an outage of the
// control plane cannot eject backends in bulk. When current results come back, its own checks stop.
// A backend with no result yet gets the same grace from when the proxy first saw it.

import { parseHealthRecord, type HealthRecord } from '../../control/health-record.ts';
import { HEALTH_PREFIX, poolAndBackendOf } from '../../control/store-keys.ts';
import type { KeyValue } from '../../coord/coord-store.ts';
import { HealthChecker } from '../probes/health-checker.ts';
import { monotonicMs, wallMs } from './clocks.ts';
import type { PoolRuntime } from './pool-runtime.ts';
import type { ProxyServer } from './proxy-server.ts';

interface Published {
  record: HealthRecord;
  /** When this proxy saw the write (monotonic ms), or the equivalent for a record read at start. */
  receivedMs: number;
  /** Applied to the pool runtime of this identity (a configuration change replaces runtimes). */
  appliedTo: PoolRuntime | undefined;
}

interface OwnCheck {
  runtime: PoolRuntime;
}

export interface StoreHealthFeedOptions {
  maxConcurrentChecks: number;
  /** What the applied configuration says (controlPlane.health.maxResultAgeMs); read at each tick. */
  maxResultAgeMs: () => number;
  onNotice?: (message: string, fields: Record<string, unknown>) => void;
}

export class StoreHealthFeed {
  private readonly published = new Map<string, Published>();
  private readonly firstSeenMs = new Map<string, number>();
  private readonly ownChecks = new Map<string, OwnCheck>();
  private readonly checker: HealthChecker;
  private readonly options: StoreHealthFeedOptions;
  private proxy: ProxyServer | undefined;
  /** True while a published verdict is being applied: its events are the checker's, already on the timeline. */
  applyingPublished = false;

  constructor(options: StoreHealthFeedOptions) {
    this.options = options;
    this.checker = new HealthChecker({
      maxConcurrentChecks: options.maxConcurrentChecks,
      onResult: (pool, _backend, _result, events) => this.proxy?.pool(pool)?.apply(events),
    });
  }

  attach(proxy: ProxyServer): void {
    this.proxy = proxy;
    this.tick();
  }

  detach(): void {
    this.checker.stop();
    this.ownChecks.clear();
    this.proxy = undefined;
  }

  /** Backends this proxy is checking itself, as pool/backend. */
  checkingItself(): string[] {
    return [...this.ownChecks.keys()];
  }

  /** Records read or written under /concord/health/ (reread: the whole prefix was read again). */
  onRecords(updated: KeyValue[], deleted: string[], reread: boolean): void {
    const now = monotonicMs();
    for (const kv of updated) {
      const names = poolAndBackendOf(HEALTH_PREFIX, kv.key);
      if (names === undefined) continue;
      const parsed = parseHealthRecord(kv.value);
      if (!parsed.ok) {
        this.options.onNotice?.(`ignoring the health record at ${kv.key}: ${parsed.problem}`, { key: kv.key });
        continue;
      }
      // A record read at start (or after a lost watch) may be old: judge it by its own time, at most
      // maxResultAgeMs back (clocks of different machines are not trusted further than that).
      const ageMs = reread ? Math.min(Math.max(0, wallMs() - parsed.record.publishedAtMs), this.options.maxResultAgeMs()) : 0;
      this.published.set(`${names.pool}/${names.backend}`, { record: parsed.record, receivedMs: now - ageMs, appliedTo: undefined });
    }
    for (const key of deleted) {
      const names = poolAndBackendOf(HEALTH_PREFIX, key);
      if (names !== undefined) this.published.delete(`${names.pool}/${names.backend}`);
    }
    this.tick();
  }

  /** Applies current results and starts or stops the proxy's own checks; called on every change and periodically. */
  tick(): void {
    const proxy = this.proxy;
    if (proxy === undefined) return;
    const now = monotonicMs();
    const maxAgeMs = this.options.maxResultAgeMs();
    const present = new Set<string>();
    for (const name of proxy.poolNames()) {
      const runtime = proxy.pool(name);
      if (runtime === undefined || runtime.probe === undefined) continue;
      for (const backend of runtime.allBackends()) {
        const key = `${runtime.name}/${backend.id}`;
        present.add(key);
        const seenMs = this.firstSeenMs.get(key) ?? now;
        this.firstSeenMs.set(key, seenMs);
        const published = this.published.get(key);
        const current = published !== undefined && now - published.receivedMs <= maxAgeMs;
        if (current) {
          this.stopOwnCheck(key, 'current results are published again');
          if (published.appliedTo !== runtime) this.applyPublished(runtime, backend.id, published);
        } else if (now - (published?.receivedMs ?? seenMs) > maxAgeMs) {
          this.startOwnCheck(key, runtime, backend.id, published === undefined ? 'no result was published' : `the published result is older than ${maxAgeMs} ms`);
        }
      }
    }
    for (const key of [...this.ownChecks.keys()]) if (!present.has(key)) this.stopOwnCheck(key, undefined);
    for (const key of [...this.firstSeenMs.keys()]) if (!present.has(key)) this.firstSeenMs.delete(key);
  }

  private applyPublished(runtime: PoolRuntime, backend: string, published: Published): void {
    const { record } = published;
    const lastProbe = record.lastProbe;
    const events = runtime.health.applyVerdict(backend, {
      healthy: record.state === 'healthy', atMs: record.sinceMs, detail: `${record.detail} (checked by ${record.checker})`,
      ...(record.detectionMs === undefined ? {} : { detectionMs: record.detectionMs }),
      ...(lastProbe === undefined ? {} : { lastProbe }),
    });
    published.appliedTo = runtime;
    this.applyingPublished = true;
    try {
      runtime.apply(events);
    } finally {
      this.applyingPublished = false;
    }
  }

  private startOwnCheck(key: string, runtime: PoolRuntime, backend: string, why: string): void {
    const own = this.ownChecks.get(key);
    if (own?.runtime === runtime) return;
    if (own !== undefined) this.checker.unwatch(own.runtime.name, backend);
    const target = runtime.backend(backend)!.address;
    this.checker.watch(runtime.name, backend, target, runtime.health, runtime.probe!);
    this.ownChecks.set(key, { runtime });
    if (own === undefined) this.options.onNotice?.(`checking ${key} from this proxy: ${why}`, { pool: runtime.name, backend });
  }

  private stopOwnCheck(key: string, why: string | undefined): void {
    const own = this.ownChecks.get(key);
    if (own === undefined) return;
    const backend = key.slice(own.runtime.name.length + 1);
    this.checker.unwatch(own.runtime.name, backend);
    this.ownChecks.delete(key);
    if (why !== undefined) this.options.onNotice?.(`stopped checking ${key} from this proxy: ${why}`, { pool: own.runtime.name, backend });
  }
}
