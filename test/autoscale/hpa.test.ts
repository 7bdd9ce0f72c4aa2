// The HPA-equivalent baseline against the examples the Kubernetes documentation gives
// ("Horizontal Pod Autoscaling": algorithm details, scaling policies, default behavior), so the
// benchmark compares Concord with HPA as documented, not with a straw man.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hpaConfig, hpaDecide, initialHpaMemory, metricReplicas, type HpaConfig, type HpaMemory, type HpaPod } from '../../src/autoscale/hpa/hpa-policy.ts';

/** Pods by metric value; 'missing' has no metric, 'pending' is not running yet. */
function pods(values: (number | 'missing' | 'pending')[]): HpaPod[] {
  return values.map((value, k) => ({
    id: `p${k}`,
    pending: value === 'pending',
    deleting: false,
    metric: typeof value === 'number' ? value : undefined,
  }));
}

const at = (nowMs: number, values: (number | 'missing' | 'pending')[]) => ({ nowMs, currentReplicas: values.length, pods: pods(values) });
const target100 = hpaConfig({ minReplicas: 1, maxReplicas: 100, targetAverageValue: 100 });

test('"if the current metric value is 200m and the desired value is 100m, the number of replicas will be doubled"', () => {
  assert.equal(metricReplicas(target100, at(0, [200, 200, 200])).replicas, 6);
});

test('"if the current value is instead 50m, you will halve the number of replicas" (after the scale-down window)', () => {
  assert.equal(metricReplicas(target100, at(0, [50, 50, 50, 50])).replicas, 2);
  // A new HPA starts its stabilization window with the current count, so it waits 300 s before halving.
  let memory: HpaMemory = initialHpaMemory();
  for (let t = 0; t <= 300_000; t += 15_000) {
    const { decision, memory: next } = hpaDecide(target100, memory, at(t, [50, 50, 50, 50]));
    memory = next;
    assert.equal(decision.desiredReplicas, t < 300_000 ? 4 : 2, `at ${t} ms`);
  }
});

test('"the control plane skips any scaling action if the ratio is sufficiently close to 1.0" (tolerance 0.1)', () => {
  assert.equal(metricReplicas(target100, at(0, Array(10).fill(109))).replicas, 10);
  assert.equal(metricReplicas(target100, at(0, Array(10).fill(91))).replicas, 10);
  assert.equal(metricReplicas(target100, at(0, Array(10).fill(112))).replicas, 12);
});

test('missing metrics count as 100 % of target on a scale-down, dampening it', () => {
  // Usage 0.5 from the two that report; with the missing two at 100 %: 0.75 of 4 pods -> 3.
  assert.equal(metricReplicas(target100, at(0, [50, 50, 'missing', 'missing'])).replicas, 3);
});

test('missing metrics count as 0 % on a scale-up; if that lands within tolerance, nothing changes', () => {
  assert.equal(metricReplicas(target100, at(0, [200, 200, 'missing', 'missing'])).replicas, 4);
  // A reversal (the dampened ratio goes below 1) means no change either.
  assert.equal(metricReplicas(target100, at(0, [150, 150, 'missing', 'missing', 'missing'])).replicas, 5);
});

test('not-yet-ready pods count as 0 % on a scale-up', () => {
  // 2 ready pods at 300 (ratio 3) and 2 pending: (300 + 300 + 0 + 0) / 4 = 1.5 x 4 pods = 6.
  assert.equal(metricReplicas(target100, at(0, [300, 300, 'pending', 'pending'])).replicas, 6);
  // On a scale-down pending pods are simply set aside: 2 ready pods at 50 -> 1.
  assert.equal(metricReplicas(target100, at(0, [50, 50, 'pending', 'pending'])).replicas, 1);
});

test('no metrics from any ready pod: no change (HPA reports an error and does not scale)', () => {
  const { decision } = hpaDecide(target100, initialHpaMemory(), at(0, ['missing', 'missing', 'pending']));
  assert.equal(decision.desiredReplicas, 3);
  assert.match(decision.reason, /did not receive metrics/);
});

