// Every guard of the policy, each with its own test and the exact decision it expects.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMemory } from '../../src/autoscale/policy/defaults.ts';
import { classifyInstances } from '../../src/autoscale/policy/instances.ts';
import { decide, RUNAWAY_FREEZE_BY } from '../../src/autoscale/policy/policy.ts';
import { chooseScaleInVictims } from '../../src/autoscale/policy/scale-in-safety.ts';
import type { PolicyMemory } from '../../src/autoscale/policy/types.ts';
import {
  config, drains, later, launches, NOW, observation, poolMetrics, settledMemory, stages, starting, terminates, unhealthy, warmed, warmedPool, warming, World,
} from './helpers.ts';

// --- hard bounds -------------------------------------------------------------------------------

test('hard bounds: the maximum caps any ask', () => {
  const { decision } = decide(config({ max: 20 }), initialMemory(), observation(warmedPool(4, 80)));
  assert.deepEqual(stages(decision), ['target-tracking 4->40', 'bounds 40->20']);
  assert.equal(launches(decision).length, 16);
});

test('hard bounds: below the minimum the pool grows back, even without metrics', () => {
  const withMetrics = decide(config({ min: 2 }), initialMemory(), observation(warmedPool(1, 1)));
  assert.deepEqual(stages(withMetrics.decision), ['bounds 1->2']);
  assert.equal(launches(withMetrics.decision).length, 1);
  const withoutMetrics = decide(config({ min: 3 }), initialMemory(), observation(warmedPool(1, 1), { metrics: undefined }));
  assert.equal(withoutMetrics.decision.desired, 3);
  assert.equal(launches(withoutMetrics.decision).length, 2);
});

test('hard ceiling: hardMaxInstances caps the pool, draining instances included', () => {
  const cfg = config({ max: 20, hardMaxInstances: 6 });
  const capped = decide(cfg, initialMemory(), observation(warmedPool(4, 80)));
  assert.equal(capped.decision.desired, 6);
  assert.equal(launches(capped.decision).length, 2);
  // Two instances still draining hold two of the six places: no launch at all.
  const draining = [warmed('d0', 0, 0, { drainingSinceMs: NOW - 1_000 }), warmed('d1', 0, 0, { drainingSinceMs: NOW - 1_000 })];
  const full = decide(cfg, initialMemory(), observation([...warmedPool(4, 80), ...draining]));
  assert.deepEqual(launches(full.decision), []);
  assert.deepEqual(stages(full.decision), ['target-tracking 4->40', 'hard-ceiling 40->6', 'hard-ceiling 6->4']);
});

// --- kill switch -------------------------------------------------------------------------------

test('kill switch: frozen globally, no action of any kind (no scale-out, no replacement, no terminate)', () => {
  const instances = [...warmedPool(4, 40), unhealthy('sick', 600_000), warmed('gone', 0, 0, { drainingSinceMs: NOW - 60_000, drained: true })];
  const freeze = { global: { by: 'alice', reason: 'incident 42', atMs: NOW - 5_000 } };
  const { decision, memory } = decide(config(), initialMemory(), observation(instances, { freeze }));
  assert.deepEqual(decision.actions, []);
  assert.deepEqual(decision.frozen, { scope: 'global', by: 'alice', reason: 'incident 42' });
  assert.deepEqual(stages(decision), ['kill-switch 5->5']);
  assert.deepEqual(decision.events.map((e) => e.kind), ['frozen']);
  // Unfrozen at the next period: the event says so and the pool acts again.
  const next = decide(config(), memory, observation(instances, { nowMs: NOW + 15_000 }));
  assert.deepEqual(next.decision.events.map((e) => e.kind), ['unfrozen']);
  assert.deepEqual(terminates(next.decision), ['gone']);
  assert.ok(launches(next.decision).length > 0);
});

