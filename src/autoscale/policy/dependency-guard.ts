// Back-end protection. A pool declares what each instance costs its dependencies (20 database
// connections each, against a budget of 500): the pool never grows past the budget, draining
// instances included, since they hold their connections until they stop. And while a dependency
// reports itself degraded, the pool does not grow at all (except back to its minimum): adding
// servers in front of a struggling database makes its outage worse.

import type { DependencyConfig, PolicyConfig } from './types.ts';

/** The most instances the dependency budgets allow in total, draining ones included (Infinity without dependencies). */
export function budgetMaxInstances(dependencies: readonly DependencyConfig[]): { max: number; binding?: DependencyConfig } {
  let max = Number.POSITIVE_INFINITY;
  let binding: DependencyConfig | undefined;
  for (const dependency of dependencies) {
    const allowed = Math.floor(dependency.budget / dependency.costPerInstance);
    if (allowed < max) {
      max = allowed;
      binding = dependency;
    }
  }
  return { max, binding };
}

/** Names of the declared dependencies whose health signal says degraded. */
export function degradedDependencies(config: PolicyConfig, dependencyHealthy: Record<string, boolean>): string[] {
  return config.dependencies.filter((dependency) => dependencyHealthy[dependency.name] === false).map((dependency) => dependency.name);
}
