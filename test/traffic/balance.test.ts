// The balancing algorithms, with fixed seeds: exact sequences where the algorithm is deterministic,
// distributions checked against bounds derived from the binomial spread where it is random, and
// fast-check properties for what must hold for every input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { DEFAULT_BALANCER_OPTIONS, LoadBalancer, type BackendSpec, type BalancerOptions } from '../../src/traffic/balance/load-balancer.ts';
import { PeakEwma } from '../../src/traffic/balance/peak-ewma.ts';
import { priorityLoads } from '../../src/traffic/balance/priority-load.ts';
import { RingHashPicker } from '../../src/traffic/balance/ring-hash.ts';
import { slowStartFactor } from '../../src/traffic/balance/slow-start.ts';
import type { BackendLoad, BalanceAlgorithm } from '../../src/traffic/balance/types.ts';
import { SmoothWeightedPicker } from '../../src/traffic/balance/weighted-round-robin.ts';

function backend(id: string, weight = 1, activeRequests = 0): BackendLoad {
  return { id, zone: undefined, priority: 0, configuredWeight: weight, effectiveWeight: weight, activeRequests, activeStartSumMs: 0, latency: new PeakEwma() };
}

function balancer(algorithm: BalanceAlgorithm, specs: BackendSpec[], overrides: Partial<BalancerOptions> = {}, seed = 1): LoadBalancer {
  const lb = new LoadBalancer({ ...DEFAULT_BALANCER_OPTIONS, algorithm, ...overrides }, new SeededRandom(seed));
  lb.setBackends(specs);
  return lb;
}

function countPicks(lb: LoadBalancer, picks: number, nowMs = 0, hashKey?: (i: number) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const picked = lb.pick({ nowMs, hashKey: hashKey?.(i) });
    const id = picked?.id ?? 'none';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** |observed − expected| within `sigmas` binomial standard deviations. */
function assertNear(observed: number, picks: number, share: number, sigmas = 4, label = ''): void {
  const expected = picks * share;
  const sd = Math.sqrt(picks * share * (1 - share));
  assert.ok(Math.abs(observed - expected) <= sigmas * sd + 1, `${label} observed ${observed}, expected ${expected.toFixed(1)} ± ${(sigmas * sd).toFixed(1)}`);
}

const three: BackendSpec[] = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];

test('round robin visits each backend in turn, skipping excluded ones', () => {
  const lb = balancer('round-robin', three);
  const first = [0, 1, 2, 3, 4, 5].map(() => lb.pick({ nowMs: 0 })!.id);
  assert.deepEqual(first.slice(3), first.slice(0, 3), 'the cycle repeats');
  assert.deepEqual([...new Set(first)].sort(), ['a', 'b', 'c']);
  for (let i = 0; i < 6; i++) assert.notEqual(lb.pick({ nowMs: 0, exclude: new Set(['b']) })!.id, 'b');
  assert.equal(lb.pick({ nowMs: 0, exclude: new Set(['a', 'b', 'c']) }), undefined);
});

test("smooth weighted round robin spreads a heavy backend's picks (nginx's 5,1,1 example)", () => {
  const picker = new SmoothWeightedPicker([backend('a', 5), backend('b', 1), backend('c', 1)]);
  const sequence = Array.from({ length: 7 }, () => picker.pick({ nowMs: 0 })!.id).join('');
  assert.equal(sequence, 'aabacaa');
});

test('smooth weighted round robin: every window of total-weight picks gives each backend exactly its weight', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 3 }), (weights, windows) => {
    const picker = new SmoothWeightedPicker(weights.map((w, i) => backend(`b${i}`, w)));
    const total = weights.reduce((sum, w) => sum + w, 0);
    for (let window = 0; window < windows; window++) {
      const counts = new Map<string, number>();
      for (let i = 0; i < total; i++) {
        const id = picker.pick({ nowMs: 0 })!.id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      weights.forEach((w, i) => assert.equal(counts.get(`b${i}`) ?? 0, w));
    }
  }));
});