test('kill switch: a pool freeze takes effect at the next decision, also for a new leader starting from empty memory', () => {
  const instances = warmedPool(4, 40);
  const freeze = { pool: { by: 'etcdctl', reason: 'deploy', atMs: NOW } };
  for (const memory of [initialMemory(), settledMemory()]) {
    const { decision } = decide(config(), memory, observation(instances, { freeze }));
    assert.deepEqual(decision.actions, []);
    assert.equal(decision.frozen?.scope, 'pool');
  }
});

// --- runaway guard -----------------------------------------------------------------------------

test('runaway guard: a metric that jumps 10x while traffic does not is held, then frozen on the second period', () => {
  const cfg = config();
  const world = new World(warmedPool(4, 8), 32);
  let memory: PolicyMemory = initialMemory();
  for (let period = 0; period < 3; period++) {
    const result = decide(cfg, memory, world.observe());
    assert.deepEqual(result.decision.actions, []);
    memory = result.memory;
    world.advance(15_000);
  }
  const buggy = () => {
    const seen = world.observe();
    for (const instance of seen.instances) if (instance.metrics) instance.metrics = { ...instance.metrics, inflight: instance.metrics.inflight * 10 };
    return seen;
  };
  const first = decide(cfg, memory, buggy());
  assert.deepEqual(stages(first.decision), ['target-tracking 4->40', 'bounds 40->20', 'runaway 20->12']);
  assert.equal(launches(first.decision).length, 8);
  world.apply(first.decision);
  world.advance(15_000);
  const second = decide(cfg, first.memory, buggy());
  assert.deepEqual(second.decision.actions, []);
  assert.equal(second.decision.frozen?.scope, 'self');
  assert.equal(second.decision.freezeRequest?.by, RUNAWAY_FREEZE_BY);
  assert.match(second.decision.freezeRequest!.reason, /maxUnexplainedGrowthFactor/);
  assert.deepEqual(second.decision.events.map((e) => e.kind), ['runaway-freeze']);

  // Until the controller has written the kill-switch key, the policy keeps itself frozen and keeps asking for the key.
  world.advance(15_000);
  const third = decide(cfg, second.memory, buggy());
  assert.deepEqual(third.decision.actions, []);
  assert.deepEqual(third.decision.freezeRequest, second.decision.freezeRequest);
  // Once the key carries the freeze, the key rules; removing it (the operator's unfreeze) ends it.
  world.advance(15_000);
  const fourth = decide(cfg, third.memory, world.observe({ freeze: { pool: second.decision.freezeRequest! } }));
  assert.equal(fourth.decision.frozen?.scope, 'pool');
  assert.equal(fourth.memory.selfFreeze, undefined);
  world.advance(15_000);
  const fifth = decide(cfg, fourth.memory, world.observe());
  assert.equal(fifth.decision.frozen, undefined);
  assert.deepEqual(fifth.decision.events.map((e) => e.kind), ['unfrozen']);
});

test('runaway guard: asking for more growth in a window than runaway.maxGrowthPerWindow freezes at once', () => {
  const cfg = config({ max: 50, runaway: { maxGrowthPerWindow: 10 } });
  const { decision } = decide(cfg, initialMemory(), observation(warmedPool(4, 40)));
  assert.deepEqual(decision.actions, []);
  assert.match(decision.freezeRequest!.reason, /maxGrowthPerWindow \(10\)/);
});

test('runaway guard: still losing requests after added instances warmed, without goodput gain: frozen', () => {
  const memory: PolicyMemory = {
    ...settledMemory(),
    runawaySamples: [{ atMs: NOW - 120_000, capacity: 4, warmed: 4, offeredPerSecond: 1000, offeredConcurrency: 60, goodputPerSecond: 600 }],
  };
  // Twice the instances, the same 600 req/s of goodput, 400 req/s still shed.
  const { decision } = decide(config({ max: 50 }), memory, observation(warmedPool(8, 16, 75), { metrics: poolMetrics({ shedPerSecond: 400 }) }));
  assert.deepEqual(decision.actions, []);
  assert.match(decision.freezeRequest!.reason, /adding instances is not helping/);
});

