// settleMemory: a decision cut short (a freeze between two actions, a deposed leader, a failed
// launch) leaves a memory that records only what was carried out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from '../../src/autoscale/policy/policy.ts';
import { settleMemory } from '../../src/autoscale/policy/settle.ts';
import { NOW, config, observation, settledMemory, unhealthy, warmedPool } from './helpers.ts';

test('launches for scaling that did not happen are not counted against the rate limits', () => {
  const { decision, memory } = decide(config({ max: 20 }), settledMemory(), observation(warmedPool(4, 16)));
  assert.deepEqual(decision.actions.map((a) => `${a.kind}:${a.purpose}`), ['launch:scale', 'launch:scale', 'launch:scale', 'launch:scale']);
  assert.deepEqual(memory.scalings.map((s) => [s.direction, s.count]), [['out', 4]]);
  assert.deepEqual(settleMemory(memory, decision, []), memory, 'all done: unchanged');
  assert.deepEqual(settleMemory(memory, decision, decision.actions.slice(1)).scalings.map((s) => [s.direction, s.count]), [['out', 1]]);
  assert.deepEqual(settleMemory(memory, decision, decision.actions).scalings, [], 'nothing done: no scaling recorded');
  assert.equal(settleMemory(memory, decision, decision.actions).sequence, memory.sequence, 'the sequence stays taken');
  assert.deepEqual(settleMemory(memory, decision, [decision.actions[1]!]).scalings.map((s) => [s.direction, s.count]), [['out', 3]], 'a launch that failed in the middle');
});

test('drains for scaling in that did not happen are not counted; earlier scalings stay', () => {
  const earlier = { ...settledMemory(), scalings: [{ atMs: NOW - 100_000, direction: 'out' as const, count: 3 }] };
  const { decision, memory } = decide(config({ min: 2, scaleIn: { stabilizationMs: 0, cooldownMs: 0, rateLimits: [{ type: 'instances', value: 10, periodMs: 60_000 }], select: 'max' } }), earlier, observation(warmedPool(6, 1)));
  const drains = decision.actions.filter((a) => a.kind === 'drain');
  assert.ok(drains.length >= 2 && drains.every((a) => a.purpose === 'scale'));
  const settled = settleMemory(memory, decision, decision.actions.slice(1));
  assert.deepEqual(settled.scalings.map((s) => [s.direction, s.count]), [['out', 3], ['in', 1]]);
});

test('a replacement not launched is still owed; a replacement drain that did not happen owes nothing', () => {
  const pool = [...warmedPool(9, 8), unhealthy('sick')];
  const { decision, memory } = decide(config({ min: 2, max: 20 }), settledMemory(), observation(pool));
  assert.deepEqual(decision.actions.map((a) => `${a.kind}:${a.purpose}`), ['drain:replace', 'launch:replace']);
  assert.equal(memory.owedLaunches, 0);
  assert.equal(settleMemory(memory, decision, decision.actions.slice(1)).owedLaunches, 1, 'drained but not replaced yet: owed');
  assert.equal(settleMemory(memory, decision, decision.actions).owedLaunches, 0, 'not drained: nothing owed (it is replaced next period)');
});
