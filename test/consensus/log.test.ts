// Tests of RaftLog: the stable prefix in storage plus the unstable suffix, the follower side of
// AppendEntries (maybeAppend / findConflict), fast-backtracking hints, size-limited slices, and the
// errors around compaction. Cases follow etcd's log_test.go where they overlap.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RaftLog } from '../../src/consensus/log.ts';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry, Snapshot } from '../../src/consensus/types.ts';
import { EMPTY_BYTES, RaftBugError, RaftError, entrySizeBytes } from '../../src/consensus/types.ts';

const CONF_STATE = { voters: [1n, 2n, 3n], learners: [] };

function entry(index: number, term: number, payloadBytes = 0): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(payloadBytes) };
}

/** Entries with the given terms at indexes first, first+1, ... */
function entries(first: number, terms: number[]): Entry[] {
  return terms.map((term, i) => entry(first + i, term));
}

/** A log whose storage holds `stableTerms` (indexes from 1), with `unstableTerms` appended after. */
function logWith(stableTerms: number[], unstableTerms: number[] = []): { log: RaftLog; storage: MemoryStorage } {
  const storage = MemoryStorage.bootstrap(CONF_STATE);
  storage.append(entries(1, stableTerms));
  const log = new RaftLog(storage);
  if (unstableTerms.length > 0) log.append(entries(stableTerms.length + 1, unstableTerms));
  return { log, storage };
}

function terms(log: RaftLog): number[] {
  return log.allEntriesFrom(log.firstIndex()).map((e) => e.term);
}

function assertCompacted(action: () => unknown): void {
  assert.throws(action, (error: unknown) => error instanceof RaftError && error.code === 'CONCORD_E_COMPACTED');
}

function snapshotAt(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: CONF_STATE }, data: EMPTY_BYTES };
}

describe('RaftLog.findConflict', () => {
  const { log } = logWith([1, 2, 3]);
  const cases: { name: string; given: Entry[]; conflict: number }[] = [
    { name: 'no entries', given: [], conflict: 0 },
    { name: 'all present', given: entries(1, [1, 2, 3]), conflict: 0 },
    { name: 'a suffix present', given: entries(2, [2, 3]), conflict: 0 },
    { name: 'new entries after a present prefix', given: entries(2, [2, 3, 4, 4]), conflict: 4 },
    { name: 'only new entries', given: entries(4, [4, 4]), conflict: 4 },
    { name: 'conflict at the first', given: entries(1, [4, 4]), conflict: 1 },
    { name: 'conflict in the middle', given: entries(2, [1, 4, 4]), conflict: 2 },
    { name: 'conflict at the last', given: entries(3, [4, 4]), conflict: 3 },
  ];
  for (const { name, given, conflict } of cases) {
    test(name, () => assert.equal(log.findConflict(given), conflict));
  }
});

describe('RaftLog.findConflictByTerm (the fast-backtracking hint)', () => {
  // index:  1 2 3 4 5 6 7
  // term:   1 1 2 2 2 5 5
  const { log, storage } = logWith([1, 1, 2, 2, 2, 5, 5]);
  const cases: [index: number, term: number, expected: { index: number; term: number }][] = [
    [7, 5, { index: 7, term: 5 }],
    [7, 4, { index: 5, term: 2 }], // skips every entry of term 5
    [7, 2, { index: 5, term: 2 }],
    [7, 1, { index: 2, term: 1 }],
    [7, 0, { index: 0, term: 0 }],
    [4, 2, { index: 4, term: 2 }],
    [10, 3, { index: 5, term: 2 }], // an index beyond the log starts from the last entry
  ];
  for (const [index, term, expected] of cases) {
    test(`(${index}, ${term}) -> ${expected.index}/${expected.term}`, () => {
      assert.deepEqual(log.findConflictByTerm(index, term), expected);
    });
  }

  test('stops at the compacted prefix with an unknown term (0)', () => {
    storage.createSnapshot(3, CONF_STATE, EMPTY_BYTES);
    storage.compact(3);
    // Entries 4-5 have term 2 > 1, entry 3 is the snapshot's (term 2), entry 2 is gone.
    assert.deepEqual(log.findConflictByTerm(7, 1), { index: 2, term: 0 });
    assert.deepEqual(log.findConflictByTerm(7, 2), { index: 5, term: 2 });
  });
});

