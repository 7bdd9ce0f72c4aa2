// Property tests of the WAL record codec (random records round-trip; any single-byte corruption
// is detected; a truncated record reads as incomplete; a record does not validate at another
// offset), and unit tests of the replay rules that rebuild the log from records.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Entry } from '../../src/consensus/types.ts';
import {
  RECORD_HEADER_BYTES,
  WAL_FORMAT_VERSION,
  decodeFrame,
  decodeRecordPayload,
  encodeFrame,
  encodeRecordPayload,
  findValidFrame,
} from '../../src/storage/wal-record.ts';
import type { WalRecord } from '../../src/storage/wal-record.ts';
import { WalReplay } from '../../src/storage/wal-replay.ts';
import { entries, indexTerms } from './fixtures.ts';

const MAX_U64 = (1n << 64n) - 1n;
const index = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 100 });
const term = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const offset = fc.integer({ min: 0, max: 2 ** 40 });

const entriesArbitrary: fc.Arbitrary<Entry[]> = fc
  .tuple(index, fc.array(fc.tuple(term, fc.constantFrom('normal' as const, 'confChange' as const), fc.uint8Array({ maxLength: 40 })), { minLength: 1, maxLength: 8 }))
  .map(([first, list]) => list.map(([t, type, data], i) => ({ index: first + i, term: t, type, data })));

const plain = { noNullPrototype: true } as const;

const recordArbitrary: fc.Arbitrary<WalRecord> = fc.oneof(
  fc.record({
    type: fc.constant('metadata' as const),
    metadata: fc.record({
      formatVersion: fc.constant(WAL_FORMAT_VERSION),
      clusterId: fc.bigInt({ min: 0n, max: MAX_U64 }),
      memberId: fc.bigInt({ min: 0n, max: MAX_U64 }),
      sequence: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      firstIndex: index,
    }, plain),
  }, plain),
  fc.record({
    type: fc.constant('hardState' as const),
    hardState: fc.record({ term, vote: fc.bigInt({ min: 0n, max: MAX_U64 }), commit: term }, plain),
  }, plain),
  fc.record({ type: fc.constant('entries' as const), entries: entriesArbitrary }, plain),
  fc.record({ type: fc.constant('snapshotMarker' as const), marker: fc.record({ index: term, term }, plain) }, plain),
);

/** The frame placed at `at` inside a buffer that starts `at` bytes before it (as in a segment file). */
function placed(record: WalRecord, at: number): Uint8Array {
  const frame = encodeFrame(encodeRecordPayload(record), at);
  const file = new Uint8Array(at + frame.byteLength);
  file.set(frame, at);
  return file;
}

describe('WAL record codec', () => {
  test('random records round-trip through a frame at any offset', () => {
    fc.assert(
      fc.property(recordArbitrary, fc.integer({ min: 0, max: 64 }), (record, at) => {
        const file = placed(record, at);
        const frame = decodeFrame(file, at);
        assert.equal(frame.kind, 'valid');
        if (frame.kind !== 'valid') return;
        assert.equal(frame.nextOffset, file.byteLength);
        assert.deepEqual(decodeRecordPayload(frame.typeCode, frame.payload), record);
      }),
      { numRuns: 400 },
    );
  });

  test('any single-byte corruption of a record is detected', () => {
    fc.assert(
      fc.property(recordArbitrary, fc.nat(), fc.integer({ min: 1, max: 255 }), (record, position, mask) => {
        const frame = encodeFrame(encodeRecordPayload(record), 0);
        const at = position % frame.byteLength;
        frame[at]! ^= mask;
        assert.notEqual(decodeFrame(frame, 0).kind, 'valid', `flipping byte ${at} with ${mask} went unnoticed`);
      }),
      { numRuns: 2000 },
    );
  });

  test('a record cut short anywhere reads as incomplete (a torn write), never as valid', () => {
    fc.assert(
      fc.property(recordArbitrary, fc.nat(), (record, cut) => {
        const frame = encodeFrame(encodeRecordPayload(record), 0);
        const kept = frame.subarray(0, cut % frame.byteLength);
        const result = decodeFrame(kept, 0);
        // A header cut short may also show an impossible type; either way it is not valid.
        assert.notEqual(result.kind, 'valid');
        if (kept.byteLength >= RECORD_HEADER_BYTES) assert.equal(result.kind, 'incomplete');
      }),
      { numRuns: 500 },
    );
  });

  test('a valid record moved to another offset does not validate there', () => {
    fc.assert(
      fc.property(recordArbitrary, offset, (record, writtenAt) => {
        fc.pre(writtenAt !== 16);
        const frame = encodeFrame(encodeRecordPayload(record), writtenAt);
        const file = new Uint8Array(16 + frame.byteLength);
        file.set(frame, 16);
        assert.notEqual(decodeFrame(file, 16).kind, 'valid');
        assert.equal(findValidFrame(file, 0), -1);
      }),
      { numRuns: 300 },
    );
  });

  test('findValidFrame finds the next valid record and skips garbage and zeros', () => {
    const record: WalRecord = { type: 'snapshotMarker', marker: { index: 5, term: 2 } };
    const frame = encodeFrame(encodeRecordPayload(record), 100);
    const file = new Uint8Array(100 + frame.byteLength);
    for (let i = 0; i < 60; i++) file[i] = (i * 37) & 0xff;
    file.set(frame, 100);
    assert.equal(findValidFrame(file, 0), 100);
    assert.equal(findValidFrame(file, 101), -1);
    assert.equal(findValidFrame(new Uint8Array(4096), 0), -1);
  });

  test('a valid frame whose payload does not decode is reported, not misread', () => {
    const frame = encodeFrame({ typeCode: 3, payload: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0]) }, 0);
    const result = decodeFrame(frame, 0);
    assert.equal(result.kind, 'valid');
    if (result.kind === 'valid') assert.throws(() => decodeRecordPayload(result.typeCode, result.payload), /entry count 200 exceeds the record/);
  });
});

