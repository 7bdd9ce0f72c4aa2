// Reconciliation (pure): the provider's list decides what exists, the store's records keep what the
// autoscaler learned, the metrics sample moves readiness and drains on. And the store records'
// parsers, which refuse what someone typed by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile, type ListedInstance, type PoolSample } from '../../src/autoscale/state/reconcile.ts';
import { parseActionRecord, parseFreezeValue, parseInstanceState, parsePolicyMemory, type InstanceState } from '../../src/autoscale/state/records.ts';
import { initialMemory } from '../../src/autoscale/policy/defaults.ts';

const NOW = 1_000_000;

function listed(id: string, port: number): ListedInstance {
  return { id, address: `127.0.0.1:${port}`, launchVersion: 'v1', launchedAtMs: NOW - 60_000 };
}

function recorded(id: string, port: number, extra: Partial<InstanceState> = {}): InstanceState {
  return { ...listed(id, port), healthy: false, launchRequestId: `web/1/launch/${id}`, ...extra };
}

function sample(backends: PoolSample['backends']): PoolSample {
  return { sampledAtMs: NOW - 500, pool: { shedPerSecond: 1, errorRatio: 0, latencyMs: { mean: 5, p50: 4, p95: 9, p99: 12 }, external: {} }, backends };
}

test('listed and recorded: the record is kept; listed only: adopted; recorded only: gone', () => {
  const result = reconcile(NOW, [recorded('a', 1), recorded('gone', 3)], [listed('a', 1), listed('new', 2)], undefined);
  assert.deepEqual(result.states.map((s) => s.id), ['a', 'new']);
  assert.equal(result.states[0]!.launchRequestId, 'web/1/launch/a', 'what the store knew is kept');
  assert.deepEqual(result.changed.map((s) => s.id), ['new'], 'an unchanged record is not rewritten');
  assert.deepEqual(result.removed.map((s) => s.id), ['gone']);
  assert.deepEqual(result.events.map((e) => `${e.kind} ${e.instanceId}`), ['instance-adopted new', 'instance-gone gone']);
  assert.equal(result.metrics, undefined, 'no sample: no metrics');
  assert.deepEqual(result.instances.map((i) => [i.id, i.healthy, i.readyAtMs]), [['a', false, undefined], ['new', false, undefined]]);
});

test('a recent launch the provider does not list yet is kept within the grace; after it, it is gone', () => {
  const fresh = recorded('fresh', 1, { launchedAtMs: NOW - 5_000 });
  const kept = reconcile(NOW, [fresh], [], undefined, { listGraceMs: 30_000 });
  assert.deepEqual(kept.states.map((s) => s.id), ['fresh']);
  assert.deepEqual(kept.instances.map((i) => i.id), ['fresh'], 'it counts as capacity: no duplicate launch');
  assert.deepEqual(kept.removed, []);
  assert.deepEqual(reconcile(NOW + 30_000, [fresh], [], undefined, { listGraceMs: 30_000 }).removed.map((s) => s.id), ['fresh']);
  assert.deepEqual(reconcile(NOW, [fresh], [], undefined).removed.map((s) => s.id), ['fresh'], 'no grace for an exact list');
});

test('health verdicts: ready on the first pass, failing from the first failure after that, recovered; no verdict changes nothing', () => {
  let states = [recorded('a', 1), recorded('b', 2)];
  const step = (backends: PoolSample['backends'], at = NOW) => {
    const result = reconcile(at, states, [listed('a', 1), listed('b', 2)], sample(backends));
    states = result.states;
    return result;
  };
  let result = step([{ address: '127.0.0.1:1', healthy: true, inflight: 2, requestsPerSecond: 20 }, { address: '127.0.0.1:2', healthy: false }]);
  assert.deepEqual(result.events.map((e) => `${e.kind} ${e.instanceId}`), ['instance-ready a']);
  assert.equal(states[0]!.readyAtMs, NOW);
  assert.equal(states[1]!.readyAtMs, undefined, 'never ready: starting, not failing');
  assert.equal(states[1]!.failingSinceMs, undefined);
  assert.deepEqual(result.instances[0]!.metrics, { sampledAtMs: NOW - 500, inflight: 2, requestsPerSecond: 20 });
  assert.deepEqual(result.metrics, { sampledAtMs: NOW - 500, shedPerSecond: 1, errorRatio: 0, latencyMs: { mean: 5, p50: 4, p95: 9, p99: 12 }, external: {} });

  result = step([{ address: '127.0.0.1:1', healthy: false }], NOW + 1_000);
  assert.deepEqual(result.events.map((e) => `${e.kind} ${e.instanceId}`), ['instance-failing a']);
  assert.equal(states[0]!.failingSinceMs, NOW + 1_000);
  assert.equal(result.instances[0]!.healthy, false);

  result = step([], NOW + 2_000);
  assert.deepEqual(result.events, [], 'no verdict: nothing moves');
  assert.equal(states[0]!.failingSinceMs, NOW + 1_000);

  result = step([{ address: '127.0.0.1:1', healthy: true }], NOW + 3_000);
  assert.deepEqual(result.events.map((e) => `${e.kind} ${e.instanceId}`), ['instance-recovered a']);
  assert.equal(states[0]!.failingSinceMs, undefined);
  assert.equal(states[0]!.readyAtMs, NOW, 'readiness is when it first passed');
});

