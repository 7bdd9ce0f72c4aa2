// Tests of MemoryStorage: the stable log and snapshot as the core reads them, and the operations an
// application performs on it (append, snapshot, compact, install a snapshot).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry } from '../../src/consensus/types.ts';
import { EMPTY_BYTES, RaftBugError, RaftError, entrySizeBytes } from '../../src/consensus/types.ts';
import type { RaftErrorCode } from '../../src/consensus/types.ts';

const CONF_STATE = { voters: [1n, 2n, 3n], learners: [4n] };

function entry(index: number, term: number, payloadBytes = 0): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(payloadBytes) };
}

/** Storage holding entries 1..terms.length with the given terms. */
function storageWith(terms: number[]): MemoryStorage {
  const storage = MemoryStorage.bootstrap(CONF_STATE);
  storage.append(terms.map((term, i) => entry(i + 1, term)));
  return storage;
}

function storedTerms(storage: MemoryStorage): number[] {
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity).map((e) => e.term);
}

function raftError(code: RaftErrorCode): (error: unknown) => boolean {
  return (error) => error instanceof RaftError && error.code === code;
}

describe('MemoryStorage', () => {
  test('bootstrap gives an empty log and the initial membership', () => {
    const storage = MemoryStorage.bootstrap(CONF_STATE);
    assert.deepEqual(storage.initialState(), { hardState: { term: 0, vote: 0n, commit: 0 }, confState: CONF_STATE });
    assert.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(0)], [1, 0, 0]);
    assert.equal(storage.snapshot().metadata.index, 0);
  });

  test('the hard state is copied in and out', () => {
    const storage = MemoryStorage.bootstrap(CONF_STATE);
    const hardState = { term: 3, vote: 2n, commit: 1 };
    storage.setHardState(hardState);
    hardState.term = 99;
    const loaded = storage.initialState().hardState;
    assert.deepEqual(loaded, { term: 3, vote: 2n, commit: 1 });
    loaded.term = 42;
    assert.equal(storage.hardState.term, 3);
  });

  describe('append', () => {
    test('appends after the last entry', () => {
      const storage = storageWith([1, 1]);
      storage.append([entry(3, 2)]);
      assert.deepEqual(storedTerms(storage), [1, 1, 2]);
    });

    test('overwrites a conflicting suffix', () => {
      const storage = storageWith([1, 1, 1, 1]);
      storage.append([entry(2, 2), entry(3, 2)]);
      assert.deepEqual(storedTerms(storage), [1, 2, 2], 'entry 4 of the old suffix is gone too');
    });

    test('a gap after the last entry is a programming error', () => {
      assert.throws(() => storageWith([1]).append([entry(3, 1)]), RaftBugError);
    });

    test('skips what the snapshot already covers', () => {
      const storage = storageWith([1, 1, 1]);
      storage.createSnapshot(2, CONF_STATE, EMPTY_BYTES);
      storage.compact(2);
      storage.append([entry(1, 1), entry(2, 1)]);
      assert.deepEqual([storage.firstIndex(), storage.lastIndex()], [3, 3], 'entirely covered: no change');
      storage.append([entry(2, 1), entry(3, 1), entry(4, 2)]);
      assert.deepEqual(storedTerms(storage), [1, 2]);
      assert.equal(storage.firstIndex(), 3);
    });

    test('an empty append changes nothing', () => {
      const storage = storageWith([1]);
      storage.append([]);
      assert.equal(storage.lastIndex(), 1);
    });
  });

  describe('entries and term', () => {
    const storage = storageWith([1, 2, 2, 3, 3]);
    storage.createSnapshot(2, CONF_STATE, EMPTY_BYTES);
    storage.compact(2);

    test('entries in [lo, hi)', () => {
      assert.deepEqual(storage.entries(3, 5, Infinity).map((e) => e.index), [3, 4]);
    });

    test('entries within maxBytes, but at least one', () => {
      const size = entrySizeBytes(entry(0, 0));
      assert.deepEqual(storage.entries(3, 6, 2 * size).map((e) => e.index), [3, 4]);
      assert.deepEqual(storage.entries(3, 6, 0).map((e) => e.index), [3]);
    });

    test('compacted ranges are reported; ranges past the end are programming errors', () => {
      assert.throws(() => storage.entries(2, 4, Infinity), raftError('CONCORD_E_COMPACTED'));
      assert.throws(() => storage.entries(3, 7, Infinity), RaftBugError);
    });

    test('term: the snapshot index keeps its term; before it is compacted, after the end unavailable', () => {
      assert.equal(storage.term(2), 2);
      assert.equal(storage.term(5), 3);
      assert.throws(() => storage.term(1), raftError('CONCORD_E_COMPACTED'));
      assert.throws(() => storage.term(6), raftError('CONCORD_E_UNAVAILABLE'));
    });
  });

  describe('snapshots and compaction', () => {
    test('createSnapshot records the index, its term and the membership', () => {
      const storage = storageWith([1, 1, 2, 2]);
      const data = new TextEncoder().encode('state');
      const snapshot = storage.createSnapshot(3, CONF_STATE, data);
      assert.deepEqual(snapshot.metadata, { index: 3, term: 2, confState: CONF_STATE });
      assert.equal(storage.snapshot(), snapshot);
      assert.deepEqual(storage.initialState().confState, CONF_STATE);
      assert.equal(storage.firstIndex(), 1, 'creating a snapshot alone discards nothing');
    });

    test('createSnapshot refuses an index that is not newer, or not stored', () => {
      const storage = storageWith([1, 1, 2, 2]);
      storage.createSnapshot(3, CONF_STATE, EMPTY_BYTES);
      assert.throws(() => storage.createSnapshot(3, CONF_STATE, EMPTY_BYTES), raftError('CONCORD_E_SNAP_OUT_OF_DATE'));
      assert.throws(() => storage.createSnapshot(2, CONF_STATE, EMPTY_BYTES), raftError('CONCORD_E_SNAP_OUT_OF_DATE'));
      assert.throws(() => storage.createSnapshot(5, CONF_STATE, EMPTY_BYTES), RaftBugError);
    });

    test('compact discards entries up to and including the index', () => {
      const storage = storageWith([1, 1, 2, 2]);
      storage.compact(2);
      assert.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(2)], [3, 4, 1]);
      assert.deepEqual(storedTerms(storage), [2, 2]);
      assert.throws(() => storage.compact(2), raftError('CONCORD_E_COMPACTED'));
      assert.throws(() => storage.compact(5), RaftBugError);
      storage.compact(4);
      assert.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(4)], [5, 4, 2]);
    });

    test('applySnapshot replaces everything with the snapshot', () => {
      const storage = storageWith([1, 1, 1]);
      const snapshot = { metadata: { index: 10, term: 4, confState: { voters: [1n], learners: [] } }, data: EMPTY_BYTES };
      storage.applySnapshot(snapshot);
      assert.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(10)], [11, 10, 4]);
      assert.deepEqual(storage.initialState().confState, { voters: [1n], learners: [] });
      storage.append([entry(11, 4)]);
      assert.equal(storage.lastIndex(), 11);
      assert.throws(() => storage.applySnapshot(snapshot), raftError('CONCORD_E_SNAP_OUT_OF_DATE'));
    });
  });

  test('clone shares no mutable state: a simulated crash keeps exactly what was persisted', () => {
    const storage = storageWith([1, 1]);
    storage.setHardState({ term: 1, vote: 1n, commit: 2 });
    const copy = storage.clone();
    storage.append([entry(2, 2), entry(3, 2)]);
    storage.setHardState({ term: 2, vote: 0n, commit: 2 });
    assert.deepEqual(storedTerms(copy), [1, 1]);
    assert.deepEqual(copy.hardState, { term: 1, vote: 1n, commit: 2 });
    copy.append([entry(3, 5)]);
    assert.deepEqual(storedTerms(storage), [1, 2, 2]);
  });
});
