// Envoy's gradient controller, driven by synthetic samples, with every limit computed by hand:
//   gradient = clamp(minRTT × 1.25 / sampledRTT, 0.5, 2); limit = floor(g × L + sqrt(g × L)).
// And the Gradient2 pitfalls it must avoid: drops lower the limit, identical timeouts cannot push
// it up, and dropped requests' RTTs never become the baseline.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GradientLimiter, type GradientParams } from '../../../src/traffic/shed/gradient-limiter.ts';
import { ScriptedRandom } from './scripted-random.ts';

const PARAMS: GradientParams = {
  minLimit: 4,
  maxLimit: 1000,
  initialLimit: 20,
  sampleWindowMs: 100,
  percentile: 50,
  buffer: 0.25,
  minRttIntervalMs: 10_000,
  minRttJitter: 0.1,
  minRttRequestCount: 5,
  dropBackoffRatio: 0.9,
  maxSamplesPerWindow: 1000,
};

/** Feeds a sample that ends at `endMs`. */
function feed(limiter: GradientLimiter, endMs: number, rttMs: number, inflight: number, dropped = false): void {
  limiter.onSample({ startMs: endMs - rttMs, rttMs, inflight, dropped });
}

/**
 * A limiter past its first minRTT window: minRTT = p50 of [10, 10, 10, 11, 12] = 10 ms, measured by
 * t = 51; the limit returns to initialLimit and the first sample window starts at 51. The next
 * minRTT window is due at 51 + 10,000 + jitter, jitter = floor(0.5 × ceil(10,000 × 0.1)) = 500 ms.
 */
function measured(params: GradientParams = PARAMS): GradientLimiter {
  const limiter = new GradientLimiter(params, new ScriptedRandom([0.5]), 0);
  assert.equal(limiter.limit, 4, 'a minRTT window pins the limit to minLimit, and the controller starts in one');
  feed(limiter, 10, 10, 1);
  feed(limiter, 20, 10, 1);
  feed(limiter, 30, 10, 1);
  feed(limiter, 40, 11, 1);
  assert.ok(limiter.measuringMinRtt);
  feed(limiter, 51, 12, 1);
  assert.equal(limiter.measuringMinRtt, false);
  assert.equal(limiter.minRttMs, 10);
  assert.equal(limiter.limit, params.initialLimit);
  return limiter;
}

test('minRTT ignores dropped samples and samples of requests started before the window', () => {
  const limiter = new GradientLimiter(PARAMS, new ScriptedRandom([0.5]), 100);
  limiter.onSample({ startMs: 90, rttMs: 30, inflight: 1, dropped: false }); // started before the window: ignored
  for (let i = 0; i < 3; i++) feed(limiter, 101 + i, 1, 1, true); // three fast failures: ignored
  for (let i = 0; i < 4; i++) feed(limiter, 120 + i * 10, 10, 1);
  assert.ok(limiter.measuringMinRtt, 'four counted samples of five: still measuring');
  feed(limiter, 170, 10, 1);
  // Had the drops counted, the window would have closed at the fifth sample with p50 of
  // [1, 1, 1, 10, 10] = 1 ms, a baseline no healthy request could meet.
  assert.equal(limiter.minRttMs, 10);
});

