// An HPA-equivalent policy: the baseline Concord's autoscaler is measured against. It follows the
// Kubernetes HorizontalPodAutoscaler's documented algorithm for one per-pod metric with an
// average-value target (autoscaling/v2, default behavior):
//
//   desiredReplicas = ceil(readyPods * currentMetricValue / desiredMetricValue), skipped while the
//   ratio is within the tolerance (0.1);
//   pods still pending are set aside; pods without metrics are set aside, then counted at 100 % of
//   target when the ratio asks to scale down and at 0 % when it asks to scale up, and pending pods
//   at 0 % when it asks to scale up; if that reverses the direction or lands within tolerance, no
//   change; no metrics from any ready pod: no change (an error, in HPA);
//   the recommendation is stabilized (highest of the last 300 s for scale-down, none for scale-up);
//   then the behavior policies limit the rate (up: 100 % or 4 pods per 15 s, the larger; down:
//   100 % per 15 s) and min/max bound the result.
//
// It runs once per sync period (15 s). Stabilization and rate limits reuse the policy's functions,
// whose arithmetic is HPA's (see their comments).

import { scaleInLimit, scaleOutLimit } from '../policy/rate-limits.ts';
import { rememberRecommendation, stabilize } from '../policy/stabilization.ts';
import type { DirectionBehavior, RecordedRecommendation, RecordedScaling } from '../policy/types.ts';

export const HPA_SYNC_PERIOD_MS = 15_000;
export const HPA_TOLERANCE = 0.1;

export const HPA_DEFAULT_SCALE_UP: DirectionBehavior = {
  stabilizationMs: 0,
  rateLimits: [
    { type: 'percent', value: 100, periodMs: 15_000 },
    { type: 'instances', value: 4, periodMs: 15_000 },
  ],
  select: 'max',
  cooldownMs: 0,
};

export const HPA_DEFAULT_SCALE_DOWN: DirectionBehavior = {
  stabilizationMs: 300_000,
  rateLimits: [{ type: 'percent', value: 100, periodMs: 15_000 }],
  select: 'max',
  cooldownMs: 0,
};

export interface HpaConfig {
  minReplicas: number;
  maxReplicas: number;
  /** The per-pod metric's target average value. */
  targetAverageValue: number;
  tolerance: number;
  scaleUp: DirectionBehavior;
  scaleDown: DirectionBehavior;
}

export function hpaConfig(overrides: Partial<HpaConfig> & Pick<HpaConfig, 'minReplicas' | 'maxReplicas' | 'targetAverageValue'>): HpaConfig {
  return { tolerance: HPA_TOLERANCE, scaleUp: HPA_DEFAULT_SCALE_UP, scaleDown: HPA_DEFAULT_SCALE_DOWN, ...overrides };
}

export interface HpaPod {
  id: string;
  /** Not yet running (scheduling, pulling, starting): set aside, counted at 0 % on scale-up. */
  pending: boolean;
  /** Being deleted, or failed: ignored. */
  deleting: boolean;
  /** The pod's metric value; absent when the metrics pipeline has none for it. */
  metric?: number;
}

export interface HpaObservation {
  nowMs: number;
  /** The scale target's replicas (spec). */
  currentReplicas: number;
  pods: HpaPod[];
}

export interface HpaMemory {
  recommendations: RecordedRecommendation[];
  scaleEvents: RecordedScaling[];
}

export interface HpaDecision {
  desiredReplicas: number;
  /** The metric's replica count before stabilization and behavior (absent when it could not be computed). */
  metricReplicas?: number;
  reason: string;
}

export function initialHpaMemory(): HpaMemory {
  return { recommendations: [], scaleEvents: [] };
}