test('a draining instance is drained once nothing is in flight; unknown in-flight is not zero', () => {
  const draining = recorded('a', 1, { readyAtMs: NOW - 50_000, healthy: true, drainingSinceMs: NOW - 2_000 });
  assert.equal(reconcile(NOW, [draining], [listed('a', 1)], sample([{ address: '127.0.0.1:1', healthy: true }])).states[0]!.drained, undefined);
  assert.equal(reconcile(NOW, [draining], [listed('a', 1)], sample([{ address: '127.0.0.1:1', inflight: 3 }])).states[0]!.drained, undefined);
  const result = reconcile(NOW, [draining], [listed('a', 1)], sample([{ address: '127.0.0.1:1', inflight: 0 }]));
  assert.equal(result.states[0]!.drained, true);
  assert.deepEqual(result.instances[0], { id: 'a', launchedAtMs: NOW - 60_000, launchVersion: 'v1', healthy: true, readyAtMs: NOW - 50_000, drainingSinceMs: NOW - 2_000, drained: true });
  assert.deepEqual(result.events.map((e) => e.kind), ['instance-drained']);
});

test('records from the store are checked field by field', () => {
  assert.ok(parseInstanceState(JSON.stringify(recorded('a', 1)), 'k').ok);
  assert.deepEqual(parseInstanceState('{', 'k'), { ok: false, problem: 'instance record k is not JSON' });
  assert.deepEqual(parseInstanceState('[]', 'k'), { ok: false, problem: 'instance record k is not a JSON object' });
  assert.deepEqual(parseInstanceState(JSON.stringify({ ...recorded('a', 1), launchedAtMs: 'soon' }), 'k'), { ok: false, problem: 'instance record k: launchedAtMs must be a number' });
  assert.deepEqual(parseInstanceState(JSON.stringify({ id: 'a' }), 'k'), { ok: false, problem: 'instance record k: address is missing' });
  assert.equal((parseActionRecord(JSON.stringify({ kind: 'explode', requestId: 'r', fencingToken: '1', leader: 'x', startedAtMs: 1 }), 'k') as { problem: string }).problem, 'action record k: kind must be launch or terminate');
  assert.ok(parsePolicyMemory(JSON.stringify(initialMemory()), 'k').ok);
  assert.deepEqual(parsePolicyMemory(JSON.stringify({ ...initialMemory(), scalings: {} }), 'k'), { ok: false, problem: 'policy memory k: scalings must be an array' });
});

test('a freeze value: the CLI\'s JSON, or any text an operator wrote with etcdctl', () => {
  assert.deepEqual(parseFreezeValue('{"by":"alice","reason":"db migration","atMs":5}'), { by: 'alice', reason: 'db migration', atMs: 5 });
  assert.deepEqual(parseFreezeValue('incident 4711, do not scale'), { by: 'unknown', reason: 'incident 4711, do not scale', atMs: 0 });
  assert.deepEqual(parseFreezeValue(''), { by: 'unknown', reason: '(no reason given)', atMs: 0 });
  assert.deepEqual(parseFreezeValue('{"reason":"no by"}'), { by: 'unknown', reason: '{"reason":"no by"}', atMs: 0 });
});
