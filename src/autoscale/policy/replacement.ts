// Unhealthy replacement: an instance that fails its health checks for replacement.failingForMs
// (or is still not ready replacement.startupTimeoutMs after launch) is drained and replaced by a
// new one, at most replacement.maxSharePercent of the pool at a time (at least one). When more
// than replacement.holdAboveUnhealthyPercent of the pool is unhealthy at once, nothing is
// replaced: that many instances do not fail independently; a dependency or a deploy is broken,
// and replacing them would only churn.

import { isFailing } from './instances.ts';
import type { PoolInstances } from './instances.ts';
import type { InstanceObservation, PolicyConfig } from './types.ts';

export interface ReplacementPlan {
  replace: InstanceObservation[];
  held: boolean;
  reason?: string;
}

export function planReplacement(config: PolicyConfig, pool: PoolInstances, nowMs: number): ReplacementPlan {
  const size = pool.current.length;
  if (size === 0) return { replace: [], held: false };
  const failing = pool.current.filter((instance) => isFailing(instance, nowMs, config));
  const unwell = pool.unhealthy.length + pool.starting.filter((instance) => isFailing(instance, nowMs, config)).length;
  const unhealthyPercent = (100 * unwell) / size;
  if (unhealthyPercent > config.replacement.holdAboveUnhealthyPercent) {
    return {
      replace: [],
      held: true,
      reason: `${unwell} of ${size} instances are unhealthy (over replacement.holdAboveUnhealthyPercent ${config.replacement.holdAboveUnhealthyPercent}%): a shared cause, not bad instances`,
    };
  }
  if (failing.length === 0) return { replace: [], held: false };
  // Replacements still in progress (unhealthy instances draining) use up the share.
  const inProgress = pool.draining.filter((instance) => !instance.healthy).length;
  const share = Math.max(1, Math.floor((size * config.replacement.maxSharePercent) / 100));
  const room = Math.max(0, share - inProgress);
  const ordered = [...failing].sort((a, b) => (a.failingSinceMs ?? a.launchedAtMs) - (b.failingSinceMs ?? b.launchedAtMs) || (a.id < b.id ? -1 : 1));
  const replace = ordered.slice(0, room);
  const reason = replace.length < failing.length ? `replacing ${replace.length} of ${failing.length} failing instances (at most ${share} at a time)` : undefined;
  return { replace, held: false, reason };
}