/** HPA's replica calculation for a per-pod average-value metric (replica_calculator.go, calcPlainMetricReplicas). */
export function metricReplicas(config: HpaConfig, observation: HpaObservation): { replicas?: number; reason: string } {
  const { currentReplicas, pods } = observation;
  const target = config.targetAverageValue;
  const metrics = new Map<string, number>();
  const missing: HpaPod[] = [];
  const unready: HpaPod[] = [];
  let readyPodCount = 0;
  for (const pod of pods) {
    if (pod.deleting) continue;
    if (pod.pending) unready.push(pod);
    else if (pod.metric === undefined) missing.push(pod);
    else {
      readyPodCount++;
      metrics.set(pod.id, pod.metric);
    }
  }
  if (metrics.size === 0) return { reason: 'did not receive metrics for any ready pod: no change' };
  // As HPA, in integer milli-units: the average is the truncated integer mean (GetMetricUsageRatio).
  const average = (values: Iterable<number>, count: number) => {
    let sum = 0;
    for (const value of values) sum += Math.round(value * 1000);
    return Math.trunc(sum / count) / 1000;
  };
  const usageRatio = average(metrics.values(), metrics.size) / target;
  const scaleUpWithUnready = unready.length > 0 && usageRatio > 1;
  if (!scaleUpWithUnready && missing.length === 0) {
    if (Math.abs(1 - usageRatio) <= config.tolerance) return { replicas: currentReplicas, reason: 'within tolerance' };
    return { replicas: Math.ceil(usageRatio * readyPodCount), reason: `usage ratio ${usageRatio.toFixed(3)}` };
  }
  const values = [...metrics.values()];
  for (let i = 0; i < missing.length; i++) values.push(usageRatio < 1 ? target : 0);
  if (scaleUpWithUnready) for (let i = 0; i < unready.length; i++) values.push(0);
  const newUsageRatio = average(values, values.length) / target;
  if (Math.abs(1 - newUsageRatio) <= config.tolerance || (usageRatio < 1 && newUsageRatio > 1) || (usageRatio > 1 && newUsageRatio < 1)) {
    return { replicas: currentReplicas, reason: `usage ratio ${usageRatio.toFixed(3)} dampened to ${newUsageRatio.toFixed(3)} by missing or unready pods: no change` };
  }
  const newReplicas = Math.ceil(newUsageRatio * values.length);
  if ((newUsageRatio < 1 && newReplicas > currentReplicas) || (newUsageRatio > 1 && newReplicas < currentReplicas)) {
    return { replicas: currentReplicas, reason: 'the dampened count reverses the direction: no change' };
  }
  return { replicas: newReplicas, reason: `usage ratio ${usageRatio.toFixed(3)}, dampened to ${newUsageRatio.toFixed(3)}` };
}

/** One sync period of the HPA controller. */
export function hpaDecide(config: HpaConfig, memory: HpaMemory, observation: HpaObservation): { decision: HpaDecision; memory: HpaMemory } {
  const { nowMs, currentReplicas } = observation;
  if (currentReplicas === 0 && config.minReplicas !== 0) {
    return { decision: { desiredReplicas: 0, reason: 'scaling is disabled while the target has 0 replicas' }, memory };
  }
  let desired: number;
  let metricCount: number | undefined;
  let reason: string;
  let recommendations = memory.recommendations;
  if (currentReplicas > config.maxReplicas) {
    desired = config.maxReplicas;
    reason = 'current replicas above the maximum';
  } else if (currentReplicas < config.minReplicas) {
    desired = config.minReplicas;
    reason = 'current replicas below the minimum';
  } else {
    const computed = metricReplicas(config, observation);
    reason = computed.reason;
    if (computed.replicas === undefined) return { decision: { desiredReplicas: currentReplicas, reason }, memory };
    metricCount = computed.replicas;
    const windows = { scaleOutMs: config.scaleUp.stabilizationMs, scaleInMs: config.scaleDown.stabilizationMs };
    // maybeInitScaleDownStabilizationWindow: a new HPA starts as if it had recommended the current count.
    const history = memory.recommendations.length > 0 ? memory.recommendations : [{ atMs: nowMs, count: currentReplicas }];
    const stabilized = stabilize(history, nowMs, computed.replicas, currentReplicas, windows);
    recommendations = rememberRecommendation(history, nowMs, computed.replicas, windows);
    desired = rateLimited(config, memory.scaleEvents, nowMs, currentReplicas, stabilized);
  }
  const scaleEvents = memory.scaleEvents.filter((event) => event.atMs > nowMs - longestPeriodMs(config));
  if (desired !== currentReplicas) {
    scaleEvents.push({ atMs: nowMs, direction: desired > currentReplicas ? 'out' : 'in', count: Math.abs(desired - currentReplicas) });
  }
  return { decision: { desiredReplicas: desired, metricReplicas: metricCount, reason }, memory: { recommendations, scaleEvents } };
}

/** convertDesiredReplicasWithBehaviorRate: rate limits, then min/max. */
function rateLimited(config: HpaConfig, events: readonly RecordedScaling[], nowMs: number, current: number, desired: number): number {
  if (desired > current) {
    const limit = Math.min(scaleOutLimit(config.scaleUp, events, nowMs, current), config.maxReplicas);
    return Math.min(desired, limit);
  }
  if (desired < current) {
    const limit = Math.max(scaleInLimit(config.scaleDown, events, nowMs, current), config.minReplicas);
    return Math.max(desired, limit);
  }
  return desired;
}

function longestPeriodMs(config: HpaConfig): number {
  return Math.max(0, ...[...config.scaleUp.rateLimits, ...config.scaleDown.rateLimits].map((rule) => rule.periodMs));
}