test('runaway guard: a dry run reports what it would do and freezes nothing', () => {
  const cfg = config({ max: 50, dryRun: true, runaway: { maxGrowthPerWindow: 10 } });
  const { decision, memory } = decide(cfg, initialMemory(), observation(warmedPool(4, 40)));
  assert.equal(decision.freezeRequest, undefined);
  assert.match(decision.events[0]!.message, /would freeze \(dry run\)/);
  assert.equal(memory.selfFreeze, undefined);
});

// --- back-end protection -----------------------------------------------------------------------

test('back-end protection: growth stops at the dependency budget, draining instances included', () => {
  const cfg = config({ dependencies: [{ name: 'db', costPerInstance: 20, budget: 200 }] });
  const draining = [warmed('d0', 0, 0, { drainingSinceMs: NOW - 1_000 }), warmed('d1', 0, 0, { drainingSinceMs: NOW - 1_000 })];
  const { decision } = decide(cfg, initialMemory(), observation([...warmedPool(6, 24), ...draining]));
  assert.deepEqual(stages(decision), ['target-tracking 6->18', 'dependency-budget 18->8']);
  assert.equal(launches(decision).length, 2);
});

test('back-end protection: a degraded dependency stops scale-out (but not the way back to the minimum)', () => {
  const cfg = config({ min: 3, dependencies: [{ name: 'db', costPerInstance: 20, budget: 1000 }] });
  const degraded = decide(cfg, initialMemory(), observation(warmedPool(6, 24), { dependencyHealthy: { db: false } }));
  assert.deepEqual(stages(degraded.decision), ['target-tracking 6->18', 'dependency-health 18->6']);
  assert.deepEqual(degraded.decision.actions, []);
  assert.deepEqual(degraded.decision.events.map((e) => e.kind), ['dependency-degraded']);
  const recovered = decide(cfg, degraded.memory, observation(warmedPool(6, 24), { nowMs: NOW + 15_000, dependencyHealthy: { db: true } }));
  assert.deepEqual(recovered.decision.events.map((e) => e.kind), ['dependency-recovered']);
  assert.equal(launches(recovered.decision).length, 12);
  const belowMin = decide(cfg, initialMemory(), observation(warmedPool(1, 24), { dependencyHealthy: { db: false } }));
  assert.equal(belowMin.decision.desired, 3);
});

// --- scale-in safety ---------------------------------------------------------------------------

test('scale-in safety: unhealthy first (longest failing first), then starting, then outdated, then newest', () => {
  const instances = [
    ...warmedPool(3, 1),
    warmed('old-version', 1, 10, { launchVersion: 'v0', launchedAtMs: NOW - 3 * 3_600_000 }),
    unhealthy('sick-recent', 10_000),
    unhealthy('sick-long', 40_000),
    starting('new'),
  ];
  const pool = classifyInstances(instances, NOW, 10_000);
  const choice = chooseScaleInVictims(pool, 6, 'v1', new Set());
  assert.deepEqual(choice.victims.map((i) => i.id), ['sick-long', 'sick-recent', 'new', 'old-version', 'i2', 'i1']);
});

test('scale-in safety: the last healthy instance is never removed, and the pool never goes below its minimum', () => {
  const pool = classifyInstances([warmed('only', 1, 10), unhealthy('sick', 10_000)], NOW, 10_000);
  const choice = chooseScaleInVictims(pool, 2, 'v1', new Set());
  assert.deepEqual(choice.victims.map((i) => i.id), ['sick']);
  assert.match(choice.kept!, /last healthy/);
  const { decision } = decide(config({ min: 3 }), settledMemory(), observation(warmedPool(6, 1)));
  assert.equal(decision.desired, 3);
  assert.equal(drains(decision).length, 3);
});

