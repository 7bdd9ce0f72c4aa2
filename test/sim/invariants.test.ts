// The safety checker on hand-built situations: it must flag each violation it claims to detect,
// and stay quiet on the legal situation next to it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry } from '../../src/consensus/types.ts';
import { SafetyChecker } from '../../src/sim/invariants.ts';
import type { DurabilityView } from '../../src/sim/invariants.ts';

const VOTERS = [1n, 2n, 3n, 4n, 5n];

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

/** A disk whose log holds entries with the given terms at indexes 1, 2, ... */
function diskWithTerms(terms: number[]): MemoryStorage {
  const disk = MemoryStorage.bootstrap({ voters: VOTERS, learners: [] });
  disk.append(terms.map((term, i) => entry(i + 1, term)));
  return disk;
}

function assertNoViolations(checker: SafetyChecker, why = 'no violation expected'): void {
  assert.equal(checker.violations.length, 0, `${why}: ${JSON.stringify(checker.violations)}`);
}

function views(disks: MemoryStorage[]): DurabilityView[] {
  return disks.map((disk, i) => ({ id: VOTERS[i]!, disk, live: undefined }));
}

test('election safety: two leaders in one term are flagged, one leader per term is not', () => {
  const checker = new SafetyChecker();
  checker.leaderElected(1, 1n, 2, () => 0, 0);
  checker.leaderElected(2, 1n, 2, () => 0, 0); // the same leader observed again
  checker.leaderElected(3, 2n, 3, () => 0, 0);
  assertNoViolations(checker);
  checker.leaderElected(4, 3n, 3, () => 0, 0);
  assert.equal(checker.violations[0]?.property, 'election-safety');
});

test('leader completeness: a new leader must hold the highest committed entry', () => {
  const checker = new SafetyChecker();
  checker.commitObserved(5, 2);
  checker.leaderElected(1, 1n, 3, (index) => (index <= 5 ? 2 : 0), 6);
  assertNoViolations(checker);
  checker.leaderElected(2, 2n, 4, () => 1, 5);
  assert.equal(checker.violations[0]?.property, 'leader-completeness');
});

test('log matching: the same index and term must hold the same entry after the same term', () => {
  const checker = new SafetyChecker();
  const diskA = diskWithTerms([1, 1, 2]);
  const diskB = diskWithTerms([1, 1, 2]);
  checker.entriesPersisted(1, 1n, [entry(3, 2)], diskA);
  checker.entriesPersisted(1, 2n, [entry(3, 2)], diskB);
  assertNoViolations(checker);
  checker.entriesPersisted(2, 3n, [entry(3, 2, 'something else')], diskWithTerms([1, 1, 2]));
  assert.equal(checker.violations[0]?.property, 'log-matching');
  const other = new SafetyChecker();
  other.entriesPersisted(1, 1n, [entry(3, 2)], diskA);
  other.entriesPersisted(1, 2n, [entry(3, 2)], diskWithTerms([1, 2, 2]));
  assert.equal(other.violations[0]?.property, 'log-matching', 'same entry after a different history');
});

test('state machine safety: two members applying different entries at one index is flagged', () => {
  const checker = new SafetyChecker();
  checker.entryApplied(1, 1n, entry(1, 1));
  checker.entryApplied(2, 2n, entry(1, 1));
  assertNoViolations(checker);
  checker.entryApplied(3, 3n, entry(1, 2));
  assert.equal(checker.violations[0]?.property, 'state-machine-safety');
});

test('durability: an entry committed on a majority is safe', () => {
  const checker = new SafetyChecker();
  checker.commitObserved(3, 2);
  // Members 1-3 hold (3, term 2); members 4 and 5 lag behind and cannot be elected without it.
  checker.checkCommittedDurable(1, views([
    diskWithTerms([1, 1, 2]), diskWithTerms([1, 1, 2]), diskWithTerms([1, 1, 2]), diskWithTerms([1]), diskWithTerms([1, 1]),
  ]));
  assertNoViolations(checker);
});

test('durability: Figure 8 — an earlier-term entry "committed" by counting replicas can be lost', () => {
  const checker = new SafetyChecker();
  // Raft paper Figure 8 (d): S1..S3 hold index 2 from term 2, but S5 holds index 2 from term 3 and
  // can win an election with votes from S2, S3 and S4, overwriting the entry.
  checker.commitObserved(2, 2);
  checker.checkCommittedDurable(1, views([
    diskWithTerms([1, 2, 4]), diskWithTerms([1, 2]), diskWithTerms([1, 2]), diskWithTerms([1]), diskWithTerms([1, 3]),
  ]));
  assert.equal(checker.violations[0]?.property, 'committed-entry-lost');
  assert.match(checker.violations[0]!.detail, /member 5/);
});

test('durability: a candidate is judged by its in-memory log as well as its disk', () => {
  const disks = [diskWithTerms([1, 1, 2]), diskWithTerms([1, 1, 2]), diskWithTerms([1, 1, 2]), diskWithTerms([1]), diskWithTerms([1])];
  const diskOnly = new SafetyChecker();
  diskOnly.commitObserved(3, 2);
  diskOnly.checkCommittedDurable(1, views(disks));
  assertNoViolations(diskOnly, 'judged by disks alone, member 5 is too far behind to win');

  // Running, member 5 holds an unsynced entry of term 3 at index 2: a log that every disk would
  // vote for, although it lacks the committed entry (impossible in a correct Raft).
  const withLive = views(disks);
  withLive[4] = { ...withLive[4]!, live: { tip: { lastIndex: 2, lastTerm: 3 }, hasEntry: () => false } };
  const checker = new SafetyChecker();
  checker.commitObserved(3, 2);
  checker.checkCommittedDurable(1, withLive);
  assert.equal(checker.violations[0]?.property, 'committed-entry-lost');
});

test('at-most-once: a command taking effect at two log indexes is flagged; re-execution at one index is not', () => {
  const checker = new SafetyChecker();
  checker.commandExecuted(1, 1n, 'c1', 7, 12);
  checker.commandExecuted(2, 2n, 'c1', 7, 12);
  checker.commandExecuted(3, 1n, 'c1', 7, 12); // member 1 rebuilt from its snapshot replays index 12
  assertNoViolations(checker);
  checker.commandExecuted(4, 3n, 'c1', 7, 15); // the retried proposal at 15 must have been a no-op
  assert.equal(checker.violations[0]?.property, 'at-most-once');
});
