// Instance refresh, run against a small world that carries out each decision: every instance is
// replaced, capacity never drops below the share refresh.minHealthyPercent keeps, and a new
// version that fails its checks is rolled back and not tried again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMemory } from '../../src/autoscale/policy/defaults.ts';
import { decide } from '../../src/autoscale/policy/policy.ts';
import type { Decision, PolicyConfig, PolicyMemory } from '../../src/autoscale/policy/types.ts';
import { config, warmedPool, World } from './helpers.ts';

const PERIOD_MS = 15_000;

interface Run {
  decisions: Decision[];
  /** Healthy serving instances observed at each period. */
  healthy: number[];
}

function run(cfg: PolicyConfig, world: World, periods: number): Run {
  let memory: PolicyMemory = initialMemory();
  const decisions: Decision[] = [];
  const healthy: number[] = [];
  for (let k = 0; k < periods; k++) {
    const seen = world.observe();
    healthy.push(seen.instances.filter((i) => i.healthy && i.readyAtMs !== undefined && i.drainingSinceMs === undefined).length);
    const result = decide(cfg, memory, seen);
    memory = result.memory;
    decisions.push(result.decision);
    world.apply(result.decision);
    world.advance(PERIOD_MS);
  }
  return { decisions, healthy };
}

const events = (decisions: Decision[]) => decisions.flatMap((d) => d.events.map((e) => e.kind));

test('a new launch version replaces every instance, a batch of 10 % at a time, never dropping below the desired count', () => {
  const world = new World(warmedPool(10, 8), 80);
  world.launchVersion = 'v2';
  const { decisions, healthy } = run(config(), world, 60);
  assert.deepEqual(world.instances.filter((i) => i.drainingSinceMs === undefined).map((i) => i.launchVersion), Array(10).fill('v2'));
  assert.deepEqual(events(decisions), ['refresh-started', 'refresh-finished']);
  assert.ok(Math.min(...healthy) >= 10, `healthy instances dipped to ${Math.min(...healthy)}`);
  const batches = decisions.map((d) => d.actions.filter((a) => a.kind === 'launch' && a.reason === 'refresh').length).filter((n) => n > 0);
  assert.deepEqual(batches, Array(10).fill(1));
});

test('without room to surge (at the hard ceiling), outdated instances are drained first, keeping 90 % healthy', () => {
  const world = new World(warmedPool(10, 8), 80);
  world.launchVersion = 'v2';
  const { decisions, healthy } = run(config({ max: 10, hardMaxInstances: 10 }), world, 80);
  assert.deepEqual(world.instances.filter((i) => i.drainingSinceMs === undefined).map((i) => i.launchVersion), Array(10).fill('v2'));
  assert.ok(Math.min(...healthy) >= 9, `healthy instances dipped to ${Math.min(...healthy)}`);
  assert.ok(world.instances.length <= 10);
  assert.ok(decisions.some((d) => d.steps.some((s) => s.stage === 'refresh' && /no room to surge/.test(s.reason))));
});

test('a new version that never becomes ready is rolled back, and not tried again while the launch version stays', () => {
  const world = new World(warmedPool(10, 8), 80);
  world.launchVersion = 'v2';
  world.failingVersions.add('v2');
  const { decisions, healthy } = run(config({ refresh: { readyTimeoutMs: 60_000 } }), world, 40);
  assert.deepEqual(events(decisions), ['refresh-started', 'refresh-rolled-back']);
  assert.deepEqual(world.instances.filter((i) => i.drainingSinceMs === undefined).map((i) => i.launchVersion), Array(10).fill('v1'));
  const rolledBackAt = decisions.findIndex((d) => d.events.some((e) => e.kind === 'refresh-rolled-back'));
  const v2LaunchesAfter = decisions.slice(rolledBackAt).flatMap((d) => d.actions).filter((a) => a.kind === 'launch' && a.launchVersion === 'v2');
  assert.deepEqual(v2LaunchesAfter, []);
  assert.ok(Math.min(...healthy) >= 10);
});
