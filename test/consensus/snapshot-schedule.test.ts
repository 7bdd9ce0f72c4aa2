// The snapshot schedule: a single member snapshots at the multiples of N; the members of a cluster
// snapshot at their own phases, so their snapshots never come together, and each still snapshots
// about every N entries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nextSnapshotIndex, SNAPSHOT_GROWTH_RATIO, snapshotInterval, snapshotPhase } from '../../src/consensus/snapshot-schedule.ts';

/** The indexes at which a member that applies entries in the given batch sizes takes its snapshots. */
function snapshotsTaken(phase: number, every: number, batches: readonly number[]): number[] {
  const taken: number[] = [];
  let applied = 0;
  let last = 0;
  for (const batch of batches) {
    applied += batch;
    if (applied >= nextSnapshotIndex(last, every, phase)) {
      taken.push(applied);
      last = applied;
    }
  }
  return taken;
}

test('a single member snapshots at the multiples of the interval', () => {
  assert.equal(snapshotPhase(7n, { voters: [7n], learners: [] }, 1000), 0);
  assert.deepEqual(snapshotsTaken(0, 1000, Array.from({ length: 5000 }, () => 1)), [1000, 2000, 3000, 4000, 5000]);
  assert.equal(nextSnapshotIndex(0, 1, 0), 1, 'an interval of 1 snapshots at every entry');
  assert.equal(nextSnapshotIndex(5, 1, 0), 6);
});

test('the members of a cluster get phases spread over the interval, in ID order, whatever order they are listed in', () => {
  const members = { voters: [30n, 10n, 20n], learners: [] };
  assert.deepEqual([10n, 20n, 30n].map((id) => snapshotPhase(id, members, 900)), [0, 300, 600]);
  assert.deepEqual([1n, 2n, 3n, 4n, 5n].map((id) => snapshotPhase(id, { voters: [5n, 4n, 3n, 2n, 1n], learners: [] }, 1000)), [0, 200, 400, 600, 800]);
  assert.equal(snapshotPhase(99n, { voters: [], learners: [] }, 1000), 0, 'a member that knows no members yet');
  assert.deepEqual([1n, 2n, 99n].map((id) => snapshotPhase(id, { voters: [1n, 2n], learners: [99n] }, 900)), [0, 300, 600], 'a learner has a phase of its own');
  assert.ok(snapshotPhase(50n, { voters: [1n, 2n], learners: [] }, 1000) < 1000, 'a member missing from the list stays inside the interval');
});

test('from a snapshot off the phase (one received from the leader, or one after a membership change) the next is on the phase, more than half an interval later', () => {
  for (const last of [0, 1, 7, 333, 499, 500, 501, 999, 1000, 123_456]) {
    for (const phase of [0, 250, 999]) {
      const next = nextSnapshotIndex(last, 1000, phase);
      assert.equal(next % 1000, phase, `from ${last} at phase ${phase}: ${next}`);
      assert.ok(next > last + 500 && next <= last + 1500, `from ${last} at phase ${phase}: ${next}`);
    }
  }
});

test('every member snapshots about every N entries, and members of one cluster never snapshot together', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 30, max: 5000 }),
      fc.constantFrom(3, 5),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 200, maxLength: 3000 }),
      (every, members, batchSizes) => {
        const voters = Array.from({ length: members }, (_, i) => BigInt(100 + i * 7));
        const batches = batchSizes.map((size) => Math.max(1, Math.round((size * every) / 400)));
        const largestBatch = Math.max(...batches);
        const total = batches.reduce((sum, size) => sum + size, 0);
        const perMember = voters.map((id) => snapshotsTaken(snapshotPhase(id, { voters, learners: [] }, every), every, batches));
        for (const taken of perMember) {
          taken.forEach((index, i) => {
            const gap = index - (taken[i - 1] ?? 0);
            if (i > 0) assert.ok(gap > every / 2, `a gap of ${gap} entries is not under half of ${every}`);
            assert.ok(gap <= 1.5 * every + largestBatch, `a gap of ${gap} entries is at most 1.5 intervals of ${every} (plus a batch)`);
          });
          if (total >= 4 * every) {
            const mean = (taken[taken.length - 1]! - taken[0]!) / (taken.length - 1);
            assert.ok(Math.abs(mean - every) <= every / 10 + largestBatch, `mean interval ${mean} is about ${every}`);
          }
        }
        // Snapshots of different members are at least a share of the interval apart (less a batch).
        const all = perMember.flatMap((taken, member) => taken.map((index) => ({ index, member }))).sort((a, b) => a.index - b.index);
        for (let i = 1; i < all.length; i++) {
          if (all[i]!.member === all[i - 1]!.member) continue;
          const apart = all[i]!.index - all[i - 1]!.index;
          assert.ok(apart >= every / members / 2 - largestBatch, `members ${all[i - 1]!.member} and ${all[i]!.member} snapshot ${apart} entries apart`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('the interval is --snapshot-count for a small state, and grows with a large one', () => {
  assert.equal(snapshotInterval(1000, 0, 300), 1000, 'no snapshot yet');
  assert.equal(snapshotInterval(1000, 50_000, 0), 1000, 'nothing applied yet');
  assert.equal(snapshotInterval(1000, 300_000, 300), 1000, 'entries adding up to half the snapshot: 500 < 1000');
  assert.equal(snapshotInterval(1000, 3_000_000, 300), 5000, 'half of 3 MB in 300-byte entries');
});

test('however long a store grows, encoding its snapshots costs each write a bounded share', () => {
  // Every write adds its 300 bytes to the state (no compaction), and every snapshot encodes all of it.
  const entryBytes = 300;
  const every = 1000;
  const encodedPerWrite = (writes: number, adaptive: boolean): number => {
    let last = 0;
    let encoded = 0;
    for (let applied = 1; applied <= writes; applied++) {
      const interval = adaptive ? snapshotInterval(every, last * entryBytes, entryBytes) : every;
      if (applied < nextSnapshotIndex(last, interval, 0)) continue;
      encoded += applied * entryBytes;
      last = applied;
    }
    return encoded / writes;
  };
  // The bound: with the interval at least SNAPSHOT_GROWTH_RATIO of the state, a write pays for at
  // most 1 / ratio (plus the one it is in) encodings of its own size, wherever the run stops.
  const bound = entryBytes * (1 + 2 / SNAPSHOT_GROWTH_RATIO);
  for (const writes of [10_000, 100_000, 1_000_000]) assert.ok(encodedPerWrite(writes, true) <= bound, `${writes} writes`);
  // A fixed interval does not have one: the share grows with the store.
  assert.ok(encodedPerWrite(1_000_000, false) > 100 * bound);
});
