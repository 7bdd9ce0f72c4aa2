// The soak benchmark's analysis (bench/soak-analysis.ts), not its load: a steady series with noise is
// flat, a leak is seen by both the slope and the decile medians, warm-up samples and unreachable
// values are left out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { growthAfterWarmup, isFlat, median, slopePerHour, type Sample } from '../../bench/soak-analysis.ts';

const MINUTE_MS = 60_000;
const tolerance = { maxGrowthPercent: 10, maxSlopePercentPerHour: 20 };

/** One sample every 5 s for `minutes`, valued by `at(ms)`. */
function series(minutes: number, at: (ms: number) => number): Sample[] {
  return Array.from({ length: (minutes * MINUTE_MS) / 5000 + 1 }, (_, i) => ({ atMs: i * 5000, value: at(i * 5000) }));
}

test('median and slope: exact on simple inputs', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  // 100 bytes per minute is 6000 per hour.
  assert.ok(Math.abs(slopePerHour(series(10, (ms) => 1000 + (ms / MINUTE_MS) * 100)) - 6000) < 1e-6);
  assert.equal(slopePerHour([{ atMs: 0, value: 5 }]), 0);
});

test('a steady series with a sawtooth (compaction, GC) after warm-up is flat; the warm-up fill is not judged', () => {
  const steady = series(60, (ms) => (ms < 5 * MINUTE_MS ? (ms / (5 * MINUTE_MS)) * 100e6 : 100e6 + ((ms / 5000) % 12) * 1e6));
  const growth = growthAfterWarmup(steady, 5 * MINUTE_MS)!;
  assert.ok(Math.abs(growth.growthPercent) < 10, `growth ${growth.growthPercent}%`);
  assert.ok(isFlat(growth, tolerance));
  const withFill = growthAfterWarmup(steady, 0)!;
  assert.equal(isFlat(withFill, tolerance), false, 'judged from the start, the fill looks like growth');
});

test('a leak of 1 MB per minute on 100 MB is not flat, by slope and by deciles', () => {
  const leaking = series(60, (ms) => 100e6 + (ms / MINUTE_MS) * 1e6);
  const growth = growthAfterWarmup(leaking, 10 * MINUTE_MS)!;
  assert.ok(growth.slopePerHour > 59e6 && growth.slopePerHour < 61e6);
  assert.ok(growth.lastDecileMedian > growth.firstDecileMedian);
  assert.equal(isFlat(growth, tolerance), false);
});

test('unreachable values (NaN) are left out; no samples after warm-up gives no figures', () => {
  const gappy = series(10, (ms) => (ms % 10_000 === 0 ? Number.NaN : 50));
  const growth = growthAfterWarmup(gappy, 0)!;
  assert.equal(growth.samples, 60);
  assert.equal(growth.growthPercent, 0);
  assert.equal(growthAfterWarmup(gappy, 11 * MINUTE_MS), undefined);
  assert.equal(growthAfterWarmup(series(10, () => Number.NaN), 0), undefined);
});
