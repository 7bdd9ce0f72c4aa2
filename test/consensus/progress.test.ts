// Tests of the leader's per-follower bookkeeping: the Inflights window (flow control by message
// count and by bytes), Progress state transitions (probe / replicate / snapshot), staleness of
// acknowledgements and rejections, and the quorum arithmetic.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Inflights, Progress, majorityCommittedIndex, voteResult } from '../../src/consensus/progress.ts';
import type { ProgressState } from '../../src/consensus/progress.ts';
import { RaftBugError } from '../../src/consensus/types.ts';

describe('Inflights', () => {
  test('is full at maxCount messages, and freeLE frees every message up to an index', () => {
    const inflights = new Inflights(3, Infinity);
    inflights.add(5, 10);
    inflights.add(7, 10);
    assert.equal(inflights.full(), false);
    inflights.add(9, 10);
    assert.equal(inflights.full(), true);
    assert.throws(() => inflights.add(10, 1), RaftBugError, 'adding to a full window is a programming error');

    inflights.freeLE(6);
    assert.deepEqual([inflights.count(), inflights.full()], [2, false]);
    inflights.freeLE(6); // a duplicate acknowledgement frees nothing more
    assert.equal(inflights.count(), 2);
    inflights.freeLE(100);
    assert.equal(inflights.count(), 0);
  });

  test('is full once the bytes in flight reach maxBytes, whatever the count', () => {
    const inflights = new Inflights(100, 100);
    inflights.add(1, 60);
    assert.equal(inflights.full(), false);
    inflights.add(2, 40);
    assert.equal(inflights.full(), true, '100 bytes of 100');
    inflights.freeLE(1);
    assert.equal(inflights.full(), false, 'freeing a message frees its bytes');
    inflights.add(3, 59);
    assert.equal(inflights.full(), false, '99 bytes');
    inflights.add(4, 1);
    assert.equal(inflights.full(), true);
  });

  test('one message larger than maxBytes fills the window on its own', () => {
    const inflights = new Inflights(100, 10);
    inflights.add(1, 500);
    assert.equal(inflights.full(), true);
  });

  test('indexes must increase', () => {
    const inflights = new Inflights(10, Infinity);
    inflights.add(5, 1);
    assert.throws(() => inflights.add(5, 1), RaftBugError);
    assert.throws(() => inflights.add(4, 1), RaftBugError);
  });

  test('reset empties the window, count and bytes', () => {
    const inflights = new Inflights(2, 10);
    inflights.add(1, 10);
    inflights.reset();
    assert.deepEqual([inflights.count(), inflights.full()], [0, false]);
    inflights.add(1, 9);
    assert.equal(inflights.full(), false);
  });
});