describe('WalReplay', () => {
  test('a later batch with lower indexes replaces the suffix (last writer wins)', () => {
    const replay = new WalReplay();
    assert.equal(replay.applyEntries(entries(1, 10, 1)), undefined);
    assert.equal(replay.applyEntries(entries(4, 5, 2)), undefined);
    assert.equal(replay.applyEntries(entries(6, 6, 3)), undefined);
    const after = replay.entriesAfter({ index: 0, term: 0 });
    assert.equal(after.kind, 'entries');
    if (after.kind === 'entries') assert.deepEqual(indexTerms(after.entries), [[1, 1], [2, 1], [3, 1], [4, 2], [5, 2], [6, 3]]);
  });

  test('a gap is impossible without a snapshot marker, and fine after one', () => {
    const replay = new WalReplay();
    replay.applyEntries(entries(1, 3, 1));
    assert.match(replay.applyEntries(entries(6, 6, 1)) ?? '', /jump from index 3 to 6/);
    assert.equal(replay.applyMarker({ index: 9, term: 2 }), undefined);
    assert.equal(replay.applyEntries(entries(10, 11, 2)), undefined);
    const after = replay.entriesAfter({ index: 9, term: 2 });
    assert.deepEqual(after.kind === 'entries' && indexTerms(after.entries), [[10, 2], [11, 2]]);
    // From the older (zero) snapshot the entries are no longer complete.
    assert.deepEqual(replay.entriesAfter({ index: 0, term: 0 }), { kind: 'missing', firstIndex: 10 });
  });

  test('a marker that conflicts with the log drops the log from there (Raft discards it)', () => {
    const replay = new WalReplay();
    replay.applyEntries(entries(1, 8, 1));
    replay.applyMarker({ index: 6, term: 3 });
    const after = replay.entriesAfter({ index: 6, term: 3 });
    assert.deepEqual(after, { kind: 'entries', entries: [] });
    assert.equal(replay.applyEntries(entries(7, 7, 3)), undefined);
    assert.deepEqual(indexTerms((replay.entriesAfter({ index: 6, term: 3 }) as { entries: Entry[] }).entries), [[7, 3]]);
  });

  test('a marker that matches the log keeps it; a repeated marker is idempotent; markers never go back', () => {
    const replay = new WalReplay();
    replay.applyEntries(entries(1, 8, 1));
    replay.applyMarker({ index: 5, term: 1 });
    replay.applyMarker({ index: 5, term: 1 });
    assert.deepEqual(replay.markers, [{ index: 5, term: 1 }]);
    assert.deepEqual(indexTerms((replay.entriesAfter({ index: 5, term: 1 }) as { entries: Entry[] }).entries), [[6, 1], [7, 1], [8, 1]]);
    assert.match(replay.applyMarker({ index: 4, term: 1 }) ?? '', /follows one at 5/);
  });
});
