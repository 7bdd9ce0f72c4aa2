// The peer stream's reconnect backoff: doubling up to its limit, jittered by the random source it
// is given, and back to the start after a success.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Random } from '../../src/random/seeded-random.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { ReconnectBackoff } from '../../src/transport/reconnect-backoff.ts';

/** A random source that returns the given floats in turn. */
function scripted(floats: number[]): Random {
  let next = 0;
  return { nextFloat: () => floats[next++ % floats.length]!, nextInt: (max) => Math.floor(floats[next++ % floats.length]! * max) };
}

test('with no jitter drawn (0.5), the waits double from minMs and stop at maxMs', () => {
  const backoff = new ReconnectBackoff({ minMs: 50, maxMs: 1_000 }, scripted([0.5]));
  assert.deepEqual(Array.from({ length: 8 }, () => backoff.nextDelayMs()), [50, 100, 200, 400, 800, 1_000, 1_000, 1_000]);
});

test('each wait is drawn from half to one and a half times the current backoff', () => {
  const low = new ReconnectBackoff({ minMs: 100, maxMs: 1_000 }, scripted([0]));
  const high = new ReconnectBackoff({ minMs: 100, maxMs: 1_000 }, scripted([0.999]));
  assert.deepEqual([low.nextDelayMs(), low.nextDelayMs()], [50, 100]);
  assert.deepEqual([high.nextDelayMs(), high.nextDelayMs()], [150, 300]);
});

test('members that lose each other at once do not dial again in lockstep', () => {
  const delays = [1, 2, 3, 4, 5].map((seed) => new ReconnectBackoff({ minMs: 50, maxMs: 1_000 }, new SeededRandom(seed)).nextDelayMs());
  assert.ok(new Set(delays).size >= 3, `five members' first waits differ: ${delays.join(', ')}`);
});

test('reset: after a success the next outage starts from minMs again', () => {
  const backoff = new ReconnectBackoff({ minMs: 50, maxMs: 1_000 }, scripted([0.5]));
  for (let i = 0; i < 5; i++) backoff.nextDelayMs();
  backoff.reset();
  assert.equal(backoff.nextDelayMs(), 50);
});

test('property: every wait lies within [0.5, 1.5] x min(minMs x 2^attempt, maxMs)', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 60_000 }), fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 30 }),
    (minMs, extra, floats) => {
      const maxMs = minMs + extra;
      const backoff = new ReconnectBackoff({ minMs, maxMs }, scripted(floats));
      floats.forEach((_, attempt) => {
        const current = Math.min(minMs * 2 ** attempt, maxMs);
        const delay = backoff.nextDelayMs();
        assert.ok(delay >= Math.floor(0.5 * current) && delay <= Math.ceil(1.5 * current), `attempt ${attempt}: ${delay} for a backoff of ${current}`);
      });
    },
  ));
});
