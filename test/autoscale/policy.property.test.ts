// Properties of the policy that hold for any pool, any metrics and any configuration: the safety
// rules are invariants, not just the outcome of the scripted cases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialMemory, policyConfig } from '../../src/autoscale/policy/defaults.ts';
import { decide } from '../../src/autoscale/policy/policy.ts';
import type { Decision, InstanceObservation, PolicyConfig, PolicyMemory, PoolObservation } from '../../src/autoscale/policy/types.ts';
import { NOW } from './helpers.ts';

const configArbitrary: fc.Arbitrary<PolicyConfig> = fc
  .record({
    min: fc.integer({ min: 1, max: 5 }),
    extra: fc.integer({ min: 0, max: 25 }),
    ceilingExtra: fc.integer({ min: 0, max: 10 }),
    budget: fc.option(fc.integer({ min: 100, max: 600 }), { nil: undefined }),
    latency: fc.boolean(),
    dryRun: fc.boolean(),
  })
  .map(({ min, extra, ceilingExtra, budget, latency, dryRun }) =>
    policyConfig({
      min,
      max: min + extra,
      hardMaxInstances: min + extra + ceilingExtra,
      target: latency ? { inflightPerInstance: 8, p95LatencyMs: 200 } : { inflightPerInstance: 8 },
      dependencies: budget === undefined ? [] : [{ name: 'db', costPerInstance: 20, budget }],
      dryRun,
    }),
  );

const instanceArbitrary = (index: number): fc.Arbitrary<InstanceObservation> =>
  fc
    .record({
      state: fc.constantFrom('warmed', 'warming', 'starting', 'unhealthy', 'draining', 'drained'),
      ageMs: fc.integer({ min: 1_000, max: 3_600_000 }),
      inflight: fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: undefined }),
      rps: fc.double({ min: 0, max: 500, noNaN: true }),
      metricsAgeMs: fc.integer({ min: 0, max: 90_000 }),
      version: fc.constantFrom('v1', 'v1', 'v0'),
    })
    .map(({ state, ageMs, inflight, rps, metricsAgeMs, version }) => {
      const instance: InstanceObservation = { id: `i${index}`, launchedAtMs: NOW - ageMs, launchVersion: version, healthy: state !== 'starting' && state !== 'unhealthy' };
      if (state !== 'starting') instance.readyAtMs = state === 'warming' ? NOW - 2_000 : NOW - Math.max(0, ageMs - 1_000);
      if (state === 'unhealthy') instance.failingSinceMs = NOW - ageMs / 2;
      if (state === 'draining' || state === 'drained') {
        instance.drainingSinceMs = NOW - 5_000;
        instance.drained = state === 'drained';
      }
      if (inflight !== undefined && state !== 'starting') instance.metrics = { sampledAtMs: NOW - metricsAgeMs, inflight, requestsPerSecond: rps };
      return instance;
    });

const observationArbitrary: fc.Arbitrary<PoolObservation> = fc
  .record({
    count: fc.integer({ min: 0, max: 30 }),
    metrics: fc.option(
      fc.record({
        ageMs: fc.integer({ min: 0, max: 90_000 }),
        shed: fc.double({ min: 0, max: 500, noNaN: true }),
        errors: fc.double({ min: 0, max: 0.5, noNaN: true }),
        p95: fc.double({ min: 1, max: 2_000, noNaN: true }),
      }),
      { nil: undefined },
    ),
    freeze: fc.constantFrom('none', 'none', 'none', 'global', 'pool'),
    dependencyHealthy: fc.boolean(),
    launchVersion: fc.constantFrom('v1', 'v1', 'v2'),
  })
  .chain((shape) =>
    fc.tuple(...Array.from({ length: shape.count }, (_, k) => instanceArbitrary(k))).map((instances): PoolObservation => ({
      nowMs: NOW,
      launchVersion: shape.launchVersion,
      instances,
      metrics: shape.metrics === undefined ? undefined : {
        sampledAtMs: NOW - shape.metrics.ageMs,
        shedPerSecond: shape.metrics.shed,
        errorRatio: shape.metrics.errors,
        latencyMs: { mean: shape.metrics.p95 / 2, p50: shape.metrics.p95 / 2, p95: shape.metrics.p95, p99: shape.metrics.p95 * 1.5 },
        external: {},
      },
      freeze: shape.freeze === 'none' ? {} : { [shape.freeze]: { by: 'test', reason: 'property', atMs: NOW } },
      dependencyHealthy: { db: shape.dependencyHealthy },
      localTime: {},
    })),
  );

