// Shared by the controller tests: a real store member in this process (short election timing, so
// leases can be 1-2 s), pools of real example apps behind a process provider, a metrics source
// that probes each instance's /healthz for the health verdict and reports the load the test sets,
// and bounded waits on the store's records.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoordStore } from '../../src/coord/coord-store.ts';
import { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../../src/coord/store-url.ts';
import { readEvents, type TimelineEvent } from '../../src/control/events.ts';
import type { MetricsSource } from '../../src/autoscale/controller/metrics-source.ts';
import type { PoolSetup } from '../../src/autoscale/controller/pool-period.ts';
import { policyConfig } from '../../src/autoscale/policy/defaults.ts';
import type { PolicyConfig } from '../../src/autoscale/policy/types.ts';
import { ProcessProvider } from '../../src/autoscale/providers/process-provider.ts';
import type { Provider } from '../../src/autoscale/providers/provider.ts';
import { instancesPrefix, statusKey } from '../../src/autoscale/state/keys.ts';
import { parseInstanceState, parsePoolStatus, type InstanceState, type PoolStatus } from '../../src/autoscale/state/records.ts';
import type { PoolSample } from '../../src/autoscale/state/reconcile.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { QUIET_LOGGER } from '../support/store-member.ts';
import { httpGet } from './processes.ts';

export const APP = fileURLToPath(new URL('../../examples/app/server.mjs', import.meta.url));

/** The control period of the test pools: short, so a test sees many periods in a few seconds. */
export const TEST_PERIOD_MS = 200;
/** The election lease of the test controllers. */
export const TEST_LEASE_TTL_SECONDS = 1;

export interface TestStore {
  endpoint: string;
  server: StoreServer;
  stop(): Promise<void>;
}

/** One member in this process with etcd's test timing (1 s is the shortest lease; expiry checked every 100 ms). */
export async function startTestStore(): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-controller-'));
  const config = resolveServerConfig({}, settingsFromFlags({
    name: 'store', dataDir: join(dir, 'store'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', heartbeatIntervalMs: '25', electionTimeoutMs: '250',
  }));
  const server = await StoreServer.start(config, { logger: QUIET_LOGGER, serviceOptions: { lease: { expiryCheckIntervalMs: 100 } } });
  return {
    endpoint: server.clientAddresses[0]!,
    server,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function storeClient(endpoint: string): EtcdCoordStore {
  return new EtcdCoordStore(parseStoreLocation(endpoint), { requestTimeoutMs: 3_000 });
}

/**
 * A port range below the kernel's ephemeral range, different for each test process and each
 * call, so parallel test files do not meet (the process provider tests use 20000 + pid % 500 * 20).
 */
let nextRangeStart = 31_000 + (process.pid % 400) * 40;
export function portRange(size: number): string {
  const low = nextRangeStart;
  nextRangeStart += size;
  return `${low}-${low + size - 1}`;
}

export function exampleAppProvider(pool: string): ProcessProvider {
  return new ProcessProvider({ pool, command: `${process.execPath} ${APP} --port {port} --service-time-ms 5`, portRange: portRange(20), host: '127.0.0.1', stopGraceMs: 2_000 });
}

export function testPolicy(overrides: Partial<PolicyConfig> & Pick<PolicyConfig, 'min' | 'max'>): PolicyConfig {
  return policyConfig({
    pool: 'web',
    target: { inflightPerInstance: 4 },
    periodMs: TEST_PERIOD_MS,
    warmupMs: 0,
    drainDeadlineMs: 2_000,
    scaleOut: { stabilizationMs: 0, cooldownMs: 0, rateLimits: [{ type: 'instances', value: 10, periodMs: 1_000 }], select: 'max' },
    scaleIn: { stabilizationMs: 1_000, cooldownMs: 0, rateLimits: [{ type: 'instances', value: 10, periodMs: 1_000 }], select: 'max' },
    replacement: { failingForMs: 2_000, startupTimeoutMs: 10_000, maxSharePercent: 50, holdAboveUnhealthyPercent: 80 },
    ...overrides,
  });
}

/** A pool whose controllers all share one provider (as several controllers share one cloud). */
export function sharedPoolSetup(config: PolicyConfig, provider: Provider): PoolSetup {
  return { name: config.pool, config, launchVersion: 'v1', createProvider: () => provider, instancesDieWithController: false, listGraceMs: 0 };
}

/**
 * Health from the instances themselves (GET /healthz), load from the test: what a proxy and the
 * health checker would report, without either. The load is a total of in-flight requests, spread
 * over the healthy instances, so more instances each carry less.
 */
export class ProbingMetricsSource implements MetricsSource {
  /** In-flight requests over the whole pool; undefined: no metrics at all. */
  totalInflight: number | undefined = 0;

  async sample(_pool: string, addresses: readonly string[]): Promise<PoolSample | undefined> {
    if (this.totalInflight === undefined) return undefined;
    const health = await Promise.all(addresses.map((address) => httpGet(address, '/healthz', 500).then((answer) => answer.status === 200, () => false)));
    const serving = Math.max(1, health.filter(Boolean).length);
    const inflight = this.totalInflight / serving;
    const backends = addresses.map((address, i) => ({ address, healthy: health[i]!, inflight: health[i] ? inflight : 0, requestsPerSecond: health[i] ? inflight * 10 : 0 }));
    return { sampledAtMs: Date.now(), pool: { shedPerSecond: 0, errorRatio: 0, latencyMs: { mean: 5, p50: 5, p95: 8, p99: 10 }, external: {} }, backends };
  }
}

export async function instanceRecords(store: CoordStore, pool: string): Promise<InstanceState[]> {
  const { kvs } = await store.range(instancesPrefix(pool), { prefix: true });
  return kvs.map((kv) => {
    const parsed = parseInstanceState(kv.value, kv.key);
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.value;
  });
}

export async function poolStatus(store: CoordStore, pool: string): Promise<PoolStatus | undefined> {
  const kv = await store.get(statusKey(pool));
  if (kv === undefined) return undefined;
  const parsed = parsePoolStatus(kv.value, kv.key);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

export async function timeline(store: CoordStore, kind?: string): Promise<TimelineEvent[]> {
  const events = await readEvents(store);
  return kind === undefined ? events : events.filter((event) => event.kind === kind);
}
