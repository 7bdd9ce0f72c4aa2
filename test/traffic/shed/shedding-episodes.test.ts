// Shedding episodes: started by the first refusal for overload, stopped after a quiet period.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SheddingEpisodes } from '../../../src/traffic/shed/shedding-episodes.ts';

const STATE = { limit: 10, inflight: 10, queueLength: 5 };

test('an episode starts at the first overload refusal and stops after quietPeriodMs without one', () => {
  const episodes = new SheddingEpisodes(1000);
  episodes.onRejected('client-rate-limit', 'default', 0, STATE);
  assert.equal(episodes.shedding, false, 'a client quota is not overload');
  episodes.onRejected('queue-full', 'sheddable', 100, STATE);
  episodes.onRejected('queue-timeout', 'default', 600, STATE);
  episodes.onRejected('queue-full', 'sheddable', 1500, STATE);
  assert.deepEqual(episodes.takeEvents(), [
    { type: 'shedding-started', atMs: 100, reason: 'queue-full', priority: 'sheddable', ...STATE },
  ]);
  episodes.tick(2499);
  assert.ok(episodes.shedding, 'quiet for 999 ms only');
  assert.equal(episodes.quietDeadlineMs, 2500);
  episodes.tick(2500);
  assert.equal(episodes.shedding, false);
  assert.deepEqual(episodes.takeEvents(), [{
    type: 'shedding-stopped', atMs: 2500, startedAtMs: 100, lastRejectionAtMs: 1500, durationMs: 1400,
    rejectedByReason: { 'queue-full': 2, 'queue-timeout': 1 }, rejectedByPriority: { critical: 0, default: 1, sheddable: 2 },
  }]);
  episodes.onRejected('displaced', 'default', 5000, STATE);
  assert.equal(episodes.takeEvents()[0]!.type, 'shedding-started', 'a new episode');
});

test('a refusal after a long quiet closes the old episode before opening a new one', () => {
  const episodes = new SheddingEpisodes(1000);
  episodes.onRejected('queue-full', 'default', 0, STATE);
  episodes.onRejected('queue-full', 'default', 5000, STATE); // no tick in between
  assert.deepEqual(episodes.takeEvents().map((e) => [e.type, e.atMs]), [['shedding-started', 0], ['shedding-stopped', 5000], ['shedding-started', 5000]]);
});
