// A discrete-time simulation of one autoscaled pool, one second per step: instances start up
// (startupDelayMs), warm up (capacity ramps from coldCapacityRatio to full over warmupMs), serve
// a share of the offered load in proportion to their capacity (pool-model.ts), and call a
// dependency whose latency rises with its utilization and whose capacity falls when the pool opens
// more connections than it has room for. A policy is consulted every control period and sees the
// metrics as a real one would: averaged over a window that ended metricLagMs ago.
//
// The result counts, per minute, the requests that missed the SLO (shed, failed, or slower than
// slo.latencyMs); a minute with more than slo.maxBadPercent of them is an SLO-violation minute.
// Instance-hours count every instance from launch to termination, starting and draining included.

import { admissionLimit, inflightAt, latencyFactor, latencyQuantileMs, slowFraction, type InstanceModel } from './pool-model.ts';
import type { Faults, Scenario } from './scenarios.ts';
import { TraceReader, traceDurationSeconds } from './trace.ts';
import type { FreezeRecord, PoolMetrics } from '../policy/types.ts';

export interface DependencyModel {
  /** Requests/s the dependency serves at full capacity. */
  capacityPerSecond: number;
  latencyMs: number;
  connectionsPerInstance: number;
  /** Above this many connections the dependency's capacity falls in proportion. */
  maxConnections: number;
  /** It reports itself healthy below this utilization (and within its connections). */
  healthyBelowUtilization: number;
}

export interface SimParams {
  stepMs: number;
  periodMs: number;
  metricLagMs: number;
  metricWindowMs: number;
  startupDelayMs: number;
  warmupMs: number;
  coldCapacityRatio: number;
  instance: InstanceModel;
  dependency: DependencyModel;
  slo: { latencyMs: number; maxBadPercent: number };
  /** Warm instances at the start: enough for the first rate at this utilization. */
  initialUtilization: number;
  minInitialInstances: number;
}

export const DEFAULT_SIM_PARAMS: SimParams = {
  stepMs: 1000,
  periodMs: 15_000,
  metricLagMs: 15_000,
  metricWindowMs: 15_000,
  startupDelayMs: 30_000,
  warmupMs: 30_000,
  coldCapacityRatio: 0.5,
  instance: { workers: 8, serviceTimeMs: 50, maxInflight: 16 },
  dependency: { capacityPerSecond: 8000, latencyMs: 5, connectionsPerInstance: 20, maxConnections: 1000, healthyBelowUtilization: 0.9 },
  slo: { latencyMs: 250, maxBadPercent: 1 },
  initialUtilization: 0.6,
  minInitialInstances: 2,
};

// ---------------------------------------------------------------------------------------------
// What a policy sees and returns
// ---------------------------------------------------------------------------------------------

export interface SimInstanceView {
  id: string;
  launchedAtMs: number;
  readyAtMs?: number;
  drainingSinceMs?: number;
  drained: boolean;
  metrics?: { sampledAtMs: number; inflight: number; requestsPerSecond: number };
}

export interface SimView {
  nowMs: number;
  instances: SimInstanceView[];
  poolMetrics?: PoolMetrics;
  dependencyHealthy: boolean;
  freeze?: FreezeRecord;
}

export interface SimCommand {
  launch: number;
  drain: string[];
  terminate: string[];
  freezeRequest?: FreezeRecord;
  /** Safety guards that acted this period (for the report). */
  guards: string[];
  /** Pacing stages that held the count back this period: stabilization, cooldown, rate limits. */
  pacing?: string[];
}

export interface SimPolicy {
  readonly name: string;
  decide(view: SimView): SimCommand;
}

// ---------------------------------------------------------------------------------------------
// Result
// ---------------------------------------------------------------------------------------------

export interface SimResult {
  policy: string;
  scenario: string;
  minutes: number;
  sloViolationMinutes: number;
  instanceHours: number;
  /** Control periods in which the policy launched or drained anything. */
  actions: number;
  maxInstances: number;
  /** Control periods in which each safety guard changed the count or blocked an action. */
  guardActivations: Record<string, number>;
  /** Control periods in which stabilization, cooldown or a rate limit held the count back. */
  pacing: Record<string, number>;
  /** Scale-in drains issued while the metrics outage lasted. */
  scaleInsDuringOutage: number;
  /** Most instances alive at once over what the dependency's connections allow. */
  peakConnectionsRatio: number;
  /** Decisions from the first that saw the buggy metric to the freeze, inclusive (absent: never froze). */
  periodsToFreeze?: number;
  frozeAtSeconds?: number;
  badRequestPercent: number;
}