test('sample windows move the limit by the gradient plus sqrt headroom', () => {
  const limiter = measured();
  // Window 1 [51, 151): p50 of [10, 10, 12] = 10; g = 12.5 / 10 = 1.25; 20 × 1.25 = 25; 25 + 5 = 30.
  feed(limiter, 60, 10, 20);
  feed(limiter, 70, 10, 20);
  feed(limiter, 80, 12, 20);
  assert.equal(limiter.limit, 20, 'the window has not closed yet');
  feed(limiter, 151, 10, 20); // closes window 1 and opens window 2 with itself
  assert.equal(limiter.limit, 30);
  assert.equal(limiter.sampledRttMs, 10);
  assert.equal(limiter.gradient, 1.25);
  // Window 2 [151, 251): p50 of [10, 20, 20] = 20; g = 12.5 / 20 = 0.625;
  // 30 × 0.625 = 18.75; 18.75 + sqrt(18.75) = 18.75 + 4.33 = 23.08 → 23.
  feed(limiter, 160, 20, 30);
  feed(limiter, 170, 20, 30);
  feed(limiter, 251, 20, 30);
  assert.equal(limiter.limit, 23);
  assert.equal(limiter.gradient, 0.625);
  // Window 3 [251, 351): p50 of [20, 100, 100] = 100; g = 12.5 / 100 = 0.125, clamped to 0.5;
  // 23 × 0.5 = 11.5; 11.5 + 3.39 = 14.89 → 14.
  feed(limiter, 300, 100, 23);
  feed(limiter, 350, 100, 23);
  feed(limiter, 351, 10, 14);
  assert.equal(limiter.limit, 14);
  assert.equal(limiter.gradient, 0.5);
  // Window 4 [351, 451): p50 of [10, 2, 2] = 2; g = 6.25, clamped to 2; 14 × 2 = 28; 28 + 5.29 → 33.
  feed(limiter, 360, 2, 14);
  feed(limiter, 370, 2, 14);
  feed(limiter, 451, 10, 33);
  assert.equal(limiter.limit, 33);
});

test('drops lower the limit, even when latency looks healthy, and their RTTs are not sampled', () => {
  const limiter = measured();
  // Window 1 [51, 151): [10, 10] and a fast failure (1 ms, dropped): p50 of the successes = 10;
  // g = 1.25, but a window with drops keeps at most 0.9 of the limit, without headroom:
  // floor(20 × min(1.25, 0.9)) = 18. (Gradient2 would ignore the drop: 20 × 1 + queue → up.)
  feed(limiter, 60, 10, 20);
  feed(limiter, 70, 1, 20, true);
  feed(limiter, 80, 10, 20);
  feed(limiter, 151, 100, 20, true); // closes window 1; a drop in window 2
  assert.equal(limiter.limit, 18);
  assert.equal(limiter.sampledRttMs, 10, 'the 1 ms of the dropped request is not the sampled RTT');
  // Window 2 [151, 251): drops only: floor(18 × 0.9 = 16.2) = 16.
  feed(limiter, 200, 100, 18, true);
  feed(limiter, 251, 100, 18, true);
  assert.equal(limiter.limit, 16);
  // Window 3: a drop with a gradient below 0.9 takes the gradient: p50 [30] → g = 12.5 / 30 = 0.4167,
  // clamped to 0.5; floor(16 × min(0.5, 0.9)) = 8.
  feed(limiter, 300, 30, 16);
  feed(limiter, 351, 100, 16, true);
  assert.equal(limiter.limit, 8);
});

test('identical timeout latencies drive the limit down to minLimit, then re-measure minRTT, never up', () => {
  const limiter = measured();
  // Every request times out at exactly 1,000 ms. Gradient2 sees zero variance and grows to its
  // maximum; here each window of drops keeps 0.9 of the limit: 20, 18, 16, 14, 12, 10, 9, 8, 7, 6, 5, 4.
  const limits: number[] = [];
  let endMs = 1051;
  for (let window = 0; window < 11; window++, endMs += 100) {
    feed(limiter, endMs, 1000, limiter.limit, true);
    limits.push(limiter.limit);
  }
  assert.deepEqual(limits, [20, 18, 16, 14, 12, 10, 9, 8, 7, 6, 5]);
  // Windows that set minLimit over minLimit: the first brings 5 → 4, then five at 4 → a new minRTT window.
  for (let window = 0; window < 6; window++, endMs += 100) feed(limiter, endMs, 1000, 4, true);
  assert.equal(limiter.limit, 4);
  assert.ok(limiter.measuringMinRtt, 'five consecutive windows at minLimit trigger a minRTT measurement, as Envoy');
  for (let i = 0; i < 100; i++, endMs += 10) feed(limiter, endMs, 1000, 4, true);
  assert.ok(limiter.measuringMinRtt, 'timeouts never complete the measurement');
  assert.equal(limiter.limit, 4);
});