test('default scale-up behavior: "4 pods or a 100 % of the currently running replicas will be added every 15 seconds"', () => {
  let memory = initialHpaMemory();
  const counts: number[] = [];
  let replicas = 1;
  for (let t = 0; t <= 45_000; t += 15_000) {
    // A load of 4000 (40 pods' worth) spread over the pods that exist.
    const result = hpaDecide(target100, memory, at(t, Array(replicas).fill(4000 / replicas)));
    memory = result.memory;
    replicas = result.decision.desiredReplicas;
    counts.push(replicas);
  }
  assert.deepEqual(counts, [5, 10, 20, 40]);
});

test('the documented scale-down policies: 80 replicas, Pods 4 and Percent 10 per 60 s, the larger change wins', () => {
  // "during the first step 8 replicas will be reduced. In the next iteration when the number of replicas is 72,
  //  10% of the pods is 7.2 but the number is rounded up to 8 ... When the number of replicas falls below 40 the
  //  first policy (Pods) is applied and 4 replicas will be reduced at a time." The window is set to 0 to isolate the rates.
  const cfg: HpaConfig = hpaConfig({
    minReplicas: 1, maxReplicas: 100, targetAverageValue: 100,
    scaleDown: { stabilizationMs: 0, select: 'max', cooldownMs: 0, rateLimits: [{ type: 'instances', value: 4, periodMs: 60_000 }, { type: 'percent', value: 10, periodMs: 60_000 }] },
  });
  let memory = initialHpaMemory();
  let replicas = 80;
  const counts = [replicas];
  for (let t = 0; replicas > 10 && t < 3_600_000; t += 60_000) {
    const result = hpaDecide(cfg, memory, at(t, Array(replicas).fill(1000 / replicas)));
    memory = result.memory;
    replicas = result.decision.desiredReplicas;
    counts.push(replicas);
  }
  assert.deepEqual(counts, [80, 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]);
});

test('selectPolicy Min: "no more than 5 Pods are removed per minute" with Percent 10 and Pods 5', () => {
  const cfg = hpaConfig({
    minReplicas: 1, maxReplicas: 200, targetAverageValue: 100,
    scaleDown: { stabilizationMs: 0, select: 'min', cooldownMs: 0, rateLimits: [{ type: 'percent', value: 10, periodMs: 60_000 }, { type: 'instances', value: 5, periodMs: 60_000 }] },
  });
  assert.equal(hpaDecide(cfg, initialHpaMemory(), at(0, Array(100).fill(10))).decision.desiredReplicas, 95);
});

test('selectPolicy Disabled turns scale-down off', () => {
  const cfg = hpaConfig({ minReplicas: 1, maxReplicas: 20, targetAverageValue: 100, scaleDown: { stabilizationMs: 0, select: 'disabled', cooldownMs: 0, rateLimits: [] } });
  assert.equal(hpaDecide(cfg, initialHpaMemory(), at(0, Array(10).fill(10))).decision.desiredReplicas, 10);
});

test('the stabilization window: "uses the highest value from the specified interval"', () => {
  let memory = initialHpaMemory();
  const step = (t: number, perPod: number, replicas: number) => {
    const result = hpaDecide(target100, memory, at(t, Array(replicas).fill(perPod)));
    memory = result.memory;
    return result.decision.desiredReplicas;
  };
  assert.equal(step(0, 100, 10), 10); // recommends 10
  assert.equal(step(60_000, 60, 10), 10); // recommends 6: the window still holds 10
  assert.equal(step(200_000, 40, 10), 10); // recommends 4
  assert.equal(step(300_001, 40, 10), 6); // 10 (t = 0) left the window; 6 (t = 60 s) is the highest now
  assert.equal(step(360_001, 40, 6), 4);
});

test('outside min and max the count is brought back first', () => {
  const cfg = hpaConfig({ minReplicas: 3, maxReplicas: 5, targetAverageValue: 100 });
  assert.equal(hpaDecide(cfg, initialHpaMemory(), at(0, [100, 100])).decision.desiredReplicas, 3);
  assert.equal(hpaDecide(cfg, initialHpaMemory(), at(0, Array(8).fill(100))).decision.desiredReplicas, 5);
  assert.equal(hpaDecide(cfg, initialHpaMemory(), at(0, [1000, 1000, 1000])).decision.desiredReplicas, 5);
});