// ---------------------------------------------------------------------------------------------
// The simulation
// ---------------------------------------------------------------------------------------------

interface SimInstance {
  id: string;
  launchedAtMs: number;
  readyAtMs: number;
  drainingSinceMs?: number;
}

interface Sample {
  atMs: number;
  perInstance: Map<string, { inflight: number; requestsPerSecond: number }>;
  shedPerSecond: number;
  errorRatio: number;
  latencyMs: { mean: number; p50: number; p95: number; p99: number };
  dependencyHealthy: boolean;
}

export function simulate(scenario: Scenario, policy: SimPolicy, params: SimParams = DEFAULT_SIM_PARAMS): SimResult {
  const run = new Simulation(scenario, policy, params);
  return run.run();
}

class Simulation {
  private readonly scenario: Scenario;
  private readonly policy: SimPolicy;
  private readonly params: SimParams;
  private readonly faults: Faults;
  private readonly admitLimit: number;
  private instances: SimInstance[] = [];
  private nextId = 0;
  private samples: Sample[] = [];
  private dependencyUtilization = 0;
  private freeze: FreezeRecord | undefined;
  private readonly result: SimResult;
  private minuteOffered = 0;
  private minuteBad = 0;
  private totalOffered = 0;
  private totalBad = 0;
  private instanceSeconds = 0;
  private decisions = 0;
  private firstBuggyDecision: number | undefined;

  constructor(scenario: Scenario, policy: SimPolicy, params: SimParams) {
    this.scenario = scenario;
    this.policy = policy;
    this.params = params;
    this.faults = scenario.faults;
    this.admitLimit = admissionLimit(params.instance);
    this.result = {
      policy: policy.name,
      scenario: scenario.name,
      minutes: 0,
      sloViolationMinutes: 0,
      instanceHours: 0,
      actions: 0,
      maxInstances: 0,
      guardActivations: {},
      pacing: {},
      scaleInsDuringOutage: 0,
      peakConnectionsRatio: 0,
      badRequestPercent: 0,
    };
  }

  run(): SimResult {
    const { params } = this;
    const reader = new TraceReader(this.scenario.trace.points);
    const durationMs = traceDurationSeconds(this.scenario.trace) * 1000;
    this.startWarmPool(reader.rateAt(0));
    for (let nowMs = 0; nowMs < durationMs; nowMs += params.stepMs) {
      if (nowMs > 0 && nowMs % params.periodMs === 0) this.consultPolicy(nowMs);
      this.step(nowMs, reader.rateAt(nowMs / 1000));
      if ((nowMs + params.stepMs) % 60_000 === 0) this.closeMinute();
    }
    this.result.instanceHours = this.instanceSeconds / 3600;
    this.result.badRequestPercent = this.totalOffered > 0 ? (100 * this.totalBad) / this.totalOffered : 0;
    return this.result;
  }

  private startWarmPool(rate: number): void {
    const { params } = this;
    const capacity = (params.instance.workers * 1000) / params.instance.serviceTimeMs;
    const count = Math.max(params.minInitialInstances, Math.ceil(rate / (capacity * params.initialUtilization)));
    for (let i = 0; i < count; i++) {
      const launchedAtMs = -(params.startupDelayMs + params.warmupMs);
      this.instances.push({ id: this.newId(), launchedAtMs, readyAtMs: launchedAtMs + params.startupDelayMs });
    }
  }

  private newId(): string {
    return `i-${String(this.nextId++).padStart(4, '0')}`;
  }

