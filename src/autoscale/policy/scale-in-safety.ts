// Which instances leave when the pool shrinks. Unhealthy instances go first (the longest failing
// first), then instances still starting (they serve nothing yet), then healthy ones, outdated
// launch versions before current ones (a refresh would replace them anyway), newest first (the
// oldest have proven themselves and are warm). The pool never drops below its minimum (the
// caller's desired count respects it) and never loses its last healthy instance.

import { newestFirst } from './instances.ts';
import type { PoolInstances } from './instances.ts';
import type { InstanceObservation } from './types.ts';

export interface ScaleInChoice {
  victims: InstanceObservation[];
  /** Set when the last-healthy rule kept instances the count asked to remove. */
  kept?: string;
}

function byFailingSince(a: InstanceObservation, b: InstanceObservation): number {
  return (a.failingSinceMs ?? 0) - (b.failingSinceMs ?? 0) || newestFirst(a, b);
}

export function chooseScaleInVictims(
  pool: PoolInstances,
  count: number,
  launchVersion: string,
  exclude: ReadonlySet<string>,
): ScaleInChoice {
  const available = (list: InstanceObservation[]) => list.filter((instance) => !exclude.has(instance.id));
  const healthy = available([...pool.warming, ...pool.warmed]);
  const outdated = healthy.filter((instance) => instance.launchVersion !== launchVersion).sort(newestFirst);
  const upToDate = healthy.filter((instance) => instance.launchVersion === launchVersion).sort(newestFirst);
  const order = [...available(pool.unhealthy).sort(byFailingSince), ...available(pool.starting).sort(newestFirst), ...outdated, ...upToDate];

  const victims: InstanceObservation[] = [];
  let healthyLeft = healthy.length;
  for (const instance of order) {
    if (victims.length === count) break;
    const isHealthy = instance.readyAtMs !== undefined && instance.healthy;
    if (isHealthy && healthyLeft <= 1) {
      return { victims, kept: 'the last healthy instance is never removed' };
    }
    if (isHealthy) healthyLeft--;
    victims.push(instance);
  }
  return { victims };
}
