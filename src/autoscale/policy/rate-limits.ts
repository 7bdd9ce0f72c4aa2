// Rate limits per direction, with HPA's behavior-policy arithmetic (calculateScaleUpLimit /
// calculateScaleDownLimit): each rule looks at the pool's size at the start of its sliding period
// (current, minus what was added, plus what was removed within the period) and allows
//   instances: start + value (out), start - value (in);
//   percent:   ceil(start * (1 + value/100)) (out), floor(start * (1 - value/100)) (in).
// With several rules, select 'max' applies the most permissive one, 'min' the strictest;
// 'disabled' turns the direction off. (Products
// are taken before dividing by 100, so 10 instances +10 % is exactly 11; Go's float arithmetic
// in HPA can round that to 12.)

import type { DirectionBehavior, RecordedScaling } from './types.ts';

function changedWithin(scalings: readonly RecordedScaling[], direction: 'out' | 'in', nowMs: number, periodMs: number): number {
  let total = 0;
  for (const scaling of scalings) if (scaling.direction === direction && scaling.atMs > nowMs - periodMs) total += scaling.count;
  return total;
}

/** The largest count a scale-out may reach now (never below current). */
export function scaleOutLimit(behavior: DirectionBehavior, scalings: readonly RecordedScaling[], nowMs: number, current: number): number {
  if (behavior.select === 'disabled') return current;
  if (behavior.rateLimits.length === 0) return Number.POSITIVE_INFINITY;
  let limit = behavior.select === 'max' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const rule of behavior.rateLimits) {
    const periodStart = current - changedWithin(scalings, 'out', nowMs, rule.periodMs) + changedWithin(scalings, 'in', nowMs, rule.periodMs);
    const proposed = rule.type === 'instances' ? periodStart + rule.value : Math.ceil((periodStart * (100 + rule.value)) / 100);
    limit = behavior.select === 'max' ? Math.max(limit, proposed) : Math.min(limit, proposed);
  }
  return Math.max(limit, current);
}

/** The smallest count a scale-in may reach now (never above current). */
export function scaleInLimit(behavior: DirectionBehavior, scalings: readonly RecordedScaling[], nowMs: number, current: number): number {
  if (behavior.select === 'disabled') return current;
  if (behavior.rateLimits.length === 0) return 0;
  let limit = behavior.select === 'max' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  for (const rule of behavior.rateLimits) {
    const periodStart = current + changedWithin(scalings, 'in', nowMs, rule.periodMs) - changedWithin(scalings, 'out', nowMs, rule.periodMs);
    const proposed = rule.type === 'instances' ? periodStart - rule.value : Math.floor((periodStart * (100 - rule.value)) / 100);
    limit = behavior.select === 'max' ? Math.min(limit, proposed) : Math.max(limit, proposed);
  }
  return Math.min(limit, current);
}

/** Scalings still inside some rule's period or cooldown; older ones can no longer matter. */
export function pruneScalings(scalings: readonly RecordedScaling[], nowMs: number, keepMs: number): RecordedScaling[] {
  return scalings.filter((scaling) => scaling.atMs > nowMs - keepMs);
}