test('a scale-in drains before it terminates: every removal drains first; terminate comes once drained or at the drain deadline', () => {
  const cfg = config({ drainDeadlineMs: 30_000 });
  const scaleIn = decide(cfg, settledMemory(), observation(warmedPool(6, 1)));
  assert.deepEqual(scaleIn.decision.actions.map((a) => a.kind), ['drain', 'drain', 'drain']);
  const draining = (id: string, sinceMs: number, drained: boolean) => warmed(id, 0, 0, { drainingSinceMs: NOW - sinceMs, drained });
  const later = decide(cfg, scaleIn.memory, observation([...warmedPool(3, 1), draining('a', 10_000, false), draining('b', 10_000, true), draining('c', 31_000, false)]));
  assert.deepEqual(terminates(later.decision), ['b', 'c']);
  const reasons = later.decision.actions.filter((a) => a.kind === 'terminate').map((a) => a.kind === 'terminate' && `${a.requestId}: ${a.reason}`);
  assert.deepEqual(reasons, ['web/terminate/b: drained', 'web/terminate/c: drain deadline (30000 ms) passed with requests still in flight']);
});

// --- unhealthy replacement ---------------------------------------------------------------------

test('unhealthy replacement: failing long enough is replaced, at most 10 % of the pool at a time', () => {
  const instances = [...warmedPool(8, 8), unhealthy('sick-a', 90_000), unhealthy('sick-b', 120_000)];
  const { decision } = decide(config(), initialMemory(), observation(instances));
  assert.deepEqual(drains(decision), ['sick-b']);
  assert.deepEqual(decision.actions.filter((a) => a.kind === 'launch').map((a) => a.reason), ['replace a drained instance']);
  // The next period, one replacement is still in progress (sick-b draining): nothing more.
  const next = decide(config(), initialMemory(), observation([...warmedPool(8, 8), unhealthy('sick-a', 105_000), unhealthy('sick-b', 135_000, { drainingSinceMs: NOW - 15_000 }), starting('n0')]));
  assert.deepEqual(drains(next.decision), []);
});

test('unhealthy replacement: not before replacement.failingForMs, and never-ready instances count after the start-up timeout', () => {
  const young = decide(config(), initialMemory(), observation([...warmedPool(9, 8), unhealthy('sick', 30_000)]));
  assert.deepEqual(drains(young.decision), []);
  const stuck = decide(config(), initialMemory(), observation([...warmedPool(9, 8), starting('stuck', 301_000)]));
  assert.deepEqual(drains(stuck.decision), ['stuck']);
});

test('unhealthy replacement: held when most of the pool is unhealthy at once (a shared cause)', () => {
  const instances = [...warmedPool(4, 8), ...Array.from({ length: 6 }, (_, k) => unhealthy(`sick${k}`, 120_000))];
  const { decision, memory } = decide(config(), initialMemory(), observation(instances));
  assert.deepEqual(drains(decision), []);
  assert.deepEqual(decision.events.map((e) => e.kind), ['replacement-held']);
  const healed = decide(config(), memory, observation([...warmedPool(9, 8), unhealthy('sick0', 130_000)], { nowMs: NOW + 15_000 }));
  assert.deepEqual(healed.decision.events.map((e) => e.kind), ['replacement-resumed']);
});

// --- warm-up, metrics outage, stabilization, cooldown, rate limits -----------------------------

test('warm-up: no scale-in while an instance is starting or warming', () => {
  const { decision } = decide(config(), settledMemory(), observation([...warmedPool(4, 2), warming('w')]));
  assert.deepEqual(stages(decision), ['target-tracking 5->1', 'bounds 1->2', 'warm-up 2->5']);
  assert.deepEqual(decision.actions, []);
});

test('metrics outage: stale metrics never cause a scale-in; the outage and its end are events', () => {
  const stale = observation(warmedPool(6, 1), { metrics: poolMetrics({ sampledAtMs: NOW - 60_000 }) });
  const outage = decide(config(), settledMemory(), stale);
  assert.deepEqual(outage.decision.actions, []);
  assert.equal(outage.decision.signals[0]!.vote, 'missing');
  assert.deepEqual(outage.decision.events.map((e) => e.kind), ['metrics-outage']);
  const restored = decide(config(), outage.memory, observation(warmedPool(6, 1), { nowMs: NOW + 15_000 }));
  assert.deepEqual(restored.decision.events.map((e) => e.kind), ['metrics-restored']);
  // The outage's hold is in the stabilization window: no scale-in for another 5 minutes.
  assert.deepEqual(restored.decision.actions, []);
});

