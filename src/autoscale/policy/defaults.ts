// The policy's defaults, in one place: the YAML schema (src/control/autoscale-config.ts) fills
// missing keys from here, and tests and the simulator build configurations with policyConfig().
// Why each default is what it is: docs/autoscaling.md.

import type { DirectionBehavior, PolicyConfig, PolicyMemory } from './types.ts';

/** The control plane's ceiling on any pool (autoscale.hardMaxInstances). */
export const DEFAULT_HARD_MAX_INSTANCES = 100;

export const DEFAULT_PERIOD_MS = 15_000;

/**
 * Scale out fast: up to ten times the pool, or 4 more, per period, whichever is more. HPA allows
 * double or +4: it would ask again for instances already starting. Concord counts starting and
 * warming instances as capacity and sizes its ask on offered load (shed requests included), so it
 * takes the whole step at once; the runaway guard and the ceilings bound what a bad ask can do.
 */
export const DEFAULT_SCALE_OUT: DirectionBehavior = {
  stabilizationMs: 0,
  rateLimits: [
    { type: 'percent', value: 900, periodMs: DEFAULT_PERIOD_MS },
    { type: 'instances', value: 4, periodMs: DEFAULT_PERIOD_MS },
  ],
  select: 'max',
  cooldownMs: 0,
};

/** Scale in slowly: the highest recommendation of the last 5 minutes, then at most half the pool per minute. */
export const DEFAULT_SCALE_IN: DirectionBehavior = {
  stabilizationMs: 300_000,
  rateLimits: [
    { type: 'percent', value: 50, periodMs: 60_000 },
    { type: 'instances', value: 2, periodMs: 60_000 },
  ],
  select: 'max',
  cooldownMs: 30_000,
};

export const DEFAULT_POLICY: Omit<PolicyConfig, 'pool' | 'min' | 'max' | 'target'> = {
  hardMaxInstances: DEFAULT_HARD_MAX_INSTANCES,
  periodMs: DEFAULT_PERIOD_MS,
  tolerancePercent: 10,
  scaleOut: DEFAULT_SCALE_OUT,
  scaleIn: DEFAULT_SCALE_IN,
  warmupMs: 10_000,
  metrics: { maxAgeMs: 45_000, minCoveragePercent: 75 },
  drainDeadlineMs: 30_000,
  dependencies: [],
  runaway: {
    windowMs: 600_000,
    maxGrowthPerWindow: 50,
    maxUnexplainedGrowthFactor: 3,
    confirmPeriods: 2,
    minAddedInstances: 2,
    minGoodputGainPercent: 10,
  },
  replacement: { failingForMs: 60_000, startupTimeoutMs: 300_000, maxSharePercent: 10, holdAboveUnhealthyPercent: 50 },
  schedules: [],
  refresh: { minHealthyPercent: 90, readyTimeoutMs: 300_000 },
  dryRun: false,
};

type Overrides = Partial<Omit<PolicyConfig, 'scaleOut' | 'scaleIn' | 'metrics' | 'runaway' | 'replacement' | 'refresh'>> & {
  scaleOut?: Partial<DirectionBehavior>;
  scaleIn?: Partial<DirectionBehavior>;
  metrics?: Partial<PolicyConfig['metrics']>;
  runaway?: Partial<PolicyConfig['runaway']>;
  replacement?: Partial<PolicyConfig['replacement']>;
  refresh?: Partial<PolicyConfig['refresh']>;
};

/** A complete configuration from the defaults and the given overrides (nested sections merge key by key). */
export function policyConfig(overrides: Overrides & Pick<PolicyConfig, 'min' | 'max' | 'target'>): PolicyConfig {
  const d = DEFAULT_POLICY;
  return {
    ...d,
    pool: 'web',
    ...overrides,
    scaleOut: { ...d.scaleOut, ...overrides.scaleOut },
    scaleIn: { ...d.scaleIn, ...overrides.scaleIn },
    metrics: { ...d.metrics, ...overrides.metrics },
    runaway: { ...d.runaway, ...overrides.runaway },
    replacement: { ...d.replacement, ...overrides.replacement },
    refresh: { ...d.refresh, ...overrides.refresh },
  };
}

/** The memory of a pool the policy has never seen. */
export function initialMemory(): PolicyMemory {
  return {
    sequence: 0,
    recommendations: [],
    scalings: [],
    runawaySamples: [],
    unexplainedGrowthPeriods: 0,
    dependencyDegraded: [],
    replacementHeld: false,
    owedLaunches: 0,
  };
}
