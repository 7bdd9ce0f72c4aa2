// The simulated instance: latency and in-flight requests rise with utilization, the shedder caps
// in-flight requests at its limit, and the tail quantiles are ordered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admissionLimit, inflightAt, latencyFactor, latencyQuantileMs, slowFraction } from '../../src/autoscale/sim/pool-model.ts';

test('latency is flat at low utilization and climbs steeply near saturation', () => {
  assert.ok(latencyFactor(0.3, 8) < 1.01);
  const factors = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99].map((u) => latencyFactor(u, 8));
  for (let k = 1; k < factors.length; k++) assert.ok(factors[k]! > factors[k - 1]!);
  assert.ok(factors[5]! > 10);
  assert.equal(latencyFactor(1, 8), Number.POSITIVE_INFINITY);
});

test('the shedder admits up to the utilization where in-flight reaches its limit', () => {
  const limit = admissionLimit({ workers: 8, maxInflight: 16 });
  assert.ok(limit > 0.85 && limit < 0.95, `limit ${limit}`);
  assert.ok(Math.abs(inflightAt(limit, 8) - 16) < 1e-6);
});

test('quantiles are ordered and the share of slow requests falls with headroom', () => {
  for (const u of [0.2, 0.6, 0.85, 0.93]) {
    const p50 = latencyQuantileMs(u, 8, 50, 0.5);
    const p95 = latencyQuantileMs(u, 8, 50, 0.95);
    const p99 = latencyQuantileMs(u, 8, 50, 0.99);
    assert.ok(50 <= p50 && p50 <= p95 && p95 <= p99, `${u}: ${p50} ${p95} ${p99}`);
  }
  assert.ok(slowFraction(0.5, 8, 50, 250) < 0.001);
  assert.ok(slowFraction(0.93, 8, 50, 250) > 0.01);
  assert.equal(slowFraction(0.1, 8, 300, 250), 1);
});