const memoryArbitrary: fc.Arbitrary<PolicyMemory> = fc.constantFrom(
  initialMemory(),
  { ...initialMemory(), recommendations: [{ atMs: NOW - 86_400_000, count: 0 }] },
);

const caseArbitrary = fc.record({ config: configArbitrary, observation: observationArbitrary, memory: memoryArbitrary });

const actionsOf = (decision: Decision, kind: 'launch' | 'drain' | 'terminate') => decision.actions.filter((a) => a.kind === kind);

test('frozen means no action of any kind', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const { decision } = decide(config, memory, observation);
    if (observation.freeze.global !== undefined || observation.freeze.pool !== undefined) assert.deepEqual(decision.actions, []);
  }), { numRuns: 300 });
});

test('drains name serving instances, terminates name draining ones, each at most once', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const { decision } = decide(config, memory, observation);
    const byId = new Map(observation.instances.map((i) => [i.id, i]));
    const ids = decision.actions.flatMap((a) => (a.kind === 'launch' ? [] : [a.instanceId]));
    assert.equal(new Set(ids).size, ids.length);
    for (const action of actionsOf(decision, 'drain')) assert.equal(byId.get(action.kind === 'drain' ? action.instanceId : '')?.drainingSinceMs, undefined);
    for (const action of actionsOf(decision, 'terminate')) assert.notEqual(byId.get(action.kind === 'terminate' ? action.instanceId : '')?.drainingSinceMs, undefined);
  }), { numRuns: 300 });
});

test('launches never take the pool past the hard ceiling or a dependency budget, draining instances included', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const { decision } = decide(config, memory, observation);
    const launched = actionsOf(decision, 'launch').length;
    if (launched === 0) return;
    const budgetMax = config.dependencies.length === 0 ? Infinity : Math.floor(config.dependencies[0]!.budget / 20);
    assert.ok(observation.instances.length + launched <= Math.min(config.hardMaxInstances, budgetMax));
  }), { numRuns: 300 });
});

test('the last healthy serving instance is never drained', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const { decision } = decide(config, memory, observation);
    const healthy = observation.instances.filter((i) => i.drainingSinceMs === undefined && i.readyAtMs !== undefined && i.healthy);
    if (healthy.length === 0) return;
    const drained = new Set(actionsOf(decision, 'drain').map((a) => (a.kind === 'drain' ? a.instanceId : '')));
    assert.ok(healthy.some((i) => !drained.has(i.id)));
  }), { numRuns: 300 });
});

test('a scale-in never takes the pool below its minimum, and never happens on missing metrics', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const { decision } = decide(config, memory, observation);
    const scaleIns = actionsOf(decision, 'drain').filter((a) => a.reason.startsWith('scale in'));
    if (scaleIns.length === 0) return;
    const serving = observation.instances.filter((i) => i.drainingSinceMs === undefined).length;
    assert.ok(serving - scaleIns.length >= config.min, `${serving} - ${scaleIns.length} < min ${config.min}`);
    const metricsFresh = observation.metrics !== undefined && NOW - observation.metrics.sampledAtMs <= config.metrics.maxAgeMs;
    assert.ok(metricsFresh || serving > config.max, 'scaled in without fresh metrics');
  }), { numRuns: 300 });
});

test('decisions are deterministic, and memory survives a JSON round trip (as it does through the store)', () => {
  fc.assert(fc.property(caseArbitrary, ({ config, observation, memory }) => {
    const first = decide(config, memory, observation);
    const again = decide(config, JSON.parse(JSON.stringify(memory)) as PolicyMemory, JSON.parse(JSON.stringify(observation)) as PoolObservation);
    assert.deepEqual(JSON.parse(JSON.stringify(again.decision)), JSON.parse(JSON.stringify(first.decision)));
    const next = decide(config, JSON.parse(JSON.stringify(first.memory)) as PolicyMemory, { ...observation, nowMs: NOW + 15_000 });
    const direct = decide(config, first.memory, { ...observation, nowMs: NOW + 15_000 });
    assert.deepEqual(JSON.parse(JSON.stringify(next.decision)), JSON.parse(JSON.stringify(direct.decision)));
  }), { numRuns: 200 });
});
