// Target tracking: signals, tolerance, the offered-load correction for shed requests, warm-up
// exclusion, and "out if any signal asks, in only if all agree". Each test states the exact
// decision it expects.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMemory } from '../../src/autoscale/policy/defaults.ts';
import { decide } from '../../src/autoscale/policy/policy.ts';
import { config, drains, launches, observation, poolMetrics, settledMemory, stages, warmed, warmedPool, warming } from './helpers.ts';

test('in-flight at twice the target doubles the warmed pool: 4 -> 8, four launches with request ids from the decision sequence', () => {
  const { decision, memory } = decide(config(), initialMemory(), observation(warmedPool(4, 16)));
  assert.equal(decision.recommended, 8);
  assert.equal(decision.desired, 8);
  assert.deepEqual(stages(decision), ['target-tracking 4->8']);
  assert.deepEqual(launches(decision), ['web/1/launch/0', 'web/1/launch/1', 'web/1/launch/2', 'web/1/launch/3']);
  assert.ok(decision.actions.every((a) => a.kind !== 'launch' || a.launchVersion === 'v1'));
  assert.equal(decision.signals[0]!.vote, 'out');
  assert.equal(decision.signals[0]!.ratio, 2);
  assert.deepEqual(memory.scalings, [{ atMs: decision.atMs, direction: 'out', count: 4 }]);
  assert.equal(memory.sequence, 1);
});

test('within the tolerance band nothing changes: 6.25 % over target holds, and so does 6.25 % under', () => {
  for (const inflight of [8.5, 7.5]) {
    const { decision } = decide(config(), initialMemory(), observation(warmedPool(4, inflight)));
    assert.equal(decision.desired, 4);
    assert.deepEqual(decision.actions, []);
    assert.equal(decision.signals[0]!.vote, 'hold');
  }
});

test('the autoscaler scales on offered load including shed requests: a pool serving 400 req/s and shedding 400 looks twice as loaded', () => {
  const { decision } = decide(config(), initialMemory(), observation(warmedPool(4, 8, 100), { metrics: poolMetrics({ shedPerSecond: 400 }) }));
  assert.equal(decision.inputs.offeredPerSecond, 800);
  assert.equal(decision.signals[0]!.value, 16);
  assert.equal(decision.desired, 8);
});

test('requests/s per instance is a signal too, and counts shed requests', () => {
  const cfg = config({ target: { requestsPerSecondPerInstance: 100 } });
  const { decision } = decide(cfg, initialMemory(), observation(warmedPool(4, 8, 150), { metrics: poolMetrics({ shedPerSecond: 200 }) }));
  // (600 served + 200 shed) / 4 warmed = 200 per instance: twice the target.
  assert.equal(decision.signals[0]!.value, 200);
  assert.equal(decision.desired, 8);
});

test('an external metric asks for total / target-per-instance instances', () => {
  const cfg = config({ target: { external: { queueDepth: 50 } } });
  const { decision } = decide(cfg, initialMemory(), observation(warmedPool(4, 8), { metrics: poolMetrics({ external: { queueDepth: 600 } }) }));
  assert.equal(decision.signals[0]!.signal, 'external:queueDepth');
  assert.equal(decision.desired, 12);
});

test('several signals: out if any asks (the largest ask wins)', () => {
  const cfg = config({ target: { inflightPerInstance: 8, p95LatencyMs: 100 } });
  // In-flight says 4 -> 2; latency at 3x its objective asks for at most 2x the warmed pool.
  const { decision } = decide(cfg, initialMemory(), observation(warmedPool(4, 4), { metrics: poolMetrics({ latencyMs: { mean: 200, p50: 150, p95: 300, p99: 400 } }) }));
  assert.deepEqual(decision.signals.map((s) => s.vote), ['in', 'out']);
  assert.equal(decision.desired, 8);
});

test('several signals: in only if all agree', () => {
  const cfg = config({ target: { inflightPerInstance: 8, p95LatencyMs: 100 } });
  const holdLatency = decide(cfg, initialMemory(), observation(warmedPool(6, 2), { metrics: poolMetrics({ latencyMs: { mean: 80, p50: 70, p95: 100, p99: 130 } }) }));
  assert.deepEqual(holdLatency.decision.signals.map((s) => s.vote), ['in', 'hold']);
  assert.equal(holdLatency.decision.desired, 6);
  assert.deepEqual(holdLatency.decision.actions, []);
  const bothLow = decide(cfg, settledMemory(), observation(warmedPool(6, 2), { metrics: poolMetrics({ latencyMs: { mean: 40, p50: 30, p95: 40, p99: 60 } }) }));
  assert.deepEqual(bothLow.decision.signals.map((s) => s.vote), ['in', 'in']);
  // In-flight asks for 2, latency (at 40 %, limited to halving) for 3: the most cautious, 3, wins.
  assert.equal(bothLow.decision.recommended, 3);
  assert.equal(bothLow.decision.desired, 3);
  assert.equal(drains(bothLow.decision).length, 3);
});

test('warming instances are excluded from the metrics but count as capacity: no second ask for instances on their way', () => {
  // 4 warmed at twice the target ask for 8; 4 more are warming (their cold numbers are ignored): hold.
  const instances = [...warmedPool(4, 16), warming('w0'), warming('w1'), warming('w2'), warming('w3')];
  const { decision } = decide(config(), initialMemory(), observation(instances));
  assert.equal(decision.inputs.instances.warming, 4);
  assert.equal(decision.signals[0]!.value, 16);
  assert.equal(decision.recommended, 8);
  assert.equal(decision.desired, 8);
  assert.deepEqual(decision.actions, []);
});

test('with no warmed instance yet there is nothing to measure: hold, and it is no metrics outage', () => {
  const { decision } = decide(config(), initialMemory(), observation([warming('w0', 1_000, 80), warming('w1', 1_000, 80)]));
  assert.equal(decision.signals[0]!.vote, 'hold');
  assert.deepEqual(decision.actions, []);
  assert.deepEqual(decision.events, []);
});

test('the decision records its inputs', () => {
  const instances = [...warmedPool(3, 8), warmed('x', 8, 100, { healthy: false, failingSinceMs: 0 })];
  const { decision } = decide(config(), initialMemory(), observation(instances, { metrics: poolMetrics({ shedPerSecond: 12, errorRatio: 0.01 }) }));
  assert.deepEqual(decision.inputs.instances, { starting: 0, warming: 0, warmed: 3, unhealthy: 1, draining: 0, total: 4 });
  assert.equal(decision.inputs.shedPerSecond, 12);
  assert.equal(decision.inputs.errorRatio, 0.01);
  assert.equal(decision.inputs.metricsAgeMs, 15_000);
  assert.equal(decision.inputs.metricCoveragePercent, 100);
  assert.deepEqual(decision.inputs.bounds, { min: 2, max: 20, activeSchedules: [] });
  assert.ok(Math.abs(decision.inputs.goodputPerSecond! - 400 * 0.99) < 1e-9);
});
