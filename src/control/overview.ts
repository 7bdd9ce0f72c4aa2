// The cluster at a glance (GET /api/overview, the dashboard's data): store members and leader,
// the proxies and their traffic, each pool's backends, shedding and autoscaler, and the kill switch.
// Built from what the control plane already follows (configuration, published health, instance
// records, proxy registrations) plus a scrape of each proxy's admin port; a proxy or a store call
// that fails leaves its part out rather than failing the whole answer.

import type { AutoscaleReport } from '../autoscale/controller/kill-switch.ts';
import type { FreezeRecord } from '../autoscale/policy/types.ts';
import type { StoreMember } from '../coord/store-cluster.ts';
import type { AutoscaleOverview, BackendOverview, BackendState, Overview, PoolOverview, ShedOverview } from './admin-api-types.ts';
import type { ConcordConfig, PoolConfig } from './config.ts';
import type { HealthRecord } from './health-record.ts';
import type { ProxyReport, ProxyScrape } from './proxy-scraper.ts';

export interface Decision {
  atMs: number;
  desired: number;
  reasons: string[];
}

export interface OverviewInputs {
  nowMs: number;
  config: ConcordConfig | undefined;
  members: StoreMember[];
  leaderId: bigint | undefined;
  scrapes: ProxyScrape[];
  /** Published health records by pool/backend. */
  health: Map<string, HealthRecord>;
  /** An autoscaled pool's instance addresses, by pool. */
  instances: Map<string, string[]>;
  autoscale: AutoscaleReport | undefined;
  /** The latest decisions per pool, oldest first. */
  decisions: Map<string, Decision[]>;
}

type ReportPool = ProxyReport['pools'][number];
type ReportBackend = ReportPool['backends'][number];

const iso = (ms: number) => new Date(ms).toISOString();

export function buildOverview(inputs: OverviewInputs): Overview {
  const reports = inputs.scrapes.filter((scrape) => scrape.report !== undefined);
  return {
    generatedAt: iso(inputs.nowMs),
    store: {
      members: inputs.members.map((member) => ({
        id: member.idHex, name: member.name, clientUrls: member.clientUrls, isLeader: member.id === inputs.leaderId, isLearner: member.isLearner,
      })),
    },
    proxies: inputs.scrapes.map((scrape) => {
      const pools = scrape.report?.pools ?? [];
      return {
        id: scrape.proxy.name,
        address: scrape.proxy.listen,
        requestsTotal: sum(pools.map((pool) => pool.requestsTotal ?? 0)),
        requestsPerSecond: round(sum(pools.map((pool) => pool.requestsPerSecond ?? 0))),
        p50Ms: worstOf(pools.map((pool) => pool.latencyMs?.p50)),
        p99Ms: worstOf(pools.map((pool) => pool.latencyMs?.p99)),
      };
    }),
    pools: (inputs.config?.pools ?? []).map((pool) => poolOverview(pool, inputs, reports.map((scrape) => scrape.report!.pools.find((candidate) => candidate.name === pool.name)).filter((view) => view !== undefined))),
    frozen: frozenOf(inputs.autoscale?.globalFreeze),
  };
}

function poolOverview(pool: PoolConfig, inputs: OverviewInputs, views: ReportPool[]): PoolOverview {
  const configured = pool.autoscale === undefined
    ? pool.backends.map((backend) => ({ address: backend.address, zone: backend.zone, weight: backend.weight }))
    : (inputs.instances.get(pool.name) ?? []).map((address) => ({ address, zone: undefined, weight: 1 }));
  return {
    name: pool.name,
    balance: pool.balance,
    backends: configured.map((backend) => backendOverview(backend, inputs.health.get(`${pool.name}/${backend.address}`), views.flatMap((view) => view.backends.filter((candidate) => candidate.address === backend.address)))),
    shed: pool.shed === undefined ? null : shedOverview(pool, views),
    autoscale: pool.autoscale === undefined ? null : autoscaleOverview(pool, inputs),
  };
}

