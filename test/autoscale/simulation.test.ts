// The pool simulator: deterministic, and it charges for what happens (shed load, slow requests,
// instance time, connections past the dependency's limit).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtInScenarios, type Scenario } from '../../src/autoscale/sim/scenarios.ts';
import { DEFAULT_SIM_PARAMS, simulate, type SimCommand, type SimPolicy, type SimView } from '../../src/autoscale/sim/simulation.ts';
import { compareOnScenario } from '../../src/autoscale/sim/comparison.ts';

/** A policy that never acts, and remembers what it saw. */
function frozenPolicy(seen: SimView[] = []): SimPolicy {
  return { name: 'static', decide: (view): SimCommand => (seen.push(view), { launch: 0, drain: [], terminate: [], guards: [] }) };
}

const scenario = (name: string): Scenario => builtInScenarios(1).find((s) => s.name === name)!;

test('the same scenario and policy give the same result', () => {
  assert.deepEqual(compareOnScenario(scenario('noisy')), compareOnScenario(scenario('noisy')));
});

test('a pool that never scales is charged for the step it cannot serve, and for its instances', () => {
  const result = simulate(scenario('step-5x'), frozenPolicy());
  // 5 instances (400 req/s at under 60 % of their 160 req/s) for 70 minutes. The 30 minutes at 5x
  // violate the SLO, and so does minute 40, whose first second is still at 5x.
  assert.equal(result.maxInstances, 5);
  assert.ok(Math.abs(result.instanceHours - (5 * 70) / 60) < 1e-9);
  assert.equal(result.sloViolationMinutes, 31);
  assert.equal(result.actions, 0);
});

test('the policy sees metrics a control period late, averaged over a window, and not at all in an outage', () => {
  const seen: SimView[] = [];
  simulate(scenario('metrics-outage'), frozenPolicy(seen));
  const atMinute = (minute: number) => seen.find((view) => view.nowMs === minute * 60_000)!;
  assert.equal(atMinute(10).poolMetrics!.sampledAtMs, 10 * 60_000 - DEFAULT_SIM_PARAMS.metricLagMs);
  assert.equal(atMinute(30).poolMetrics, undefined);
  const hidden = atMinute(30).instances.filter((i) => i.metrics === undefined).length;
  assert.ok(hidden > 0 && hidden < atMinute(30).instances.length);
  assert.notEqual(atMinute(55).poolMetrics, undefined);
});

test('instances past the dependency connection limit fail requests', () => {
  const launchOnce: SimPolicy = {
    name: 'over-budget',
    decide: (view) => ({ launch: view.nowMs === 15_000 ? 60 : 0, drain: [], terminate: [], guards: [] }),
  };
  const result = simulate(scenario('buggy-metric'), launchOnce);
  assert.ok(result.peakConnectionsRatio > 1);
  assert.ok(result.sloViolationMinutes > 20, `${result.sloViolationMinutes} violation minutes`);
});