test('metrics outage: too few instances reporting still lets the pool scale out, never in', () => {
  const instances = warmedPool(10, 24).map((instance, k) => (k < 3 ? instance : { ...instance, metrics: undefined }));
  const out = decide(config(), settledMemory(), observation(instances));
  assert.equal(out.decision.signals[0]!.partial, true);
  assert.equal(out.decision.desired, 20);
  const low = warmedPool(10, 1).map((instance, k) => (k < 3 ? instance : { ...instance, metrics: undefined }));
  const held = decide(config(), settledMemory(), observation(low));
  assert.equal(held.decision.signals[0]!.vote, 'missing');
  assert.deepEqual(held.decision.actions, []);
});

test('stabilization: scale-in goes no lower than the highest recommendation of the window', () => {
  const memory = { ...settledMemory(), recommendations: [{ atMs: NOW - 200_000, count: 8 }] };
  const held = decide(config(), memory, observation(warmedPool(10, 1)));
  assert.deepEqual(stages(held.decision), ['target-tracking 10->2', 'stabilization 2->8']);
  assert.equal(held.decision.desired, 8);
  const afterWindow = decide(config(), held.memory, later(observation(warmedPool(8, 1)), 100_001));
  // The 8 left the window; the 2 recorded at NOW is the highest now: limited by the scale-in rate.
  assert.equal(afterWindow.decision.recommended, 1);
  assert.equal(afterWindow.decision.desired, 4);
});

test('rate limits and cooldown: scale-in at most half the pool per minute, and not within 30 s of a scaling', () => {
  const limited = decide(config(), settledMemory(), observation(warmedPool(10, 1)));
  assert.deepEqual(stages(limited.decision), ['target-tracking 10->2', 'rate-limit 2->5']);
  const memory = { ...settledMemory(), scalings: [{ atMs: NOW - 10_000, direction: 'out' as const, count: 2 }] };
  const cooling = decide(config(), memory, observation(warmedPool(10, 1)));
  assert.deepEqual(stages(cooling.decision), ['target-tracking 10->2', 'cooldown 2->10']);
});

test('rate limits: scale-out at most ten times the pool (or +4) per period', () => {
  const { decision } = decide(config({ max: 100, hardMaxInstances: 100, runaway: { maxGrowthPerWindow: 100 } }), initialMemory(), observation(warmedPool(2, 800)));
  assert.deepEqual(stages(decision), ['target-tracking 2->200', 'bounds 200->100', 'rate-limit 100->20']);
});

// --- dry run and batch admission ---------------------------------------------------------------

test('dry run: the decision and its actions are recorded, and marked as not to be executed', () => {
  const { decision, memory } = decide(config({ dryRun: true }), initialMemory(), observation(warmedPool(4, 16)));
  assert.equal(decision.dryRun, true);
  assert.equal(launches(decision).length, 4);
  assert.deepEqual(memory.scalings, []);
});

test('batch admission: the sheddable class is admitted only below the configured share of target, and never without metrics', () => {
  const cfg = config({ batchAdmission: { maxUtilizationPercent: 60 } });
  assert.equal(decide(cfg, initialMemory(), observation(warmedPool(4, 4))).decision.admitSheddable, true);
  assert.equal(decide(cfg, initialMemory(), observation(warmedPool(4, 6))).decision.admitSheddable, false);
  assert.equal(decide(cfg, initialMemory(), observation(warmedPool(4, 4), { metrics: undefined })).decision.admitSheddable, false);
  assert.equal(decide(config(), initialMemory(), observation(warmedPool(4, 6))).decision.admitSheddable, true);
});