  private step(nowMs: number, offered: number): void {
    const { params } = this;
    const serving = this.instances.filter((i) => i.readyAtMs <= nowMs && i.drainingSinceMs === undefined);
    const slowdown = this.dependencySlowdownAt(nowMs);
    const dependencyLatencyMs = params.dependency.latencyMs * slowdown * dependencyLatencyFactor(this.dependencyUtilization);
    const serviceMs = serving.map((i) => (params.instance.serviceTimeMs + dependencyLatencyMs) / this.warmFactor(i, nowMs));
    const capacities = serviceMs.map((s) => (params.instance.workers * 1000) / s);
    const totalCapacity = capacities.reduce((a, b) => a + b, 0);
    const utilization = totalCapacity > 0 ? Math.min(offered / totalCapacity, this.admitLimit) : 0;
    const served = utilization * totalCapacity;
    const shed = offered - served;

    const alive = this.instances.length;
    const connections = alive * params.dependency.connectionsPerInstance;
    const overload = Math.max(1, connections / params.dependency.maxConnections);
    // Past its connection limit the dependency refuses the excess connections (those requests
    // fail) and thrashes (its capacity falls in proportion).
    const refusedRatio = 1 - 1 / overload;
    const dependencyCapacity = params.dependency.capacityPerSecond / overload;
    const reaching = served * (1 - refusedRatio);
    const errors = served * refusedRatio + Math.max(0, reaching - dependencyCapacity);
    this.dependencyUtilization = reaching / dependencyCapacity;
    const errorRatio = served > 0 ? errors / served : 0;

    let slow = 0;
    const latency = { mean: 0, p50: 0, p95: 0, p99: 0 };
    const perInstance = new Map<string, { inflight: number; requestsPerSecond: number }>();
    const inflight = inflightAt(utilization, params.instance.workers) * this.inflightFactorAt(nowMs);
    for (let k = 0; k < serving.length; k++) {
      const rate = utilization * capacities[k]!;
      slow += rate * (1 - errorRatio) * slowFraction(utilization, params.instance.workers, serviceMs[k]!, params.slo.latencyMs);
      latency.mean += rate * serviceMs[k]! * latencyFactor(utilization, params.instance.workers);
      latency.p50 += rate * latencyQuantileMs(utilization, params.instance.workers, serviceMs[k]!, 0.5);
      latency.p95 += rate * latencyQuantileMs(utilization, params.instance.workers, serviceMs[k]!, 0.95);
      latency.p99 += rate * latencyQuantileMs(utilization, params.instance.workers, serviceMs[k]!, 0.99);
      perInstance.set(serving[k]!.id, { inflight, requestsPerSecond: rate });
    }
    this.samples.push({
      atMs: nowMs,
      perInstance,
      shedPerSecond: shed,
      errorRatio,
      // Request-weighted means of the instances' figures: an approximation of the pool's quantiles.
      latencyMs: served > 0
        ? { mean: latency.mean / served, p50: latency.p50 / served, p95: latency.p95 / served, p99: latency.p99 / served }
        : { mean: params.instance.serviceTimeMs, p50: params.instance.serviceTimeMs, p95: params.instance.serviceTimeMs, p99: params.instance.serviceTimeMs },
      dependencyHealthy: this.dependencyUtilization < params.dependency.healthyBelowUtilization && overload <= 1,
    });
    const keepMs = params.metricLagMs + params.metricWindowMs + params.stepMs;
    while (this.samples.length > 0 && this.samples[0]!.atMs < nowMs - keepMs) this.samples.shift();

    const bad = shed + errors + slow;
    this.minuteOffered += offered;
    this.minuteBad += bad;
    this.totalOffered += offered;
    this.totalBad += bad;
    this.instanceSeconds += (alive * params.stepMs) / 1000;
    this.result.maxInstances = Math.max(this.result.maxInstances, alive);
    this.result.peakConnectionsRatio = Math.max(this.result.peakConnectionsRatio, connections / params.dependency.maxConnections);
  }

  private closeMinute(): void {
    this.result.minutes++;
    if (this.minuteOffered > 0 && (100 * this.minuteBad) / this.minuteOffered > this.params.slo.maxBadPercent) this.result.sloViolationMinutes++;
    this.minuteOffered = 0;
    this.minuteBad = 0;
  }

  private warmFactor(instance: SimInstance, nowMs: number): number {
    const { coldCapacityRatio, warmupMs } = this.params;
    const progress = warmupMs > 0 ? Math.min(1, (nowMs - instance.readyAtMs) / warmupMs) : 1;
    return coldCapacityRatio + (1 - coldCapacityRatio) * progress;
  }

  private dependencySlowdownAt(nowMs: number): number {
    const slowdown = this.faults.dependencySlowdown;
    if (slowdown === undefined) return 1;
    const seconds = nowMs / 1000;
    return seconds >= slowdown.fromSeconds && seconds < slowdown.toSeconds ? slowdown.latencyFactor : 1;
  }

  private inflightFactorAt(nowMs: number): number {
    const bug = this.faults.buggyMetric;
    return bug !== undefined && nowMs / 1000 >= bug.fromSeconds ? bug.inflightFactor : 1;
  }

