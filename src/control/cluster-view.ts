// The cluster as the store (and the proxies' admin ports) see it, read once: what `concord status`
// and `concord pool list` print. Built from the same parts as the control plane's /api/overview
// (overview.ts), so the CLI, the API and the dashboard agree; the control plane itself need not be
// running for it (everything it publishes is in the store).

import { autoscaleReport } from '../autoscale/controller/kill-switch.ts';
import { AUTOSCALE_PREFIX } from '../autoscale/state/keys.ts';
import { parseInstanceState } from '../autoscale/state/records.ts';
import type { CoordStore } from '../coord/coord-store.ts';
import type { StoreCluster, StoreMember } from '../coord/store-cluster.ts';
import type { Overview } from './admin-api-types.ts';
import { readAppliedConfig } from './config-store.ts';
import { parseHealthRecord, type HealthRecord } from './health-record.ts';
import { buildOverview } from './overview.ts';
import { ProxyScraper, type ProxyRegistration } from './proxy-scraper.ts';
import { CONTROL_MEMBERS_PREFIX, DRAINS_PREFIX, HEALTH_PREFIX, nameOf, poolAndBackendOf, PROXIES_PREFIX } from './store-keys.ts';

export interface ControlMemberView {
  name: string;
  /** Its admin API (the dashboard), when it serves one. */
  admin: string | null;
  host: string | null;
}

export interface DrainView {
  pool: string;
  backend: string;
  by: string;
  reason: string;
  atMs: number;
}

export interface ClusterView {
  overview: Overview;
  /** The applied configuration's store revision; null when none is applied. */
  configRevision: string | null;
  controlMembers: ControlMemberView[];
  /** Drains operators asked for (keys under /concord/drains/). */
  drains: DrainView[];
  /** Parts that could not be read (a proxy that did not answer, ...): shown, never fatal. */
  problems: string[];
}

/** A pool's instance addresses from the autoscaler's instance records (keys under /concord/autoscale/). */
export function instancesByPool(kvs: readonly { key: string; value: string }[]): Map<string, string[]> {
  const byPool = new Map<string, string[]>();
  for (const kv of kvs) {
    const match = /^\/concord\/autoscale\/pools\/([^/]+)\/instances\/[^/]+$/.exec(kv.key);
    if (match === null) continue;
    const parsed = parseInstanceState(kv.value, kv.key);
    if (!parsed.ok) continue;
    const list = byPool.get(match[1]!) ?? [];
    if (!list.includes(parsed.value.address)) list.push(parsed.value.address);
    byPool.set(match[1]!, list);
  }
  return byPool;
}

/** Live proxies from their registrations; values that are not registrations are left out. */
export function proxyRegistrations(kvs: readonly { key: string; value: string }[]): ProxyRegistration[] {
  const proxies: ProxyRegistration[] = [];
  for (const kv of kvs) {
    try {
      const value = JSON.parse(kv.value) as Partial<ProxyRegistration>;
      if (typeof value.name === 'string' && typeof value.admin === 'string' && /^https?:\/\/[^/]+$/.test(value.admin)) proxies.push({ name: value.name, admin: value.admin, listen: String(value.listen ?? '') });
    } catch {
      // Not a registration (written by hand): left out.
    }
  }
  return proxies.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function controlMembersOf(kvs: readonly { key: string; value: string }[]): ControlMemberView[] {
  return kvs.map((kv) => {
    let value: { admin?: unknown; host?: unknown } = {};
    try {
      value = JSON.parse(kv.value) as typeof value;
    } catch {
      // A hand-written key: the name is all there is.
    }
    return { name: nameOf(CONTROL_MEMBERS_PREFIX, kv.key) ?? kv.key, admin: typeof value.admin === 'string' ? value.admin : null, host: typeof value.host === 'string' ? value.host : null };
  }).sort((a, b) => (a.name < b.name ? -1 : 1));
}

function drainsOf(kvs: readonly { key: string; value: string }[]): DrainView[] {
  const drains: DrainView[] = [];
  for (const kv of kvs) {
    const where = poolAndBackendOf(DRAINS_PREFIX, kv.key);
    if (where === undefined) continue;
    let value: { by?: unknown; reason?: unknown; atMs?: unknown } = {};
    try {
      value = JSON.parse(kv.value) as typeof value;
    } catch {
      // etcdctl put with any text drains too.
    }
    drains.push({ ...where, by: typeof value.by === 'string' ? value.by : 'unknown', reason: typeof value.reason === 'string' ? value.reason : '', atMs: typeof value.atMs === 'number' ? value.atMs : 0 });
  }
  return drains;
}

/** Reads the cluster: the store's keys in one revision, its members, and each registered proxy's report. */
export async function readClusterView(store: CoordStore, cluster: StoreCluster | undefined, nowMs: number): Promise<ClusterView> {
  const problems: string[] = [];
  const snapshot = await store.txn({
    compare: [],
    success: [CONTROL_MEMBERS_PREFIX, PROXIES_PREFIX, HEALTH_PREFIX, DRAINS_PREFIX, AUTOSCALE_PREFIX].map((key) => ({ kind: 'range' as const, key, prefix: true })),
  });
  const [members, proxies, health, drains, autoscale] = snapshot.results.map((result) => (result.kind === 'range' ? result.result.kvs : []));
  const applied = await readAppliedConfig(store).catch((error: unknown) => {
    problems.push(`the applied configuration does not validate: ${(error as Error).message}`);
    return undefined;
  });
  const records = new Map<string, HealthRecord>();
  for (const kv of health ?? []) {
    const parsed = parseHealthRecord(kv.value);
    if (parsed.ok) records.set(`${parsed.record.pool}/${parsed.record.backend}`, parsed.record);
  }
  const registrations = proxyRegistrations(proxies ?? []);
  const [storeMembers, leaderId, scrapes, report] = await Promise.all([
    cluster?.members().catch((error: unknown) => {
      problems.push(`store members: ${(error as Error).message}`);
      return [] as StoreMember[];
    }) ?? Promise.resolve([] as StoreMember[]),
    cluster?.leaderId().catch(() => undefined) ?? Promise.resolve(undefined),
    new ProxyScraper(() => registrations).scrape(),
    autoscaleReport(store).catch(() => undefined),
  ]);
  for (const scrape of scrapes) if (scrape.problem !== undefined) problems.push(`proxy ${scrape.proxy.name} (${scrape.proxy.admin}): ${scrape.problem}`);
  const overview = buildOverview({
    nowMs, config: applied?.config, members: storeMembers, leaderId, scrapes, health: records,
    instances: instancesByPool(autoscale ?? []), autoscale: report, decisions: new Map(),
  });
  return {
    overview,
    configRevision: applied === undefined ? null : applied.revision.toString(),
    controlMembers: controlMembersOf(members ?? []),
    drains: drainsOf(drains ?? []),
    problems,
  };
}
