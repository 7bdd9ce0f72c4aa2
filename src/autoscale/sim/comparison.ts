// The benchmark's logic, shared by `concord bench autoscale` and its quick check in the test suite:
// both policies run every scenario on the same simulated pool (same metric lag, control period,
// start-up delay and warm-up), and the goals are checked on the results.

import { hpaConfig } from '../hpa/hpa-policy.ts';
import { policyConfig } from '../policy/defaults.ts';
import type { PolicyConfig } from '../policy/types.ts';
import { concordSimPolicy, hpaSimPolicy } from './policies.ts';
import type { Scenario } from './scenarios.ts';
import { DEFAULT_SIM_PARAMS, simulate, type SimParams, type SimResult } from './simulation.ts';

/** The pool both policies manage: the same bounds and the same in-flight target. */
export interface PoolUnderTest {
  min: number;
  max: number;
  inflightPerInstance: number;
  /** Concord's second signal: the latency objective (HPA scales on the in-flight metric alone). */
  p95LatencyMs: number;
}

export const DEFAULT_POOL_UNDER_TEST: PoolUnderTest = { min: 2, max: 80, inflightPerInstance: 6, p95LatencyMs: 150 };

export function benchConcordConfig(pool: PoolUnderTest, params: SimParams): PolicyConfig {
  return policyConfig({
    pool: 'web',
    min: pool.min,
    max: pool.max,
    periodMs: params.periodMs,
    target: { inflightPerInstance: pool.inflightPerInstance, p95LatencyMs: pool.p95LatencyMs },
    warmupMs: params.warmupMs,
    dependencies: [{ name: 'db', costPerInstance: params.dependency.connectionsPerInstance, budget: params.dependency.maxConnections }],
  });
}

export interface ComparisonRow {
  scenario: Scenario;
  concord: SimResult;
  hpa: SimResult;
}

export function compareOnScenario(scenario: Scenario, pool: PoolUnderTest = DEFAULT_POOL_UNDER_TEST, params: SimParams = DEFAULT_SIM_PARAMS): ComparisonRow {
  const concord = simulate(scenario, concordSimPolicy(benchConcordConfig(pool, params)), params);
  const hpa = simulate(scenario, hpaSimPolicy(hpaConfig({ minReplicas: pool.min, maxReplicas: pool.max, targetAverageValue: pool.inflightPerInstance })), params);
  return { scenario, concord, hpa };
}

export interface GoalResult {
  goal: string;
  passed: boolean;
  detail: string;
}

/** The benchmark's goals, checked on a full set of rows. */
export function evaluateGoals(rows: readonly ComparisonRow[], params: SimParams = DEFAULT_SIM_PARAMS): GoalResult[] {
  const traces = rows.filter((row) => !row.scenario.guardCheck);
  const goals: GoalResult[] = [];
  const worse = traces.filter((row) => row.concord.sloViolationMinutes > row.hpa.sloViolationMinutes || (row.hpa.sloViolationMinutes > 0 && row.concord.sloViolationMinutes === row.hpa.sloViolationMinutes));
  goals.push({
    goal: 'fewer SLO-violation minutes than HPA on every trace',
    passed: worse.length === 0,
    detail: worse.length === 0 ? 'on every trace' : `not on ${worse.map((row) => `${row.scenario.name} (${row.concord.sloViolationMinutes} vs ${row.hpa.sloViolationMinutes})`).join(', ')}`,
  });
  const concordHours = traces.reduce((sum, row) => sum + row.concord.instanceHours, 0);
  const hpaHours = traces.reduce((sum, row) => sum + row.hpa.instanceHours, 0);
  goals.push({ goal: 'at most equal instance-hours overall', passed: concordHours <= hpaHours, detail: `${concordHours.toFixed(1)} vs ${hpaHours.toFixed(1)} instance-hours` });
  const outage = rows.filter((row) => row.scenario.faults.metricsOutage !== undefined);
  const outageScaleIns = outage.reduce((sum, row) => sum + row.concord.scaleInsDuringOutage, 0);
  goals.push({ goal: 'zero scale-ins during the metrics outage', passed: outage.length > 0 && outageScaleIns === 0, detail: `${outageScaleIns} scale-ins (HPA: ${outage.reduce((sum, row) => sum + row.hpa.scaleInsDuringOutage, 0)})` });
  const overBudget = rows.filter((row) => row.concord.peakConnectionsRatio > 1);
  goals.push({
    goal: 'no growth past the dependency budget',
    passed: overBudget.length === 0,
    detail: overBudget.length === 0 ? `peak ${Math.max(...rows.map((row) => row.concord.peakConnectionsRatio)).toFixed(2)} of the budget` : `over on ${overBudget.map((row) => row.scenario.name).join(', ')}`,
  });
  const buggy = rows.filter((row) => row.scenario.faults.buggyMetric !== undefined);
  const froze = buggy.every((row) => row.concord.periodsToFreeze !== undefined && row.concord.periodsToFreeze <= 3);
  goals.push({
    goal: 'the runaway guard freezes on a buggy metric within 3 periods',
    passed: buggy.length > 0 && froze,
    detail: buggy.map((row) => (row.concord.periodsToFreeze === undefined ? 'never froze' : `froze after ${row.concord.periodsToFreeze} periods (${(row.concord.periodsToFreeze * params.periodMs) / 1000} s)`)).join(', '),
  });
  const falseFreezes = traces.filter((row) => row.concord.frozeAtSeconds !== undefined);
  goals.push({ goal: 'no freeze on a legitimate trace', passed: falseFreezes.length === 0, detail: falseFreezes.length === 0 ? 'none' : `froze on ${falseFreezes.map((row) => row.scenario.name).join(', ')}` });
  return goals;
}
