// The autoscaling benchmark's goals, checked on the full built-in set (the simulation is cheap and
// deterministic, so this is the benchmark itself, asserted): Concord against the HPA baseline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareOnScenario, evaluateGoals } from '../../src/autoscale/sim/comparison.ts';
import { builtInScenarios } from '../../src/autoscale/sim/scenarios.ts';

const rows = builtInScenarios(1).map((scenario) => compareOnScenario(scenario));

test('every goal of the autoscaling benchmark holds', () => {
  const goals = evaluateGoals(rows);
  assert.deepEqual(goals.filter((goal) => !goal.passed), []);
  assert.equal(goals.length, 6);
});

test('the runaway guard froze on the buggy metric, and on nothing else', () => {
  const frozen = rows.filter((row) => row.concord.frozeAtSeconds !== undefined).map((row) => row.scenario.name);
  assert.deepEqual(frozen, ['buggy-metric']);
  const buggy = rows.find((row) => row.scenario.name === 'buggy-metric')!;
  assert.ok(buggy.concord.periodsToFreeze! <= 3);
  assert.ok(buggy.hpa.maxInstances > buggy.concord.maxInstances, 'HPA follows the bug');
});

test('the goal check can fail: with the two policies swapped it does', () => {
  const swapped = rows.map((row) => ({ ...row, concord: row.hpa, hpa: row.concord }));
  const failed = evaluateGoals(swapped).filter((goal) => !goal.passed).map((goal) => goal.goal);
  assert.deepEqual(failed, [
    'fewer SLO-violation minutes than HPA on every trace',
    'at most equal instance-hours overall',
    'zero scale-ins during the metrics outage',
    'no growth past the dependency budget',
    'the runaway guard freezes on a buggy metric within 3 periods',
  ]);
});