describe('Progress state transitions', () => {
  function progressIn(state: ProgressState, match: number, next: number): Progress {
    const progress = new Progress(next, 4, Infinity, false);
    progress.match = match;
    if (state === 'replicate') progress.becomeReplicate();
    if (state === 'snapshot') progress.becomeSnapshot(20);
    progress.next = next;
    return progress;
  }

  test('a new Progress probes from the given next index', () => {
    const progress = new Progress(6, 4, Infinity, true);
    assert.deepEqual([progress.state, progress.match, progress.next, progress.isLearner, progress.isPaused()], ['probe', 0, 6, true, false]);
  });

  test('becomeReplicate and becomeProbe restart from just past the match, with an empty window', () => {
    const progress = progressIn('replicate', 5, 9);
    progress.sentEntries(1, 10);
    progress.becomeProbe();
    assert.deepEqual([progress.state, progress.next, progress.inflights.count(), progress.isPaused()], ['probe', 6, 0, false]);
    progress.next = 9;
    progress.becomeReplicate();
    assert.deepEqual([progress.state, progress.next], ['replicate', 6]);
  });

  test('after a snapshot, probing resumes past the snapshot (or the match, if later)', () => {
    const progress = progressIn('snapshot', 5, 6);
    assert.deepEqual([progress.pendingSnapshot, progress.isPaused()], [20, true]);
    progress.becomeProbe();
    assert.deepEqual([progress.state, progress.next, progress.pendingSnapshot], ['probe', 21, 0]);

    const caughtUp = progressIn('snapshot', 25, 26);
    caughtUp.becomeProbe();
    assert.equal(caughtUp.next, 26);
  });

  test('sentEntries: replicate advances next optimistically and pauses when the window fills', () => {
    const progress = progressIn('replicate', 5, 6);
    progress.sentEntries(3, 30);
    assert.deepEqual([progress.next, progress.inflights.count(), progress.isPaused()], [9, 1, false]);
    progress.sentEntries(0, 0); // an empty MsgApp takes no slot
    assert.equal(progress.inflights.count(), 1);
    for (let i = 0; i < 3; i++) progress.sentEntries(1, 10);
    assert.deepEqual([progress.next, progress.inflights.count(), progress.isPaused()], [12, 4, true]);
  });

  test('sentEntries: probe sends one message with entries, then waits', () => {
    const progress = progressIn('probe', 5, 6);
    progress.sentEntries(0, 0);
    assert.equal(progress.isPaused(), false, 'an empty probe does not pause');
    progress.sentEntries(2, 20);
    assert.deepEqual([progress.next, progress.isPaused()], [6, true], 'probe does not advance next optimistically');
  });

  test('sentEntries in snapshot state is a programming error', () => {
    assert.throws(() => progressIn('snapshot', 5, 6).sentEntries(1, 1), RaftBugError);
  });

  test('maybeUpdate: an acknowledgement moves match and next forward and unpauses; a stale one does not', () => {
    const progress = progressIn('probe', 5, 6);
    progress.sentEntries(3, 30);
    assert.equal(progress.maybeUpdate(8), true);
    assert.deepEqual([progress.match, progress.next, progress.isPaused()], [8, 9, false]);
    assert.equal(progress.maybeUpdate(7), false);
    assert.equal(progress.maybeUpdate(8), false);
    assert.deepEqual([progress.match, progress.next], [8, 9]);
  });

  describe('maybeDecrTo (a rejected MsgApp)', () => {
    const cases: {
      name: string;
      state: ProgressState;
      match: number;
      next: number;
      rejected: number;
      hint: number;
      decremented: boolean;
      newNext: number;
    }[] = [
      // Replicate: any rejection above match sends next back to match + 1; at or below match it is stale.
      { name: 'replicate, stale', state: 'replicate', match: 5, next: 10, rejected: 5, hint: 5, decremented: false, newNext: 10 },
      { name: 'replicate, rejected above match', state: 'replicate', match: 5, next: 10, rejected: 9, hint: 9, decremented: true, newNext: 6 },
      // Probe: only the answer to the latest probe (at next - 1) counts.
      { name: 'probe, answer to an older probe', state: 'probe', match: 0, next: 10, rejected: 5, hint: 5, decremented: false, newNext: 10 },
      { name: 'probe, step back one', state: 'probe', match: 0, next: 10, rejected: 9, hint: 9, decremented: true, newNext: 9 },
      { name: 'probe, jump back to the hint', state: 'probe', match: 0, next: 10, rejected: 9, hint: 4, decremented: true, newNext: 5 },
      { name: 'probe, a hint past the rejected index is ignored', state: 'probe', match: 0, next: 10, rejected: 9, hint: 20, decremented: true, newNext: 9 },
      { name: 'probe, never below match + 1', state: 'probe', match: 3, next: 10, rejected: 9, hint: 0, decremented: true, newNext: 4 },
      { name: 'probe, never below 1', state: 'probe', match: 0, next: 1, rejected: 0, hint: 0, decremented: true, newNext: 1 },
    ];
    for (const c of cases) {
      test(c.name, () => {
        const progress = progressIn(c.state, c.match, c.next);
        if (c.state === 'probe') progress.msgAppFlowPaused = true;
        assert.equal(progress.maybeDecrTo(c.rejected, c.hint), c.decremented);
        assert.equal(progress.next, c.newNext);
        if (c.decremented && c.state === 'probe') assert.equal(progress.isPaused(), false, 'a probe answer unpauses');
      });
    }
  });

  test('describe names the state for status output', () => {
    const progress = progressIn('replicate', 5, 6);
    progress.sentEntries(1, 1);
    assert.equal(progress.describe(), 'match=5 next=7 state=replicate inflight=1');
  });
});

describe('quorum arithmetic', () => {
  test('majorityCommittedIndex is the highest index a majority has reached', () => {
    const cases: [matches: number[], expected: number][] = [
      [[5], 5],
      [[5, 3], 3],
      [[5, 3, 1], 3],
      [[1, 3, 5], 3],
      [[7, 5, 3, 1], 3], // four voters need three
      [[7, 7, 3, 1, 0], 3],
      [[7, 7, 7, 1, 0], 7],
    ];
    for (const [matches, expected] of cases) assert.equal(majorityCommittedIndex(matches), expected, String(matches));
    assert.equal(majorityCommittedIndex([]), Number.MAX_SAFE_INTEGER, 'no voters constrain nothing');
  });

  test('voteResult is won with a majority of grants, lost once a majority is out of reach', () => {
    const voters = [1n, 2n, 3n, 4n, 5n];
    const votes = (granted: bigint[], rejected: bigint[]): Map<bigint, boolean> =>
      new Map([...granted.map((id) => [id, true] as const), ...rejected.map((id) => [id, false] as const)]);
    assert.equal(voteResult(voters, votes([1n, 2n], [])), 'pending');
    assert.equal(voteResult(voters, votes([1n, 2n, 3n], [])), 'won');
    assert.equal(voteResult(voters, votes([1n, 2n], [3n, 4n])), 'pending');
    assert.equal(voteResult(voters, votes([1n], [3n, 4n, 5n])), 'lost');
    assert.equal(voteResult(voters, votes([1n, 6n, 7n], [])), 'pending', 'votes from non-voters do not count');
    assert.equal(voteResult([], new Map()), 'won');
  });
});
