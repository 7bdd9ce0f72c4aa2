// Reconciliation: the provider's list (what exists), the store's instance records (what the
// autoscaler knows about them) and the latest metrics sample (what the proxies and health checker
// see) become the policy's observation and the records to write back.
//
// The provider's list is the truth about existence:
// * listed and recorded: the record is updated from the sample (ready, failing, recovered, drained);
// * listed but not recorded: adopted. A leader died between a launch and recording it, or a
//   deposed leader's launch landed; either way the instance exists and must be managed, never
//   orphaned (an exec provider's instances also outlive a restart of the controller);
// * recorded but not listed: gone. It exited, or it died with the controller that launched it
//   (the process provider's instances do); the record is dropped and the pool is short, which the
//   policy sees and repairs. Except within `listGraceMs` of its launch: a cloud's list may not show
//   an instance it has just launched, and dropping it would launch a duplicate.
// Health is the sample's: an instance is ready once it first passes its checks, failing from the
// first failed verdict after that, and a verdict missing from a sample changes nothing (no data is
// not a failure).

import type { InstanceMetrics, InstanceObservation, PoolMetrics } from '../policy/types.ts';
import type { InstanceState } from './records.ts';

/** One backend as the metrics source saw it (keyed by address: the proxies know addresses, not instance ids). */
export interface BackendSample {
  address: string;
  /** The health checker's verdict; absent when nobody reported one. */
  healthy?: boolean;
  inflight?: number;
  requestsPerSecond?: number;
}

/** What a metrics source saw for one pool at one time. */
export interface PoolSample {
  sampledAtMs: number;
  /** Pool-level metrics; absent when the proxies report none (a metrics outage). */
  pool?: Omit<PoolMetrics, 'sampledAtMs'>;
  backends: BackendSample[];
  /** Health signals of declared dependencies, by name. */
  dependencyHealthy?: Record<string, boolean>;
}

/** An instance as the provider lists it. */
export interface ListedInstance {
  id: string;
  address: string;
  launchVersion: string;
  launchedAtMs: number;
}

export type ReconcileEventKind = 'instance-adopted' | 'instance-gone' | 'instance-ready' | 'instance-failing' | 'instance-recovered' | 'instance-drained';

export interface ReconcileEvent {
  kind: ReconcileEventKind;
  instanceId: string;
  message: string;
}

export interface ReconcileResult {
  /** Every instance the provider lists, with its record brought up to date. */
  states: InstanceState[];
  /** Records to write (new or changed). */
  changed: InstanceState[];
  /** Records to delete: instances the provider no longer has. */
  removed: InstanceState[];
  instances: InstanceObservation[];
  metrics?: PoolMetrics;
  events: ReconcileEvent[];
}

export interface ReconcileOptions {
  /** A recorded instance launched less than this long ago is kept even if the provider does not list it yet. */
  listGraceMs?: number;
}

export function reconcile(
  nowMs: number, stored: readonly InstanceState[], listed: readonly ListedInstance[], sample: PoolSample | undefined, options: ReconcileOptions = {},
): ReconcileResult {
  const recorded = new Map(stored.map((state) => [state.id, state]));
  const samples = new Map((sample?.backends ?? []).map((backend) => [backend.address, backend]));
  const listedIds = new Set(listed.map((instance) => instance.id));
  const result: ReconcileResult = { states: [], changed: [], removed: [], instances: [], events: [] };

  for (const instance of listed) {
    const previous = recorded.get(instance.id);
    let state: InstanceState;
    if (previous === undefined) {
      state = { id: instance.id, address: instance.address, launchVersion: instance.launchVersion, launchedAtMs: instance.launchedAtMs, healthy: false };
      result.events.push({ kind: 'instance-adopted', instanceId: instance.id, message: `${instance.id} (${instance.address}) is in the provider's list but was not recorded: adopted` });
    } else {
      state = { ...previous, address: instance.address };
    }
    const backend = samples.get(state.address);
    if (backend !== undefined) state = applySample(state, backend, nowMs, result.events);
    if (previous === undefined || !sameState(previous, state)) result.changed.push(state);
    result.states.push(state);
    result.instances.push(observe(state, backend, sample?.sampledAtMs));
  }
  for (const state of stored) {
    if (listedIds.has(state.id)) continue;
    if (nowMs - state.launchedAtMs < (options.listGraceMs ?? 0)) {
      const backend = samples.get(state.address);
      result.states.push(state);
      result.instances.push(observe(state, backend, sample?.sampledAtMs));
      continue;
    }
    result.removed.push(state);
    result.events.push({ kind: 'instance-gone', instanceId: state.id, message: `${state.id} (${state.address}) is no longer in the provider's list: it exited or died with the controller that launched it` });
  }
  if (sample?.pool !== undefined) result.metrics = { ...sample.pool, sampledAtMs: sample.sampledAtMs };
  return result;
}

function applySample(state: InstanceState, backend: BackendSample, nowMs: number, events: ReconcileEvent[]): InstanceState {
  const next = { ...state };
  if (backend.healthy !== undefined) {
    next.healthy = backend.healthy;
    if (backend.healthy && next.readyAtMs === undefined) {
      next.readyAtMs = nowMs;
      events.push({ kind: 'instance-ready', instanceId: state.id, message: `${state.id} passed its health checks ${nowMs - state.launchedAtMs} ms after launch` });
    } else if (backend.healthy && next.failingSinceMs !== undefined) {
      events.push({ kind: 'instance-recovered', instanceId: state.id, message: `${state.id} passes its health checks again after ${nowMs - next.failingSinceMs} ms` });
      delete next.failingSinceMs;
    } else if (!backend.healthy && next.readyAtMs !== undefined && next.failingSinceMs === undefined) {
      next.failingSinceMs = nowMs;
      events.push({ kind: 'instance-failing', instanceId: state.id, message: `${state.id} fails its health checks` });
    }
  }
  if (next.drainingSinceMs !== undefined && next.drained !== true && backend.inflight === 0) {
    next.drained = true;
    events.push({ kind: 'instance-drained', instanceId: state.id, message: `${state.id} has nothing in flight ${nowMs - next.drainingSinceMs} ms after its drain began` });
  }
  return next;
}

function observe(state: InstanceState, backend: BackendSample | undefined, sampledAtMs: number | undefined): InstanceObservation {
  const observation: InstanceObservation = { id: state.id, launchedAtMs: state.launchedAtMs, launchVersion: state.launchVersion, healthy: state.readyAtMs !== undefined && state.healthy };
  if (state.readyAtMs !== undefined) observation.readyAtMs = state.readyAtMs;
  if (state.failingSinceMs !== undefined) observation.failingSinceMs = state.failingSinceMs;
  if (state.drainingSinceMs !== undefined) observation.drainingSinceMs = state.drainingSinceMs;
  if (state.drained === true) observation.drained = true;
  if (backend !== undefined && sampledAtMs !== undefined && backend.inflight !== undefined && backend.requestsPerSecond !== undefined) {
    const metrics: InstanceMetrics = { sampledAtMs, inflight: backend.inflight, requestsPerSecond: backend.requestsPerSecond };
    observation.metrics = metrics;
  }
  return observation;
}

function sameState(a: InstanceState, b: InstanceState): boolean {
  const fields: (keyof InstanceState)[] = ['address', 'launchVersion', 'launchedAtMs', 'launchRequestId', 'readyAtMs', 'healthy', 'failingSinceMs', 'drainingSinceMs', 'drained'];
  return fields.every((field) => a[field] === b[field]);
}