function backendOverview(backend: { address: string; zone: string | undefined; weight: number }, record: HealthRecord | undefined, seen: ReportBackend[]): BackendOverview {
  const factors = seen.filter((view) => (view.configuredWeight ?? 0) > 0).map((view) => Math.min(1, Math.max(0, (view.effectiveWeight ?? 0) / view.configuredWeight!)));
  const latencies = seen.map((view) => view.ewmaLatencyMs).filter((value): value is number => typeof value === 'number');
  const probe = record?.lastProbe;
  const proxyCheck = seen.map((view) => view.lastCheck).find((check) => check !== undefined && check !== null);
  return {
    address: backend.address,
    ...(backend.zone === undefined ? {} : { zone: backend.zone }),
    state: stateOf(record, seen),
    weight: backend.weight,
    slowStartFactor: factors.length === 0 ? 1 : round(Math.min(...factors)),
    inflight: sum(seen.map((view) => view.activeRequests ?? 0)),
    latencyEwmaMs: latencies.length === 0 ? null : round(Math.max(...latencies)),
    lastCheck: probe !== undefined ? { at: iso(probe.finishedAtMs), ok: probe.ok, detail: probe.detail } : proxyCheck ?? null,
  };
}

/** What an operator needs first: drains, then the shared checker's verdict, then passive ejections. */
function stateOf(record: HealthRecord | undefined, seen: ReportBackend[]): BackendState {
  const states = new Set(seen.map((view) => view.state));
  if (states.has('draining')) return 'draining';
  if (states.has('drained')) return 'drained';
  if (record?.state === 'unhealthy') return 'unhealthy';
  if (states.has('ejected')) return 'ejected';
  if (record?.state === 'healthy') return 'healthy';
  if (states.has('unhealthy')) return 'unhealthy';
  if (states.has('healthy')) return 'healthy';
  return 'unknown';
}

function shedOverview(pool: PoolConfig, views: ReportPool[]): ShedOverview {
  const sheds = views.map((view) => view.shed).filter((shed) => shed !== undefined && shed !== null);
  const rejected = { critical: 0, default: 0, sheddable: 0 };
  for (const shed of sheds) for (const priority of ['critical', 'default', 'sheddable'] as const) rejected[priority] += shed.rejected[priority] ?? 0;
  return {
    algorithm: pool.shed!.algorithm,
    // Each proxy has its own limit: the pool's capacity is their sum.
    limit: sum(sheds.map((shed) => shed.limit ?? 0)),
    inflight: sum(sheds.map((shed) => shed.inflight)),
    queueLength: sum(sheds.map((shed) => shed.queueLength)),
    rejected,
    shedding: sheds.some((shed) => shed.shedding),
  };
}

function autoscaleOverview(pool: PoolConfig, inputs: OverviewInputs): AutoscaleOverview {
  const report = inputs.autoscale?.pools.find((candidate) => candidate.pool === pool.name);
  const freeze = report?.freeze ?? inputs.autoscale?.globalFreeze;
  const overview: AutoscaleOverview = {
    desired: report?.status?.desired ?? pool.autoscale!.min,
    actual: report?.instances.length ?? (inputs.instances.get(pool.name) ?? []).length,
    min: pool.autoscale!.min,
    max: pool.autoscale!.max,
    frozen: freeze !== undefined,
    lastDecisions: (inputs.decisions.get(pool.name) ?? []).map((decision) => ({ at: iso(decision.atMs), desired: decision.desired, reasons: decision.reasons })),
  };
  if (freeze !== undefined) {
    overview.frozenBy = freeze.by;
    overview.frozenReason = freeze.reason;
  }
  if (inputs.autoscale?.leader !== undefined) overview.leader = inputs.autoscale.leader.name;
  return overview;
}

function frozenOf(freeze: FreezeRecord | undefined): Overview['frozen'] {
  return freeze === undefined ? { global: false } : { global: true, by: freeze.by, reason: freeze.reason };
}

/** The highest of the pools' figures (the slowest pool is what a person looks for); null before any request. */
function worstOf(values: (number | null | undefined)[]): number | null {
  const known = values.filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
  return known.length === 0 ? null : round(Math.max(...known));
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