describe('RaftLog.maybeAppend (AppendEntries on the follower)', () => {
  // etcd TestLogMaybeAppend: the log holds 1/1 2/2 3/3 with commit 1.
  const cases: {
    name: string;
    index: number;
    logTerm: number;
    commit: number;
    given: Entry[];
    lastNew: number | undefined;
    committed: number;
    terms: number[];
  }[] = [
    { name: 'previous entry does not match', index: 3, logTerm: 2, commit: 3, given: entries(4, [4]), lastNew: undefined, committed: 1, terms: [1, 2, 3] },
    { name: 'previous entry beyond the log', index: 4, logTerm: 4, commit: 3, given: entries(5, [4]), lastNew: undefined, committed: 1, terms: [1, 2, 3] },
    { name: 'matches the last entry, no new entries', index: 3, logTerm: 3, commit: 3, given: [], lastNew: 3, committed: 3, terms: [1, 2, 3] },
    { name: 'commit is capped at the last new entry', index: 3, logTerm: 3, commit: 4, given: [], lastNew: 3, committed: 3, terms: [1, 2, 3] },
    { name: 'commit is capped below the leader\'s when the message is short', index: 2, logTerm: 2, commit: 4, given: [], lastNew: 2, committed: 2, terms: [1, 2, 3] },
    { name: 'commit does not go back', index: 3, logTerm: 3, commit: 0, given: [], lastNew: 3, committed: 1, terms: [1, 2, 3] },
    { name: 'appends new entries', index: 3, logTerm: 3, commit: 3, given: entries(4, [4, 4]), lastNew: 5, committed: 3, terms: [1, 2, 3, 4, 4] },
    { name: 'entries already present change nothing', index: 1, logTerm: 1, commit: 3, given: entries(2, [2]), lastNew: 2, committed: 2, terms: [1, 2, 3] },
    { name: 'a conflicting entry truncates the rest', index: 2, logTerm: 2, commit: 3, given: entries(3, [4]), lastNew: 3, committed: 3, terms: [1, 2, 4] },
    { name: 'a conflict after present entries', index: 1, logTerm: 1, commit: 1, given: entries(2, [2, 4, 4]), lastNew: 4, committed: 1, terms: [1, 2, 4, 4] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { log } = logWith([1, 2, 3]);
      log.commitTo(1);
      assert.equal(log.maybeAppend(c.index, c.logTerm, c.commit, c.given), c.lastNew);
      assert.equal(log.committed, c.committed);
      assert.deepEqual(terms(log), c.terms);
    });
  }

  test('refuses to overwrite a committed entry (a programming error, never an operating condition)', () => {
    const { log } = logWith([1, 2, 3]);
    log.commitTo(2);
    assert.throws(() => log.maybeAppend(1, 1, 3, entries(2, [4])), RaftBugError);
    assert.deepEqual(terms(log), [1, 2, 3]);
  });
});