test('p2c with equal weights spreads uniformly when idle and never picks the busiest of three', () => {
  const lb = balancer('p2c', three);
  const picks = 30_000;
  const counts = countPicks(lb, picks);
  for (const id of ['a', 'b', 'c']) assertNear(counts.get(id) ?? 0, picks, 1 / 3, 4, id);
  lb.get('c')!.activeRequests = 5;
  lb.get('a')!.activeRequests = 1;
  const loaded = countPicks(lb, 3000);
  assert.equal(loaded.get('c') ?? 0, 0, 'the two choices always include a less busy backend than c');
  // a (1 active) loses to b (0) when paired with it; b wins whenever drawn: b ≈ 2/3, a ≈ 1/3.
  assertNear(loaded.get('b') ?? 0, 3000, 2 / 3, 4, 'b');
});

test('p2c with unequal weights follows the weights, divided by (active + 1)^bias', () => {
  const lb = balancer('p2c', [{ id: 'heavy', weight: 3 }, { id: 'light', weight: 1 }]);
  const idle = countPicks(lb, 4000);
  assert.equal(idle.get('heavy'), 3000);
  assert.equal(idle.get('light'), 1000);
  // With 5 requests in flight, heavy's dynamic weight is 3/6 = 0.5 against light's 1/1: 1:2.
  lb.get('heavy')!.activeRequests = 5;
  const busy = countPicks(lb, 3000);
  assert.equal(busy.get('heavy'), 1000);
  assert.equal(busy.get('light'), 2000);
});

test('peak EWMA: a slow observation takes effect at once; fast ones blend in over the decay time', () => {
  const ewma = new PeakEwma(10_000);
  assert.equal(ewma.estimate(0), 0);
  ewma.observe(100, 0);
  assert.equal(ewma.estimate(0), 100);
  ewma.observe(10, 10_000); // one decay time later: keep e^-1 of the old estimate
  const expected = 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1));
  assert.ok(Math.abs(ewma.estimate(10_000) - expected) < 1e-9);
  ewma.observe(500, 10_001);
  assert.equal(ewma.estimate(10_001), 500, 'a peak replaces the estimate');
  assert.ok(ewma.estimate(20_001) < 500 * Math.exp(-0.99), 'reading decays the estimate towards zero');
});

test('ewma sends little to a slow backend and almost nothing to a stalled one', () => {
  const lb = balancer('ewma', three);
  for (const id of ['a', 'b']) lb.get(id)!.latency.observe(1, 0);
  lb.get('c')!.latency.observe(50, 0);
  const counts = countPicks(lb, 3000, 1);
  // Two distinct draws always include a or b, and c loses every pairing.
  assert.equal(counts.get('c') ?? 0, 0);
  // A stall: c's estimate is low, but it holds a request that started 5 s ago.
  const stalled = balancer('ewma', three, {}, 2);
  for (const id of ['a', 'b', 'c']) stalled.get(id)!.latency.observe(2, 5_000);
  stalled.requestStarted(stalled.get('a')!, 4_999); // busy but healthy: two fresh requests
  stalled.requestStarted(stalled.get('a')!, 4_999);
  stalled.requestStarted(stalled.get('c')!, 0);
  const during = countPicks(stalled, 3000, 5_000);
  assert.equal(during.get('c') ?? 0, 0, 'the stalled request\'s age counts as latency');
});

test('ring hash: a key always maps to the same backend, and removing one backend moves only its keys', () => {
  fc.assert(fc.property(fc.integer({ min: 3, max: 10 }), fc.integer({ min: 0, max: 1_000_000 }), (count, seed) => {
    const all = Array.from({ length: count }, (_, i) => backend(`10.0.0.${i}:80`));
    const removed = all[seed % count]!;
    const ring = new RingHashPicker(all, new SeededRandom(seed), { pointsPerWeight: 128, balanceFactor: 0 });
    const smaller = new RingHashPicker(all.filter((b) => b !== removed), new SeededRandom(seed), { pointsPerWeight: 128, balanceFactor: 0 });
    for (let k = 0; k < 200; k++) {
      const hashKey = `user-${seed}-${k}`;
      const before = ring.pick({ nowMs: 0, hashKey })!;
      assert.equal(ring.pick({ nowMs: 0, hashKey }), before);
      if (before !== removed) assert.equal(smaller.pick({ nowMs: 0, hashKey })!.id, before.id);
    }
  }));
});