  private outageAt(atMs: number): number | undefined {
    const outage = this.faults.metricsOutage;
    if (outage === undefined) return undefined;
    const seconds = atMs / 1000;
    return seconds >= outage.fromSeconds && seconds < outage.toSeconds ? outage.missingInstancePercent : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // The control loop
  // -------------------------------------------------------------------------------------------

  private consultPolicy(nowMs: number): void {
    const view = this.view(nowMs);
    const command = this.policy.decide(view);
    this.decisions++;
    if (this.faults.buggyMetric !== undefined && this.firstBuggyDecision === undefined && nowMs - this.params.metricLagMs > this.faults.buggyMetric.fromSeconds * 1000) {
      this.firstBuggyDecision = this.decisions;
    }
    for (const guard of command.guards) this.result.guardActivations[guard] = (this.result.guardActivations[guard] ?? 0) + 1;
    for (const stage of command.pacing ?? []) this.result.pacing[stage] = (this.result.pacing[stage] ?? 0) + 1;
    if (command.launch > 0 || command.drain.length > 0) this.result.actions++;
    if (command.drain.length > 0 && this.outageAt(nowMs) !== undefined) {
      const scaleIns = command.drain.length;
      this.result.scaleInsDuringOutage += scaleIns;
    }
    for (const id of command.terminate) this.instances = this.instances.filter((i) => i.id !== id);
    for (const id of command.drain) {
      const instance = this.instances.find((i) => i.id === id);
      if (instance !== undefined && instance.drainingSinceMs === undefined) instance.drainingSinceMs = nowMs;
    }
    for (let i = 0; i < command.launch; i++) {
      this.instances.push({ id: this.newId(), launchedAtMs: nowMs, readyAtMs: nowMs + this.params.startupDelayMs });
    }
    if (command.freezeRequest !== undefined && this.freeze === undefined) {
      this.freeze = command.freezeRequest;
      this.result.frozeAtSeconds = nowMs / 1000;
      if (this.firstBuggyDecision !== undefined) this.result.periodsToFreeze = this.decisions - this.firstBuggyDecision + 1;
    }
  }

  /** What a policy sees at nowMs: instance states now, metrics averaged over the lagged window. */
  private view(nowMs: number): SimView {
    const { params } = this;
    const windowEnd = nowMs - params.metricLagMs;
    const window = this.samples.filter((s) => s.atMs > windowEnd - params.metricWindowMs && s.atMs <= windowEnd);
    const missingPercent = this.outageAt(windowEnd);
    const instances: SimInstanceView[] = this.instances.map((instance) => {
      const view: SimInstanceView = {
        id: instance.id,
        launchedAtMs: instance.launchedAtMs,
        drained: instance.drainingSinceMs !== undefined && nowMs - instance.drainingSinceMs >= params.stepMs,
      };
      if (instance.readyAtMs <= nowMs) view.readyAtMs = instance.readyAtMs;
      if (instance.drainingSinceMs !== undefined) view.drainingSinceMs = instance.drainingSinceMs;
      const metrics = averageInstanceMetrics(window, instance.id);
      const hidden = missingPercent !== undefined && idHash(instance.id) % 100 < missingPercent;
      if (metrics !== undefined && !hidden) view.metrics = { sampledAtMs: windowEnd, ...metrics };
      return view;
    });
    const latest = window[window.length - 1];
    const poolMetrics: PoolMetrics | undefined = window.length === 0 || missingPercent !== undefined ? undefined : {
      sampledAtMs: windowEnd,
      shedPerSecond: mean(window.map((s) => s.shedPerSecond)),
      errorRatio: mean(window.map((s) => s.errorRatio)),
      latencyMs: {
        mean: mean(window.map((s) => s.latencyMs.mean)),
        p50: mean(window.map((s) => s.latencyMs.p50)),
        p95: mean(window.map((s) => s.latencyMs.p95)),
        p99: mean(window.map((s) => s.latencyMs.p99)),
      },
      external: {},
    };
    return { nowMs, instances, poolMetrics, dependencyHealthy: latest?.dependencyHealthy ?? true, freeze: this.freeze };
  }
}

function dependencyLatencyFactor(utilization: number): number {
  const u = Math.min(utilization, 0.97);
  return 1 + Math.pow(u, 8) / (1 - u);
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function averageInstanceMetrics(window: readonly Sample[], id: string): { inflight: number; requestsPerSecond: number } | undefined {
  let count = 0;
  let inflight = 0;
  let requestsPerSecond = 0;
  for (const sample of window) {
    const metrics = sample.perInstance.get(id);
    if (metrics === undefined) continue;
    count++;
    inflight += metrics.inflight;
    requestsPerSecond += metrics.requestsPerSecond;
  }
  return count === 0 ? undefined : { inflight: inflight / count, requestsPerSecond: requestsPerSecond / count };
}

/** A stable pseudo-random number from an instance id: which instances a metrics outage hides. */
function idHash(id: string): number {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619) >>> 0;
  return hash;
}
