// The limit algorithms, fed synthetic samples, against limits computed by hand (in the comments).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AimdLimiter } from '../../../src/traffic/shed/aimd-limiter.ts';
import { FixedLimiter, NoLimiter } from '../../../src/traffic/shed/fixed-limiter.ts';
import { log10Step, VegasLimiter } from '../../../src/traffic/shed/vegas-limiter.ts';
import type { Limiter } from '../../../src/traffic/shed/limiter.ts';
import { ScriptedRandom } from './scripted-random.ts';

/** A sample that ends at `endMs`. */
function sample(limiter: Limiter, endMs: number, rttMs: number, inflight: number, dropped = false): number {
  limiter.onSample({ startMs: endMs - rttMs, rttMs, inflight, dropped });
  return limiter.limit;
}

test('fixed and none ignore samples', () => {
  const fixed = new FixedLimiter(7);
  sample(fixed, 10, 5, 7, true);
  assert.equal(fixed.limit, 7);
  assert.equal(new NoLimiter().limit, Number.POSITIVE_INFINITY);
  assert.throws(() => new FixedLimiter(0), /whole number >= 1/);
});

test('AIMD: +1 per success while the limit is in use, ×0.9 rounded down per drop, within the bounds', () => {
  const aimd = new AimdLimiter({ minLimit: 4, maxLimit: 10, initialLimit: 5, backoffRatio: 0.9 });
  assert.equal(sample(aimd, 1, 1, 3), 6, 'in use: 3 × 2 = 6 >= 5, so 5 + 1');
  assert.equal(sample(aimd, 2, 1, 2), 6, 'not in use: 2 × 2 = 4 < 6, so it stays');
  assert.equal(sample(aimd, 3, 1, 3), 7, '3 × 2 = 6 >= 6: 6 + 1');
  assert.equal(sample(aimd, 4, 1, 7, true), 6, 'drop: floor(7 × 0.9 = 6.3)');
  assert.equal(sample(aimd, 5, 1, 6, true), 5, 'floor(5.4)');
  assert.equal(sample(aimd, 6, 1, 5, true), 4, 'floor(4.5)');
  assert.equal(sample(aimd, 7, 1, 4, true), 4, 'floor(3.6) = 3 is below minLimit 4');
  for (let i = 0; i < 20; i++) sample(aimd, 8 + i, 1, 10);
  assert.equal(aimd.limit, 10, 'increases stop at maxLimit');
});

test('Vegas: log10 steps (at least 1) as in Netflix', () => {
  assert.deepEqual([1, 9, 10, 99, 100, 999, 1000].map(log10Step), [1, 1, 1, 1, 2, 2, 3]);
});

test('Vegas: grows fast with no queue, slowly with a small one, shrinks with a long one or a drop', () => {
  // jitter = 0.5 + 0.5 × 0.5 = 0.75: the first probe is due after 0.75 × 30 × 20 = 450 samples.
  const vegas = new VegasLimiter({ minLimit: 1, maxLimit: 1000, initialLimit: 20, smoothing: 1, probeMultiplier: 30 }, new ScriptedRandom([0.5]));
  assert.equal(sample(vegas, 10, 10, 20), 20, 'the first sample sets the no-load RTT (10) and nothing else');
  assert.equal(vegas.minRttMs, 10);
  // queue = ceil(20 × (1 − 10/10)) = 0 <= threshold 1: 20 + beta (6 × 1)
  assert.equal(sample(vegas, 20, 10, 20), 26);
  // queue = ceil(26 × (1 − 10/20)) = 13 > beta 6: 26 − 1
  assert.equal(sample(vegas, 40, 20, 20), 25);
  // queue = ceil(25 × (1 − 10/12)) = ceil(4.17) = 5: between alpha 3 and beta 6, no change
  assert.equal(sample(vegas, 52, 12, 20), 25);
  // queue = ceil(25 × (0.5 / 10.5)) = ceil(1.19) = 2 < alpha 3: 25 + 1
  assert.equal(sample(vegas, 63, 10.5, 20), 26);
  assert.equal(sample(vegas, 74, 10.5, 5), 26, 'not in use: 5 × 2 = 10 < 26, no change');
  // A request that failed fast: a drop shrinks the limit (26 − 1) but does not become the baseline.
  assert.equal(sample(vegas, 75, 1, 26, true), 25);
  assert.equal(vegas.minRttMs, 10, 'a dropped RTT of 1 ms is not the no-load RTT');
  // With the baseline still 10: queue = ceil(25 × 0) = 0: 25 + 6. (Had the drop set it to 1 ms,
  // the queue would be ceil(25 × 0.9) = 23 > 6, and the limit would shrink.)
  assert.equal(sample(vegas, 85, 10, 25), 31);
});

test('Vegas: the no-load RTT is probed again after probeMultiplier × limit × jitter samples, never from a drop', () => {
  // jitter 0.75, probeMultiplier 1, limit 4: a probe is due once 0.75 × 1 × 4 = 3 <= samples since the last.
  const vegas = new VegasLimiter({ minLimit: 1, maxLimit: 100, initialLimit: 4, smoothing: 1, probeMultiplier: 1 }, new ScriptedRandom([0.5]));
  sample(vegas, 10, 10, 4); // count 1: baseline 10
  // count 2: queue = ceil(4 × (1 − 10/30)) = ceil(2.67) = 3, not < alpha 3 and not > beta 6: no change
  assert.equal(sample(vegas, 40, 30, 4), 4);
  // count 3, but dropped: no probe from a drop; a drop shrinks: 4 − 1
  assert.equal(sample(vegas, 70, 30, 4, true), 3);
  assert.equal(vegas.minRttMs, 10);
  // count 4 >= 0.75 × 3 = 2.25: the probe resets the baseline to this sample's 30 ms
  assert.equal(sample(vegas, 100, 30, 3), 3);
  assert.equal(vegas.minRttMs, 30);
  // queue = ceil(3 × (1 − 30/30)) = 0: 3 + 6
  assert.equal(sample(vegas, 130, 30, 3), 9);
});

test('Vegas: smoothing blends the new limit with the old one', () => {
  const vegas = new VegasLimiter({ minLimit: 1, maxLimit: 1000, initialLimit: 20, smoothing: 0.5, probeMultiplier: 30 }, new ScriptedRandom([0.5]));
  sample(vegas, 10, 10, 20);
  // target 20 + 6 = 26, smoothed: 0.5 × 20 + 0.5 × 26 = 23
  assert.equal(sample(vegas, 20, 10, 20), 23);
});