describe('RaftLog.append and the unstable suffix', () => {
  test('new entries are unstable until stableTo; the log sees stable and unstable as one', () => {
    const { log, storage } = logWith([1, 1]);
    assert.equal(log.append(entries(3, [2, 2])), 4);
    assert.deepEqual(log.unstableEntries().map((e) => e.index), [3, 4]);
    assert.equal(storage.lastIndex(), 2);
    assert.deepEqual([log.lastIndex(), log.lastTerm(), log.term(3)], [4, 2, 2]);

    storage.append(log.unstableEntries());
    log.stableTo(4, 2);
    assert.deepEqual(log.unstableEntries(), []);
    assert.deepEqual(terms(log), [1, 1, 2, 2]);
  });

  test('stableTo ignores a (index, term) that no longer matches: the entry was replaced meanwhile', () => {
    const { log } = logWith([1], [1, 1]);
    const persistedLast = log.unstableEntries().at(-1)!;
    log.append(entries(2, [3])); // a new leader replaced entries 2-3 with 2/3
    log.stableTo(persistedLast.index, persistedLast.term);
    assert.deepEqual(log.unstableEntries().map((e) => [e.index, e.term]), [[2, 3]], 'the replacement is still to persist');
  });

  test('stableTo beyond the unstable entries does nothing', () => {
    const { log } = logWith([1], [1]);
    log.stableTo(5, 1);
    assert.equal(log.unstableEntries().length, 1);
  });

  test('appending before the unstable offset replaces stable entries (once persisted)', () => {
    const { log, storage } = logWith([1, 1, 1]);
    log.append(entries(2, [2]));
    assert.deepEqual(terms(log), [1, 2], 'the log reads through the new suffix, not the stale stable entries');
    assert.equal(log.lastIndex(), 2);
    storage.append(log.unstableEntries());
    log.stableTo(2, 2);
    assert.deepEqual(storage.entries(1, 3, Infinity).map((e) => e.term), [1, 2]);
    assert.equal(storage.lastIndex(), 2);
  });

  test('appending in the middle of the unstable suffix truncates it', () => {
    const { log } = logWith([1], [1, 1, 1]);
    log.append(entries(3, [2, 2]));
    assert.deepEqual(terms(log), [1, 1, 2, 2]);
  });

  test('appending after the committed index only; before it is a programming error', () => {
    const { log } = logWith([1, 1, 1]);
    log.commitTo(2);
    assert.throws(() => log.append(entries(2, [2])), RaftBugError);
    assert.equal(log.append(entries(3, [2])), 3);
    assert.equal(log.append([]), 3);
  });
});

describe('RaftLog commit and apply', () => {
  test('commitTo never decreases and never passes the last index', () => {
    const { log } = logWith([1, 1, 1]);
    log.commitTo(2);
    log.commitTo(1);
    assert.equal(log.committed, 2);
    assert.throws(() => log.commitTo(4), RaftBugError);
  });

  test('committed entries are handed out once, in order, within the size limit', () => {
    const { log } = logWith([1, 1, 1, 1]);
    assert.equal(log.hasNextCommittedEntries(), false);
    log.commitTo(3);
    assert.equal(log.hasNextCommittedEntries(), true);
    assert.deepEqual(log.nextCommittedEntries(Infinity).map((e) => e.index), [1, 2, 3]);
    assert.deepEqual(log.nextCommittedEntries(1).map((e) => e.index), [1], 'at least one even over the limit');
    log.appliedTo(2);
    assert.deepEqual(log.nextCommittedEntries(Infinity).map((e) => e.index), [3]);
    log.appliedTo(3);
    assert.equal(log.hasNextCommittedEntries(), false);
    assert.throws(() => log.appliedTo(4), RaftBugError, 'cannot apply beyond commit');
    assert.throws(() => log.appliedTo(2), RaftBugError, 'applied never goes back');
  });
});

describe('RaftLog.slice with size limits', () => {
  // Every entry weighs 24 bytes of framing plus its payload; here 10 bytes each, so 34 bytes.
  const size = entrySizeBytes(entry(1, 1, 10));

  function sizedLog(stable: number, unstable: number): RaftLog {
    const storage = MemoryStorage.bootstrap(CONF_STATE);
    storage.append(Array.from({ length: stable }, (_, i) => entry(i + 1, 1, 10)));
    const log = new RaftLog(storage);
    log.append(Array.from({ length: unstable }, (_, i) => entry(stable + i + 1, 1, 10)));
    return log;
  }

  const cases: { name: string; lo: number; hi: number; maxBytes: number; indexes: number[] }[] = [
    { name: 'no limit, across storage and unstable', lo: 2, hi: 6, maxBytes: Infinity, indexes: [2, 3, 4, 5] },
    { name: 'exactly two entries', lo: 1, hi: 6, maxBytes: 2 * size, indexes: [1, 2] },
    { name: 'just under three entries', lo: 1, hi: 6, maxBytes: 3 * size - 1, indexes: [1, 2] },
    { name: 'at least one entry, even if it alone is over the limit', lo: 2, hi: 6, maxBytes: 1, indexes: [2] },
    { name: 'limit reached inside storage: no unstable entries after the gap', lo: 2, hi: 6, maxBytes: 2 * size, indexes: [2, 3] },
    { name: 'limit spanning into unstable', lo: 2, hi: 6, maxBytes: 3 * size, indexes: [2, 3, 4] },
    { name: 'unstable only', lo: 4, hi: 6, maxBytes: size, indexes: [4] },
    { name: 'empty range', lo: 3, hi: 3, maxBytes: Infinity, indexes: [] },
  ];
  for (const { name, lo, hi, maxBytes, indexes } of cases) {
    test(name, () => {
      // Entries 1-3 are in storage, 4-5 unstable.
      assert.deepEqual(sizedLog(3, 2).slice(lo, hi, maxBytes).map((e) => e.index), indexes);
    });
  }

  test('bad ranges are programming errors; compacted ranges are CONCORD_E_COMPACTED', () => {
    const log = sizedLog(3, 2);
    assert.throws(() => log.slice(3, 2, Infinity), RaftBugError);
    assert.throws(() => log.slice(1, 7, Infinity), RaftBugError);
    assert.deepEqual(log.entriesFrom(6, Infinity), []);
  });
});

