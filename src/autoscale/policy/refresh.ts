// Instance refresh: when the launch version changes (a new launch command, say), every instance
// of another version is replaced, gradually. Each batch (refresh.minHealthyPercent leaves
// 100 - 90 = 10 % of the desired count per batch, at least one) is first launched on top of the
// pool (a surge), and once the batch is ready and warmed, as many outdated instances are drained.
// Capacity never drops below the desired count while there is room to surge (under the hard
// ceiling and the dependency budgets); without room, outdated instances are drained first, only
// as far as keeps refresh.minHealthyPercent of the desired count healthy.
//
// If a new-version instance fails (not ready within refresh.readyTimeoutMs, or unhealthy for
// replacement.failingForMs), the refresh rolls back: the old version becomes the target, and the
// new-version instances are replaced the same way. A rolled-back version is not tried again until
// the launch version changes.

import { newestFirst } from './instances.ts';
import type { PoolInstances } from './instances.ts';
import type { InstanceObservation, PolicyConfig, PolicyEvent, RefreshState } from './types.ts';

export interface RefreshStatus {
  state?: RefreshState;
  /** The version every launch uses this period. */
  targetVersion: string;
  events: PolicyEvent[];
}

function isFailingNewInstance(instance: InstanceObservation, nowMs: number, config: PolicyConfig): boolean {
  if (instance.readyAtMs === undefined) return nowMs - instance.launchedAtMs >= config.refresh.readyTimeoutMs;
  if (instance.healthy) return false;
  return nowMs - (instance.failingSinceMs ?? instance.readyAtMs) >= config.replacement.failingForMs;
}

function mostCommonVersion(instances: readonly InstanceObservation[]): string {
  const counts = new Map<string, number>();
  for (const instance of instances) counts.set(instance.launchVersion, (counts.get(instance.launchVersion) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
}

/** Starts, restarts, rolls back or finishes the refresh, from what the pool looks like now. */
export function updateRefresh(
  config: PolicyConfig,
  previous: RefreshState | undefined,
  launchVersion: string,
  pool: PoolInstances,
  nowMs: number,
): RefreshStatus {
  const events: PolicyEvent[] = [];
  let state = previous;
  if (state !== undefined && state.toVersion !== launchVersion) state = undefined; // the launch version moved on: start over towards it
  if (state === undefined) {
    const outdated = pool.current.filter((instance) => instance.launchVersion !== launchVersion);
    if (outdated.length === 0) return { targetVersion: launchVersion, events };
    state = { fromVersion: mostCommonVersion(outdated), toVersion: launchVersion, status: 'rolling', startedAtMs: nowMs, surge: 0 };
    events.push({ kind: 'refresh-started', atMs: nowMs, message: `refreshing ${outdated.length} instances from version ${state.fromVersion} to ${launchVersion}` });
  }
  if (state.status === 'rolling') {
    const failing = pool.current.filter((instance) => instance.launchVersion === state!.toVersion && isFailingNewInstance(instance, nowMs, config));
    if (failing.length > 0) {
      // The failed new instances are the surge: retiring them restores the old size.
      state = { ...state, status: 'rolled-back' };
      events.push({
        kind: 'refresh-rolled-back',
        atMs: nowMs,
        message: `new version ${state.toVersion} failed its checks on ${failing.map((i) => i.id).join(', ')}: rolling back to ${state.fromVersion}`,
      });
    }
  }
  const targetVersion = state.status === 'rolling' ? state.toVersion : state.fromVersion;
  const outdated = pool.current.filter((instance) => instance.launchVersion !== targetVersion);
  if (outdated.length === 0 && state.status === 'rolling') {
    events.push({ kind: 'refresh-finished', atMs: nowMs, message: `every instance runs version ${targetVersion}` });
    return { targetVersion, events };
  }
  return { state: outdated.length === 0 ? { ...state, surge: 0 } : state, targetVersion, events };
}

export interface RefreshStep {
  state: RefreshState;
  retire: InstanceObservation[];
  surgeLaunches: number;
  /** The retired instances are drained before their replacements exist: each is owed a launch. */
  replaceRetired?: boolean;
  reason?: string;
}

/**
 * One period of the refresh, after the scaling decision: `desired` is the scaler's count, `room`
 * how many more instances the ceilings allow, `exclude` instances already leaving this period.
 */
export function stepRefresh(
  config: PolicyConfig,
  state: RefreshState,
  targetVersion: string,
  pool: PoolInstances,
  desired: number,
  room: number,
  exclude: ReadonlySet<string>,
): RefreshStep {
  const pendingNew = [...pool.starting, ...pool.warming].filter((instance) => instance.launchVersion === targetVersion);
  if (pendingNew.length > 0) return { state, retire: [], surgeLaunches: 0, reason: `waiting for ${pendingNew.length} new instances to warm up` };
  const outdated = pool.current
    .filter((instance) => instance.launchVersion !== targetVersion && !exclude.has(instance.id))
    .sort((a, b) => Number(a.healthy) - Number(b.healthy) || -newestFirst(a, b));
  if (state.surge > 0) {
    const retire = outdated.slice(0, state.surge);
    return { state: { ...state, surge: 0 }, retire, surgeLaunches: 0, reason: `retiring ${retire.length} outdated instances replaced by the last batch` };
  }
  if (outdated.length === 0) return { state, retire: [], surgeLaunches: 0 };
  const batch = Math.min(outdated.length, Math.max(1, Math.ceil((desired * (100 - config.refresh.minHealthyPercent)) / 100)));
  if (room > 0) {
    const surgeLaunches = Math.min(batch, room);
    return { state: { ...state, surge: surgeLaunches }, retire: [], surgeLaunches, reason: `launching a batch of ${surgeLaunches} version ${targetVersion} instances` };
  }
  // No room to surge: drain first, keeping minHealthyPercent of the desired count healthy.
  const healthy = pool.warming.length + pool.warmed.length;
  const mayDrain = Math.min(batch, healthy - Math.ceil((desired * config.refresh.minHealthyPercent) / 100));
  if (mayDrain <= 0) return { state, retire: [], surgeLaunches: 0, reason: 'no room to surge, and draining would leave fewer healthy than refresh.minHealthyPercent' };
  return { state, retire: outdated.slice(0, mayDrain), surgeLaunches: 0, replaceRetired: true, reason: `no room to surge: draining ${mayDrain} outdated instances first` };
}