test('a limit that is not in use may fall but not rise', () => {
  const limiter = measured();
  // [10, 10]: g = 1.25 would give 20 × 1.25 + 5 = 30, but at most 3 in flight (3 × 2 < 20): stays 20.
  feed(limiter, 60, 10, 3);
  feed(limiter, 70, 10, 3);
  feed(limiter, 151, 40, 3);
  assert.equal(limiter.limit, 20);
  // [40, 40]: g = 12.5 / 40 = 0.3125 → 0.5; 10 + 3.16 → 13: falling is allowed while idle.
  feed(limiter, 200, 40, 3);
  feed(limiter, 251, 40, 3);
  assert.equal(limiter.limit, 13);
});

test('minRTT is measured again after the interval plus jitter, and the limit returns afterwards', () => {
  const limiter = measured();
  feed(limiter, 60, 10, 20);
  feed(limiter, 151, 10, 20); // window 1: [10] → 20 × 1.25 = 25 + 5 = 30
  assert.equal(limiter.limit, 30);
  feed(limiter, 10_550, 10, 30); // closes window 2 ([10] → 37.5 + 6.12 → 43); the minRTT window is due at 10,551
  assert.equal(limiter.measuringMinRtt, false);
  assert.equal(limiter.limit, 43);
  feed(limiter, 10_551, 10, 30); // due: enters the window; this sample started before it and is ignored
  assert.ok(limiter.measuringMinRtt);
  assert.equal(limiter.limit, 4);
  for (let i = 1; i <= 5; i++) feed(limiter, 10_551 + i * 20, 20, 4);
  assert.equal(limiter.minRttMs, 20, 'the service got slower: the new baseline is 20 ms');
  assert.equal(limiter.limit, 43, 'the limit returns to its value before the window');
});

test('a window sample overflow keeps a bounded reservoir', () => {
  const limiter = measured({ ...PARAMS, maxSamplesPerWindow: 3 });
  // Six samples of 10 ms into a 3-slot reservoir: whichever are kept, p50 = 10 → g = 1.25 → 30.
  for (let i = 0; i < 6; i++) feed(limiter, 60 + i, 10, 20);
  feed(limiter, 151, 10, 20);
  assert.equal(limiter.limit, 30);
});

test('a disturbed minRTT follows sampledRTT down, from windows of at least 10 successes', () => {
  const limiter = new GradientLimiter(PARAMS, new ScriptedRandom([0.5]), 0);
  for (let i = 1; i <= 5; i++) feed(limiter, i * 50, 50, 1); // a start-up storm: minRTT 50 ms
  assert.equal(limiter.minRttMs, 50);
  // Window [250, 350): 9 successes of 20 ms, too few to judge: g = 62.5 / 20 = 3.1 → 2: 40 + 6.3 → 46.
  for (let i = 0; i < 9; i++) feed(limiter, 260 + i, 20, 20);
  feed(limiter, 350, 20, 46);
  assert.equal(limiter.minRttMs, 50);
  assert.equal(limiter.limit, 46);
  // Window [350, 450): 12 successes of 20 ms (the closer of 350 included): minRTT becomes 20;
  // g = 25 / 20 = 1.25: 46 × 1.25 = 57.5; 57.5 + 7.58 → 65. (With minRTT 50: 92 + 9.6 → 101.)
  for (let i = 0; i < 11; i++) feed(limiter, 360 + i, 20, 46);
  feed(limiter, 450, 20, 65);
  assert.equal(limiter.minRttMs, 20);
  assert.equal(limiter.limit, 65);
});