describe('RaftLog compaction and snapshots', () => {
  test('terms and slices below the first index are reported as compacted', () => {
    const { log, storage } = logWith([1, 1, 2, 2, 3]);
    storage.createSnapshot(3, CONF_STATE, EMPTY_BYTES);
    storage.compact(3);
    assert.equal(log.firstIndex(), 4);
    assert.equal(log.term(3), 2, 'the snapshot\'s own index keeps its term');
    assertCompacted(() => log.term(2));
    assertCompacted(() => log.slice(3, 5, Infinity));
    assert.equal(log.termOrUndefined(2), undefined);
    assert.equal(log.matchTerm(2, 1), false);
    assert.equal(log.term(9), 0, 'beyond the last index the term is 0');
    assert.deepEqual(log.allEntriesFrom(1).map((e) => e.index), [4, 5]);
  });

  test('restore replaces the log with a snapshot until it is persisted', () => {
    const { log, storage } = logWith([1, 1]);
    log.append(entries(3, [1]));
    const snapshot = snapshotAt(10, 4);
    log.restore(snapshot);
    assert.deepEqual(
      [log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed],
      [11, 10, 4, 10],
    );
    assert.deepEqual(log.unstableEntries(), []);
    assert.equal(log.snapshot(), snapshot);
    assertCompacted(() => log.term(9));

    // New entries after the snapshot go on top of it.
    log.append(entries(11, [4]));
    assert.deepEqual([log.lastIndex(), log.term(11)], [11, 4]);

    // Persisting: the application stores the snapshot, then the entries.
    storage.applySnapshot(snapshot);
    storage.append(log.unstableEntries());
    log.stableSnapTo(10);
    log.stableTo(11, 4);
    assert.equal(log.unstable.snapshot, undefined);
    assert.deepEqual([log.firstIndex(), log.lastIndex(), log.term(10), log.term(11)], [11, 11, 4, 4]);
  });

  test('stableSnapTo with another index keeps the pending snapshot', () => {
    const { log } = logWith([]);
    log.restore(snapshotAt(5, 2));
    log.stableSnapTo(4);
    assert.ok(log.unstable.snapshot);
  });

  test('a log built on compacted storage starts committed and applied at the snapshot', () => {
    const storage = MemoryStorage.bootstrap(CONF_STATE);
    storage.append(entries(1, [1, 1, 1, 1]));
    storage.createSnapshot(3, CONF_STATE, EMPTY_BYTES);
    storage.compact(3);
    const log = new RaftLog(storage);
    assert.deepEqual([log.firstIndex(), log.lastIndex(), log.committed, log.applied], [4, 4, 3, 3]);
    assert.equal(log.unstable.offset, 5);
  });
});

describe('RaftLog.isUpToDate (§5.4.1)', () => {
  const { log } = logWith([1, 2, 2]);
  const cases: [lastIndex: number, lastTerm: number, expected: boolean][] = [
    [1, 3, true],
    [3, 3, true],
    [5, 1, false],
    [2, 2, false],
    [3, 2, true],
    [4, 2, true],
  ];
  for (const [lastIndex, lastTerm, expected] of cases) {
    test(`candidate ${lastTerm}/${lastIndex}: ${expected}`, () => assert.equal(log.isUpToDate(lastIndex, lastTerm), expected));
  }
});
