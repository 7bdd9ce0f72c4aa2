// Where the controller's metrics come from: per pool, the sample the policy's observation is built
// from (pool metrics from the proxies, each backend's health verdict, in-flight and requests/s).
// Two sources: ProxyMetricsSource scrapes the proxies' admin endpoints (proxy-metrics-source.ts);
// StaticMetricsSource answers whatever its owner sets (tests, and a controller run without proxies).

import type { PoolSample } from '../state/reconcile.ts';

export interface MetricsSource {
  /**
   * The latest sample for `pool`, whose instances serve on `addresses`; undefined when nothing
   * could be read (the policy then treats every metric as missing: it holds, it never scales in).
   */
  sample(pool: string, addresses: readonly string[]): Promise<PoolSample | undefined>;
  close?(): void;
}

/** Builds a pool's sample from the addresses its instances serve on. */
export type SampleFunction = (addresses: readonly string[], nowMs: number) => PoolSample | undefined;

/** Answers what its owner set, per pool; pools without a setting have no metrics. */
export class StaticMetricsSource implements MetricsSource {
  private readonly pools = new Map<string, SampleFunction>();
  private readonly nowMs: () => number;

  constructor(nowMs: () => number = Date.now) {
    this.nowMs = nowMs;
  }

  set(pool: string, sample: SampleFunction | undefined): void {
    if (sample === undefined) this.pools.delete(pool);
    else this.pools.set(pool, sample);
  }

  sample(pool: string, addresses: readonly string[]): Promise<PoolSample | undefined> {
    return Promise.resolve(this.pools.get(pool)?.(addresses, this.nowMs()));
  }
}

/**
 * A pool where every backend reports the same numbers: the shape most tests want.
 * `healthy` may be a function of the address (to fail one instance).
 */
export function uniformSample(
  load: { inflightPerInstance: number; requestsPerSecondPerInstance?: number; shedPerSecond?: number; healthy?: boolean | ((address: string) => boolean | undefined) },
): SampleFunction {
  return (addresses, nowMs) => ({
    sampledAtMs: nowMs,
    pool: { shedPerSecond: load.shedPerSecond ?? 0, errorRatio: 0, latencyMs: { mean: 10, p50: 10, p95: 20, p99: 30 }, external: {} },
    backends: addresses.map((address) => {
      const healthy = typeof load.healthy === 'function' ? load.healthy(address) : (load.healthy ?? true);
      return { address, ...(healthy === undefined ? {} : { healthy }), inflight: load.inflightPerInstance, requestsPerSecond: load.requestsPerSecondPerInstance ?? load.inflightPerInstance * 10 };
    }),
  });
}
