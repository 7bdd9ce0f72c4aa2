// The live status `concord up` prints: one line a pool, from the dashboard's overview.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Overview, PoolOverview } from '../../src/control/admin-api-types.ts';
import { statusLines } from '../../src/up/status-line.ts';

function backend(address: string, state: PoolOverview['backends'][number]['state']): PoolOverview['backends'][number] {
  return { address, state, weight: 1, slowStartFactor: 1, inflight: 0, latencyEwmaMs: null, lastCheck: null };
}

function overview(pools: PoolOverview[], proxies: Overview['proxies'] = [{ id: 'p', address: '127.0.0.1:8080', requestsTotal: 10, requestsPerSecond: 42.25, p50Ms: 3, p99Ms: 51.4 }]): Overview {
  return { generatedAt: new Date(0).toISOString(), store: { members: [] }, proxies, pools, frozen: { global: false } };
}

const web: PoolOverview = {
  name: 'web', balance: 'p2c',
  backends: [backend('127.0.0.1:9100', 'healthy'), backend('127.0.0.1:9101', 'healthy'), backend('127.0.0.1:9102', 'unhealthy'), backend('127.0.0.1:9103', 'draining')],
  shed: { algorithm: 'gradient', limit: 31.6, inflight: 4, queueLength: 0, rejected: { critical: 0, default: 12, sheddable: 3 }, shedding: true },
  autoscale: { desired: 5, actual: 4, min: 2, max: 8, frozen: false, lastDecisions: [] },
};

test('a pool line counts healthy backends and names the others, with traffic, shedding and instances', () => {
  assert.deepEqual(statusLines(overview([web])), ['web · 2/4 healthy (1 unhealthy, 1 draining) · 42.3 req/s · p99 51 ms · SHEDDING 15 (limit 32) · instances 4 (want 5, 2-8)']);
});

test('a frozen autoscaler (the pool or all pools) is shown; pools without shedding or autoscaling leave those parts out', () => {
  const frozen = overview([{ ...web, autoscale: { ...web.autoscale!, frozen: true } }]);
  assert.match(statusLines(frozen)[0]!, / · FROZEN$/);
  const globally = { ...overview([web]), frozen: { global: true } };
  assert.match(statusLines(globally)[0]!, / · FROZEN$/);
  const plain = overview([{ ...web, name: 'api', shed: null, autoscale: null, backends: [backend('127.0.0.1:9001', 'healthy')] }]);
  assert.deepEqual(statusLines(plain), ['api · 1/1 healthy · 42.3 req/s · p99 51 ms']);
});

test('names are padded to the longest; no proxy and no pools say so', () => {
  const lines = statusLines(overview([web, { ...web, name: 'checkout', shed: null, autoscale: null }], []));
  assert.ok(lines[0]!.startsWith('web      · '));
  assert.ok(lines[1]!.startsWith('checkout · '));
  assert.match(lines[0]!, /no proxy registered/);
  assert.deepEqual(statusLines(overview([])), ['no pools configured (concord config apply FILE) · 42.3 req/s · p99 51 ms']);
  const beforeAnyRequest = overview([], [{ id: 'p', address: 'a', requestsTotal: 0, requestsPerSecond: 0, p50Ms: null, p99Ms: null }]);
  assert.deepEqual(statusLines(beforeAnyRequest), ['no pools configured (concord config apply FILE) · 0.0 req/s · p99 -']);
});