test('ring hash spreads keys evenly (within 20 % of fair with 128 points per backend) and bounded load walks past a full backend', () => {
  const lb = balancer('hash', [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
  const picks = 20_000;
  const counts = countPicks(lb, picks, 0, (i) => `session-${i}`);
  for (const id of ['a', 'b', 'c', 'd']) {
    const share = (counts.get(id) ?? 0) / picks;
    assert.ok(share > 0.25 * 0.8 && share < 0.25 * 1.2, `${id} got ${share}`);
  }
  const hot = lb.pick({ nowMs: 0, hashKey: 'hot-key' })!;
  // With 12 requests in flight and factor 1.25, each backend's bound is ceil(1.25 × 13 / 4) = 5.
  for (const id of ['a', 'b', 'c', 'd']) lb.get(id)!.activeRequests = 2;
  hot.activeRequests = 6;
  const moved = lb.pick({ nowMs: 0, hashKey: 'hot-key' })!;
  assert.notEqual(moved.id, hot.id);
  hot.activeRequests = 3; // 9 in flight: bound ceil(1.25 × 10 / 4) = 4
  assert.equal(lb.pick({ nowMs: 0, hashKey: 'hot-key' })!.id, hot.id, 'below the bound the key returns home');
});

test('priority load: a level keeps everything down to 1/1.4 healthy, then spills the rest', () => {
  assert.deepEqual(priorityLoads([{ healthy: 3, total: 3 }, { healthy: 3, total: 3 }], 1.4), [100, 0]);
  const [local, remote] = priorityLoads([{ healthy: 2, total: 3 }, { healthy: 3, total: 3 }], 1.4);
  assert.ok(Math.abs(local! - 93.333) < 0.01 && Math.abs(remote! - 6.667) < 0.01);
  assert.deepEqual(priorityLoads([{ healthy: 0, total: 2 }, { healthy: 0, total: 2 }], 1.4), [0, 0]);
  const scaled = priorityLoads([{ healthy: 1, total: 4 }, { healthy: 1, total: 4 }], 1.4);
  assert.ok(Math.abs(scaled[0]! - 50) < 1e-9 && Math.abs(scaled[1]! - 50) < 1e-9, 'loads are scaled up to add up to 100');
});

test('locality: the own zone takes all traffic while healthy and spills over as it fails', () => {
  const specs = [{ id: 'a1', zone: 'a' }, { id: 'a2', zone: 'a' }, { id: 'a3', zone: 'a' }, { id: 'b1', zone: 'b' }, { id: 'b2', zone: 'b' }, { id: 'b3', zone: 'b' }];
  const lb = balancer('round-robin', specs, { localZone: 'a' });
  const healthy = countPicks(lb, 3000);
  assert.equal((healthy.get('a1') ?? 0) + (healthy.get('a2') ?? 0) + (healthy.get('a3') ?? 0), 3000);
  lb.setRoutable('a3', false, 0);
  const picks = 30_000;
  const degraded = countPicks(lb, picks);
  const remote = (degraded.get('b1') ?? 0) + (degraded.get('b2') ?? 0) + (degraded.get('b3') ?? 0);
  assertNear(remote, picks, 1 - 0.9333333, 4, 'spill-over');
  assert.equal(degraded.get('a3') ?? 0, 0);
});

test('panic: below the threshold, every non-draining backend gets traffic, healthy or not', () => {
  const specs = [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }];
  const lb = balancer('round-robin', specs, { panicThresholdPercent: 50 });
  lb.setRoutable('a', false, 0);
  lb.setRoutable('b', false, 0); // 2 of 4 healthy: exactly 50 %, not below
  assert.equal(countPicks(lb, 100).get('a') ?? 0, 0);
  assert.equal(lb.inPanic, false);
  lb.setRoutable('c', false, 0);
  lb.setDraining('d', false);
  const panicked = countPicks(lb, 400);
  assert.equal(lb.inPanic, true);
  for (const id of ['a', 'b', 'c', 'd']) assert.equal(panicked.get(id), 100);
  lb.setDraining('a', true);
  assert.equal(countPicks(lb, 300).get('a') ?? 0, 0, 'a draining backend gets nothing, even in panic');
  const noPanic = balancer('round-robin', specs, { panicThresholdPercent: 0 });
  for (const id of ['a', 'b', 'c', 'd']) noPanic.setRoutable(id, false, 0);
  assert.equal(noPanic.pick({ nowMs: 0 }), undefined, 'with panic off and nothing healthy there is no backend');
});

test('slow start ramps a re-admitted backend from its minimum weight to full over the window', () => {
  const options = { windowMs: 10_000, aggression: 1, minWeightPercent: 10 };
  assert.equal(slowStartFactor(options, 0, 0), 0.1);
  assert.equal(slowStartFactor(options, 0, 5_000), 0.5);
  assert.equal(slowStartFactor(options, 0, 10_000), 1);
  assert.ok(Math.abs(slowStartFactor({ ...options, aggression: 2 }, 0, 2_500) - 0.5) < 1e-12, 'aggression 2: sqrt(0.25)');
  const lb = balancer('weighted-round-robin', [{ id: 'old', weight: 1 }, { id: 'new', weight: 1 }], { slowStart: options });
  lb.setRoutable('new', false, 0);
  lb.setRoutable('new', true, 1_000);
  const shareAt = (nowMs: number) => (countPicks(lb, 1100, nowMs).get('new') ?? 0) / 1100;
  assert.ok(Math.abs(shareAt(1_000) - 0.1 / 1.1) < 0.01);
  assert.ok(Math.abs(shareAt(6_000) - 0.5 / 1.5) < 0.01);
  assert.ok(Math.abs(shareAt(11_000) - 0.5) < 0.01);
  const startup = balancer('weighted-round-robin', [{ id: 'x' }, { id: 'y' }], { slowStart: options });
  startup.setRoutable('y', false, 0);
  startup.setRoutable('y', true, 0, false);
  assert.equal(startup.get('y')!.effectiveWeight, 1, 'start-up verdicts do not ramp');
});

test('every algorithm honours exclusions and returns only routable, non-draining backends', () => {
  fc.assert(fc.property(
    fc.constantFrom<BalanceAlgorithm>('round-robin', 'weighted-round-robin', 'p2c', 'ewma', 'hash'),
    fc.array(fc.record({ routable: fc.boolean(), draining: fc.boolean(), weight: fc.integer({ min: 1, max: 5 }), active: fc.nat(20) }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.nat(7), { maxLength: 3 }),
    fc.integer(),
    (algorithm, shapes, excluded, seed) => {
      const specs = shapes.map((shape, i) => ({ id: `b${i}`, weight: shape.weight }));
      const lb = balancer(algorithm, specs, { panicThresholdPercent: 0 }, seed);
      shapes.forEach((shape, i) => {
        lb.setRoutable(`b${i}`, shape.routable, 0, false);
        lb.setDraining(`b${i}`, shape.draining);
        lb.get(`b${i}`)!.activeRequests = shape.active;
      });
      const exclude = new Set(excluded.map((i) => `b${i}`));
      const allowed = shapes.flatMap((shape, i) => (shape.routable && !shape.draining && !exclude.has(`b${i}`) ? [`b${i}`] : []));
      for (let k = 0; k < 20; k++) {
        const picked = lb.pick({ nowMs: k, hashKey: `k${k}`, exclude });
        if (allowed.length === 0) assert.equal(picked, undefined);
        else assert.ok(picked !== undefined && allowed.includes(picked.id), `${algorithm} picked ${picked?.id}, allowed ${allowed}`);
      }
    },
  ));
});

test('requests started and finished keep the in-flight count and feed the latency estimate', () => {
  const lb = balancer('ewma', three);
  const b = lb.pick({ nowMs: 0 })!;
  lb.requestStarted(b, 100);
  lb.requestStarted(b, 200);
  assert.equal(b.activeRequests, 2);
  lb.requestFinished(b, 100, 150, 50);
  assert.equal(b.activeRequests, 1);
  assert.equal(b.activeStartSumMs, 200);
  assert.equal(b.latency.estimate(150), 50);
  lb.requestFinished(b, 200, 300, undefined);
  assert.throws(() => lb.requestFinished(b, 0, 0, undefined), /bug/);
});
