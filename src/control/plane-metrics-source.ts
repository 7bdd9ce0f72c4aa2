// The autoscaler's metrics inside the control plane: load from the registered proxies' admin
// ports (ProxyMetricsSource over their /backends, which the proxies enrich with rates), and each
// instance's readiness from the health results the control plane itself publishes, so an instance
// counts as ready exactly when the proxies start routing to it.

import { ProxyMetricsSource } from '../autoscale/controller/proxy-metrics-source.ts';
import type { MetricsSource } from '../autoscale/controller/metrics-source.ts';
import type { PoolSample } from '../autoscale/state/reconcile.ts';
import type { HealthRecord } from './health-record.ts';

export interface PlaneMetricsSourceOptions {
  /** The registered proxies' /backends URLs. */
  proxyUrls: () => string[];
  /** The current (not stale) published result of pool/backend. */
  health: (pool: string, backend: string) => HealthRecord | undefined;
  nowMs?: () => number;
  onProblem?: (message: string) => void;
}

export class PlaneMetricsSource implements MetricsSource {
  private readonly proxies: ProxyMetricsSource;
  private readonly options: PlaneMetricsSourceOptions;

  constructor(options: PlaneMetricsSourceOptions) {
    this.options = options;
    this.proxies = new ProxyMetricsSource({ urls: options.proxyUrls, ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }), ...(options.onProblem === undefined ? {} : { onProblem: options.onProblem }) });
  }

  async sample(pool: string, addresses: readonly string[]): Promise<PoolSample | undefined> {
    const fromProxies = this.options.proxyUrls().length === 0 ? undefined : await this.proxies.sample(pool);
    const base: PoolSample = fromProxies ?? { sampledAtMs: (this.options.nowMs ?? Date.now)(), backends: [] };
    const backends = addresses.map((address) => {
      const seen = { ...(base.backends.find((backend) => backend.address === address) ?? { address }) };
      const record = this.options.health(pool, address);
      // The shared checker's verdict decides readiness; without a current one there is no verdict (not a failure).
      if (record !== undefined) seen.healthy = record.state === 'healthy';
      else delete seen.healthy;
      return seen;
    });
    return { ...base, backends };
  }
}
