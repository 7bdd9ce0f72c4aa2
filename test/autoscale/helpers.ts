// Builders for policy tests: instances in each state, observations with fresh metrics, and a
// small world that applies a decision's actions the way a controller and provider would.

import { initialMemory as initialMemoryForTests, policyConfig } from '../../src/autoscale/policy/defaults.ts';
import type { Decision, InstanceObservation, PolicyConfig, PoolMetrics, PoolObservation } from '../../src/autoscale/policy/types.ts';

export const NOW = 10_000_000;
export const HOUR = 3_600_000;

export function config(overrides: Partial<Parameters<typeof policyConfig>[0]> = {}): PolicyConfig {
  return policyConfig({ pool: 'web', min: 2, max: 20, target: { inflightPerInstance: 8 }, ...overrides });
}

/** A warmed, healthy instance serving `inflight` requests at `rps` requests/s. */
export function warmed(id: string, inflight = 8, rps = 100, extra: Partial<InstanceObservation> = {}): InstanceObservation {
  return {
    id,
    launchedAtMs: NOW - HOUR,
    launchVersion: 'v1',
    readyAtMs: NOW - HOUR + 30_000,
    healthy: true,
    metrics: { sampledAtMs: NOW - 15_000, inflight, requestsPerSecond: rps },
    ...extra,
  };
}

export function warmedPool(count: number, inflight = 8, rps = 100, prefix = 'i'): InstanceObservation[] {
  return Array.from({ length: count }, (_, k) => warmed(`${prefix}${k}`, inflight, rps, { launchedAtMs: NOW - HOUR + k * 1000, readyAtMs: NOW - HOUR + 30_000 + k * 1000 }));
}

/** Launched `agoMs` ago, not ready yet. */
export function starting(id: string, agoMs = 5_000, extra: Partial<InstanceObservation> = {}): InstanceObservation {
  return { id, launchedAtMs: NOW - agoMs, launchVersion: 'v1', healthy: false, ...extra };
}

/** Ready `agoMs` ago (within the default 10 s warm-up when agoMs < 10 s). */
export function warming(id: string, agoMs = 2_000, inflight = 30): InstanceObservation {
  return {
    id,
    launchedAtMs: NOW - agoMs - 20_000,
    launchVersion: 'v1',
    readyAtMs: NOW - agoMs,
    healthy: true,
    metrics: { sampledAtMs: NOW - 15_000, inflight, requestsPerSecond: 10 },
  };
}

/** Was ready, fails its checks since `failingForMs`. */
export function unhealthy(id: string, failingForMs = 120_000, extra: Partial<InstanceObservation> = {}): InstanceObservation {
  return { ...warmed(id, 0, 0), healthy: false, failingSinceMs: NOW - failingForMs, metrics: undefined, ...extra };
}

export function poolMetrics(overrides: Partial<PoolMetrics> = {}): PoolMetrics {
  return {
    sampledAtMs: NOW - 15_000,
    shedPerSecond: 0,
    errorRatio: 0,
    latencyMs: { mean: 60, p50: 50, p95: 90, p99: 120 },
    external: {},
    ...overrides,
  };
}

export function observation(instances: InstanceObservation[], overrides: Partial<PoolObservation> = {}): PoolObservation {
  return {
    nowMs: NOW,
    launchVersion: 'v1',
    instances,
    metrics: poolMetrics(),
    freeze: {},
    dependencyHealthy: {},
    localTime: {},
    ...overrides,
  };
}

export function launches(decision: Decision): string[] {
  return decision.actions.flatMap((a) => (a.kind === 'launch' ? [a.requestId] : []));
}

export function drains(decision: Decision): string[] {
  return decision.actions.flatMap((a) => (a.kind === 'drain' ? [a.instanceId] : []));
}

export function terminates(decision: Decision): string[] {
  return decision.actions.flatMap((a) => (a.kind === 'terminate' ? [a.instanceId] : []));
}

export function stages(decision: Decision): string[] {
  return decision.steps.map((step) => `${step.stage} ${step.from}->${step.to}`);
}

/**
 * A pool that carries out decisions: launches start, become ready after `startupMs` and are
 * healthy unless `failing` says otherwise; drains finish by the next period; terminates remove.
 * Every instance reports the same in-flight count, `load / serving instances`.
 */
export class World {
  instances: InstanceObservation[];
  nowMs = NOW;
  load: number;
  launchVersion = 'v1';
  startupMs = 20_000;
  /** Launch versions whose instances never become healthy. */
  failingVersions = new Set<string>();
  private launched = 0;

  constructor(instances: InstanceObservation[], load: number) {
    this.instances = instances;
    this.load = load;
  }

  observe(overrides: Partial<PoolObservation> = {}): PoolObservation {
    const serving = this.instances.filter((i) => i.readyAtMs !== undefined && i.healthy && i.drainingSinceMs === undefined);
    const inflight = serving.length > 0 ? this.load / serving.length : 0;
    for (const instance of serving) instance.metrics = { sampledAtMs: this.nowMs - 1_000, inflight, requestsPerSecond: inflight * 10 };
    return observation(this.instances.map((i) => ({ ...i })), {
      nowMs: this.nowMs,
      launchVersion: this.launchVersion,
      metrics: poolMetrics({ sampledAtMs: this.nowMs - 1_000 }),
      ...overrides,
    });
  }

  apply(decision: Decision): void {
    for (const action of decision.actions) {
      if (action.kind === 'launch') {
        this.instances.push({ id: `n${this.launched++}`, launchedAtMs: this.nowMs, launchVersion: action.launchVersion, healthy: false });
      } else if (action.kind === 'drain') {
        const instance = this.instances.find((i) => i.id === action.instanceId)!;
        instance.drainingSinceMs = this.nowMs;
      } else {
        this.instances = this.instances.filter((i) => i.id !== action.instanceId);
      }
    }
  }

  /** Moves time on by one period: starting instances that are due become ready, drains finish. */
  advance(periodMs: number): void {
    this.nowMs += periodMs;
    for (const instance of this.instances) {
      if (instance.drainingSinceMs !== undefined) instance.drained = true;
      if (instance.readyAtMs === undefined && this.nowMs - instance.launchedAtMs >= this.startupMs) {
        if (this.failingVersions.has(instance.launchVersion)) continue;
        instance.readyAtMs = this.nowMs;
        instance.healthy = true;
      }
    }
  }
}

/** Memory with a history old enough that no stabilization window holds anything back. */
export function settledMemory(): ReturnType<typeof initialMemoryForTests> {
  return { ...initialMemoryForTests(), recommendations: [{ atMs: NOW - 24 * HOUR, count: 0 }] };
}

/** The same observation `deltaMs` later, with its metrics sampled just as recently. */
export function later(seen: PoolObservation, deltaMs: number): PoolObservation {
  const shift = <T extends { sampledAtMs: number }>(metrics: T | undefined) => (metrics === undefined ? undefined : { ...metrics, sampledAtMs: metrics.sampledAtMs + deltaMs });
  return {
    ...seen,
    nowMs: seen.nowMs + deltaMs,
    metrics: shift(seen.metrics),
    instances: seen.instances.map((instance) => ({ ...instance, metrics: shift(instance.metrics) })),
  };
}
