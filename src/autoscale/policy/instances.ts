// Sorting a pool's instances into the states the policy reasons about. An instance is in exactly
// one of: draining (leaving; not capacity), starting (launched, not yet ready), unhealthy (was
// ready, fails its checks now), warming (ready and healthy, but not yet representative: excluded
// from metrics, counted as capacity), warmed (ready, healthy, measured).

import type { InstanceObservation, PolicyConfig } from './types.ts';

export interface PoolInstances {
  draining: InstanceObservation[];
  starting: InstanceObservation[];
  unhealthy: InstanceObservation[];
  warming: InstanceObservation[];
  warmed: InstanceObservation[];
  /** Every instance that is not draining: the pool's capacity as the policy counts it. */
  current: InstanceObservation[];
}

export function classifyInstances(instances: readonly InstanceObservation[], nowMs: number, warmupMs: number): PoolInstances {
  const pool: PoolInstances = { draining: [], starting: [], unhealthy: [], warming: [], warmed: [], current: [] };
  for (const instance of instances) {
    if (instance.drainingSinceMs !== undefined) {
      pool.draining.push(instance);
      continue;
    }
    pool.current.push(instance);
    if (instance.readyAtMs === undefined) pool.starting.push(instance);
    else if (!instance.healthy) pool.unhealthy.push(instance);
    else if (nowMs - instance.readyAtMs < warmupMs) pool.warming.push(instance);
    else pool.warmed.push(instance);
  }
  return pool;
}

/** Failing long enough to be replaced: unhealthy for failingForMs, or never ready within startupTimeoutMs. */
export function isFailing(instance: InstanceObservation, nowMs: number, config: PolicyConfig): boolean {
  if (instance.drainingSinceMs !== undefined) return false;
  if (instance.readyAtMs === undefined) return nowMs - instance.launchedAtMs >= config.replacement.startupTimeoutMs;
  if (instance.healthy) return false;
  const since = instance.failingSinceMs ?? instance.readyAtMs;
  return nowMs - since >= config.replacement.failingForMs;
}

/** Newest first: the order in which healthy instances are chosen for removal. Ties broken by id, so decisions are deterministic. */
export function newestFirst(a: InstanceObservation, b: InstanceObservation): number {
  return b.launchedAtMs - a.launchedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
