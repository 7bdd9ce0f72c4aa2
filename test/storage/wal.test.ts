// Tests of the WAL on the power-loss file system: round trips, rollover, release, Raft truncation,
// group commit, recovery from torn tails and refusal of corruption, foreign and newer data dirs,
// and what a full disk does.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { Wal, parseSegmentName } from '../../src/storage/wal.ts';
import { StorageBugError } from '../../src/storage/errors.ts';
import { WAL_FORMAT_VERSION, decodeFrame, encodeFrame, isZeroTail, metadataPayload } from '../../src/storage/wal-record.ts';
import type { PowerLossFileSystem } from './power-loss-file-system.ts';
import { IDENTITY, WAL_DIR, newFileSystem, entries, entry, hardState, indexTerms, quietOptions, storageError } from './fixtures.ts';
import type { WalOptions } from '../../src/storage/wal.ts';

async function newWal(options: WalOptions = {}): Promise<{ fs: PowerLossFileSystem; wal: Wal }> {
  const fs = newFileSystem();
  const wal = await Wal.create(fs, WAL_DIR, IDENTITY, quietOptions(options));
  return { fs, wal };
}

async function reopen(fs: PowerLossFileSystem, options: WalOptions = {}) {
  return Wal.open(fs, WAL_DIR, quietOptions({ ...options, expected: IDENTITY }));
}

/** The offsets of the records of a segment file (up to its preallocated zeros). */
function frameOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = [];
  let at = 0;
  while (at < bytes.byteLength && !isZeroTail(bytes, at)) {
    const frame = decodeFrame(bytes, at);
    assert.equal(frame.kind, 'valid', `frame at ${at}`);
    if (frame.kind !== 'valid') break;
    offsets.push(at);
    at = frame.nextOffset;
  }
  return offsets;
}

/** Where the records of a segment file end: its preallocated zeros, if any, follow. */
function recordsEndBytes(bytes: Uint8Array): number {
  const offsets = frameOffsets(bytes);
  const last = decodeFrame(bytes, offsets[offsets.length - 1]!);
  assert.equal(last.kind, 'valid');
  return last.kind === 'valid' ? last.nextOffset : 0;
}

describe('Wal', () => {
  test('round trip: hard states and entries saved come back after reopening', async () => {
    const { fs, wal } = await newWal();
    await wal.save(hardState(1, 0), entries(1, 3, 1));
    await wal.save(hardState(2, 2, 3n), entries(4, 5, 2));
    await wal.save(undefined, entries(6, 6, 2));
    await wal.close();
    const { wal: reopened, state } = await reopen(fs);
    assert.deepEqual(state.hardState, hardState(2, 2, 3n));
    assert.deepEqual(state.entries, [...entries(1, 3, 1), ...entries(4, 6, 2)]);
    assert.deepEqual(state.snapshotMarker, { index: 0, term: 0 });
    assert.equal(state.metadata.clusterId, IDENTITY.clusterId);
    assert.equal(state.metadata.memberId, IDENTITY.memberId);
    assert.equal(state.tornTail, undefined);
    // A reopened WAL keeps appending where it left off.
    await reopened.save(hardState(2, 7, 3n), entries(7, 8, 2));
    await reopened.close();
    const { state: again } = await reopen(fs);
    assert.deepEqual(indexTerms(again.entries).map(([index]) => index), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(again.hardState, hardState(2, 7, 3n));
  });

  test('an empty WAL recovers a zero hard state and no entries', async () => {
    const { fs, wal } = await newWal();
    await wal.close();
    const { state } = await reopen(fs);
    assert.deepEqual(state.hardState, { term: 0, vote: 0n, commit: 0 });
    assert.deepEqual(state.entries, []);
  });

  test('the first segment is named like etcd: sequence and first index in 16 hex digits', async () => {
    const { fs, wal } = await newWal();
    await wal.close();
    assert.deepEqual(fs.listFiles(), [`${WAL_DIR}/0000000000000000-0000000000000001.wal`]);
  });

  test('create refuses a dir that already holds a WAL; open refuses one without', async () => {
    const { fs, wal } = await newWal();
    await wal.close();
    await assert.rejects(Wal.create(fs, WAL_DIR, IDENTITY, quietOptions()), storageError('CONCORD_E_WAL_EXISTS'));
    await assert.rejects(Wal.open(newFileSystem(), WAL_DIR, quietOptions()), storageError('CONCORD_E_WAL_NOT_FOUND'));
  });

  test('segments roll over past segmentSizeBytes, each new one created durably before use', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 1024 });
    for (let index = 1; index <= 60; index++) await wal.save(hardState(1, index - 1), [entry(index, 1, 40)]);
    await wal.close();
    const names = fs.listFiles().map((path) => posix.basename(path));
    assert.ok(names.length >= 3, `expected several segments, got ${names.join(', ')}`);
    const parsed = names.map((name) => parseSegmentName(name)!);
    assert.deepEqual(
      parsed.map((p) => p.sequence),
      parsed.map((_, i) => i),
    );
    for (let i = 1; i < parsed.length; i++) assert.ok(parsed[i]!.firstIndex > parsed[i - 1]!.firstIndex);
    assert.equal(wal.stats.segmentsCreated, names.length);
    // Crash without any torn write: everything acknowledged is there, across segments.
    fs.crash();
    const { state } = await reopen(fs);
    assert.deepEqual(state.entries, Array.from({ length: 60 }, (_, i) => entry(i + 1, 1, 40)));
    assert.deepEqual(state.hardState, hardState(1, 59));
  });

  test('a save with sync: false is written without an fsync; the next synced save makes it durable too', async () => {
    const { fs, wal } = await newWal();
    await wal.save(hardState(1, 0), [entry(1, 1), entry(2, 1)]);
    const fsyncs = wal.stats.fsyncs;
    await wal.save(hardState(1, 2), [], { sync: false });
    assert.equal(wal.stats.fsyncs, fsyncs, 'a commit-index-only hard state costs no fsync');
    fs.crash();
    const { state: lost } = await reopen(fs);
    assert.deepEqual(lost.hardState, hardState(1, 0), 'unsynced, it may be lost in a power failure (Raft learns the commit again)');
    assert.deepEqual(lost.entries.map((e) => e.index), [1, 2], 'what was synced stays');
    const second = await newWal();
    await second.wal.save(hardState(1, 0), [entry(1, 1), entry(2, 1)]);
    await second.wal.save(hardState(1, 2), [], { sync: false });
    await second.wal.save(undefined, [entry(3, 1)]);
    second.fs.crash();
    const { state: kept } = await reopen(second.fs);
    assert.deepEqual(kept.hardState, hardState(1, 2), 'a later fsync covers the unsynced record');
    assert.deepEqual(kept.entries.map((e) => e.index), [1, 2, 3]);
  });

  test('releaseBefore deletes old segments; headers carry the hard state and marker forward', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 512 });
    await wal.save(hardState(3, 0, 2n), []);
    for (let index = 1; index <= 40; index++) await wal.save(undefined, [entry(index, 3, 30)]);
    await wal.saveSnapshotMarker(30, 3);
    for (let index = 41; index <= 45; index++) await wal.save(undefined, [entry(index, 3, 30)]);
    const before = wal.segmentPaths();
    await assert.rejects(wal.releaseBefore(32), (error) => error instanceof StorageBugError);
    const released = await wal.releaseBefore(31);
    assert.ok(released > 0 && released < before.length, `released ${released} of ${before.length}`);
    assert.deepEqual(wal.segmentPaths(), before.slice(released));
    assert.deepEqual(fs.listFiles(), before.slice(released));
    await wal.close();
    const { state } = await reopen(fs);
    assert.deepEqual(state.snapshotMarker, { index: 30, term: 3 });
    assert.deepEqual(state.hardState, hardState(3, 0, 2n)); // saved once, in a segment long gone
    assert.deepEqual(indexTerms(state.entries), indexTerms(entries(31, 45, 3)));
  });

  test('Raft truncation: a later save with lower indexes overwrites the suffix (last writer wins)', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 256 });
    await wal.save(hardState(1, 2), entries(1, 10, 1, 20));
    await wal.save(hardState(2, 2), entries(6, 8, 2));
    await wal.save(undefined, entries(9, 9, 2));
    await wal.save(hardState(3, 3), entries(4, 4, 3)); // and again, in a later segment
    await wal.close();
    const { state } = await reopen(fs);
    assert.deepEqual(indexTerms(state.entries), [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 3],
    ]);
    assert.deepEqual(state.entries[3], entry(4, 3));
    assert.deepEqual(state.hardState, hardState(3, 3));
  });

  test('after a snapshot marker beyond the log, entries continue after the marker', async () => {
    const { fs, wal } = await newWal();
    await wal.save(hardState(1, 5), entries(1, 5, 1));
    await wal.saveSnapshotMarker(20, 4); // a snapshot received from the leader
    await wal.save(hardState(4, 20), entries(21, 22, 4));
    await assert.rejects(wal.save(undefined, entries(30, 30, 4)), (error) => error instanceof StorageBugError);
    await wal.close();
    const { state } = await reopen(fs);
    assert.deepEqual(state.snapshotMarker, { index: 20, term: 4 });
    assert.deepEqual(indexTerms(state.entries), [
      [21, 4],
      [22, 4],
    ]);
    assert.deepEqual(state.snapshotMarkers, [{ index: 20, term: 4 }]);
  });

  test('save rejects entries that are not consecutive or leave a gap', async () => {
    const { wal } = await newWal();
    await assert.rejects(wal.save(undefined, [entry(1, 1), entry(3, 1)]), (error) => error instanceof StorageBugError);
    await assert.rejects(wal.save(undefined, [entry(2, 1)]), (error) => error instanceof StorageBugError);
    await wal.save(undefined, [entry(1, 1)]); // the WAL is still usable
    await wal.close();
  });

  test('a batch larger than maxRecordBytes is split; a single oversized entry is refused without harm', async () => {
    const { fs, wal } = await newWal({ maxRecordBytes: 200 });
    const batch = entries(1, 20, 1, 50);
    await wal.save(hardState(1, 20), batch);
    await assert.rejects(wal.save(undefined, [entry(21, 1, 500)]), storageError('CONCORD_E_WAL_RECORD_TOO_LARGE', /maxRecordBytes 200/));
    await wal.save(undefined, [entry(21, 1, 10)]);
    await wal.close();
    const segment = fs.listFiles()[0]!;
    assert.ok(frameOffsets(fs.fileBytes(segment)).length > 5);
    const { state } = await reopen(fs);
    assert.deepEqual(state.entries, [...batch, entry(21, 1, 10)]);
  });

  test('close waits for queued saves; saves after close are refused', async () => {
    const { fs, wal } = await newWal();
    const pending = [wal.save(undefined, entries(1, 2, 1)), wal.save(hardState(1, 2), entries(3, 3, 1))];
    await wal.close();
    await Promise.all(pending);
    await assert.rejects(wal.save(undefined, entries(4, 4, 1)), storageError('CONCORD_E_WAL_CLOSED'));
    const { state } = await reopen(fs);
    assert.equal(state.entries.length, 3);
  });

  test('unsafeNoFsync warns loudly and issues no fsync', async () => {
    const warnings: string[] = [];
    const fs = newFileSystem();
    const wal = await Wal.create(fs, WAL_DIR, IDENTITY, quietOptions({ unsafeNoFsync: true }, warnings));
    await wal.save(hardState(1, 1), entries(1, 3, 1));
    assert.equal(wal.stats.fsyncs, 0);
    assert.equal(wal.stats.dirFsyncs, 0);
    assert.match(warnings.join('\n'), /UNSAFE.*unsafeNoFsync.*loses acknowledged writes/);
    await wal.close();
  });
});

describe('Wal preallocation', () => {
  test('a new segment is its header and preallocated zeros; appends overwrite them without growing the file', async () => {
    const { fs, wal } = await newWal({ preallocateBytes: 300 });
    const path = wal.segmentPaths()[0]!;
    const headerEnd = recordsEndBytes(fs.fileBytes(path));
    assert.equal(fs.fileBytes(path).byteLength, headerEnd + 300);
    assert.ok(isZeroTail(fs.fileBytes(path), headerEnd));
    await wal.save(hardState(1, 0), [entry(1, 1, 20)]);
    const bytes = fs.fileBytes(path);
    assert.equal(bytes.byteLength, headerEnd + 300, 'the append landed in the zeros: the file kept its size');
    assert.ok(recordsEndBytes(bytes) > headerEnd);
    assert.ok(isZeroTail(bytes, recordsEndBytes(bytes)));
    assert.equal(wal.stats.bytesPreallocated, 300);
    await wal.close();
  });

  test('once the records pass the zeros, the same batch writes more before its fsync, so a power failure keeps them', async () => {
    const { fs, wal } = await newWal({ preallocateBytes: 300 });
    const path = wal.segmentPaths()[0]!;
    let index = 0;
    while (wal.stats.bytesPreallocated === 300) {
      index++;
      await wal.save(hardState(1, index - 1), [entry(index, 1, 60)]);
    }
    assert.equal(wal.stats.bytesPreallocated, 600, 'the save that ran past the zeros wrote 300 more');
    fs.crash();
    const bytes = fs.fileBytes(path);
    const end = recordsEndBytes(bytes);
    assert.ok(end > 300, 'the records went past the first zeros');
    assert.ok(bytes.byteLength > end && isZeroTail(bytes, end), `zeros follow the records durably (records end at ${end}, file of ${bytes.byteLength})`);
    const { state } = await reopen(fs, { preallocateBytes: 300 });
    assert.deepEqual(state.entries, Array.from({ length: index }, (_, i) => entry(i + 1, 1, 60)));
  });

  test('after a torn tail is cut off, the next append preallocates again', async () => {
    const { fs, wal } = await newWal({ preallocateBytes: 300 });
    await wal.save(hardState(1, 0), entries(1, 2, 1, 10));
    await wal.close();
    const path = wal.segmentPaths()[0]!;
    const end = recordsEndBytes(fs.fileBytes(path));
    const handle = await fs.open(path);
    await handle.write(Uint8Array.of(0x12, 0x34, 0x56), end);
    await handle.close();
    const { wal: reopened, state } = await reopen(fs, { preallocateBytes: 300 });
    assert.equal(state.tornTail?.offsetBytes, end);
    assert.equal(fs.fileBytes(path).byteLength, end, 'cut back to the last record, zeros and all');
    await reopened.save(hardState(1, 2), entries(3, 3, 1, 10));
    const bytes = fs.fileBytes(path);
    assert.equal(bytes.byteLength, recordsEndBytes(bytes) + 300, 'zeros follow the new record');
    await reopened.close();
    const { state: again } = await reopen(fs);
    assert.deepEqual(again.entries, entries(1, 3, 1, 10));
  });

  test('a WAL reopened over its zeros finds no torn tail, cuts nothing, and appends after its last record', async () => {
    const { fs, wal } = await newWal({ preallocateBytes: 4096 });
    await wal.save(hardState(1, 0), entries(1, 3, 1, 10));
    await wal.close();
    const path = wal.segmentPaths()[0]!;
    const sizeBefore = fs.fileBytes(path).byteLength;
    const warnings: string[] = [];
    const { wal: reopened, state } = await Wal.open(fs, WAL_DIR, quietOptions({ preallocateBytes: 4096 }, warnings));
    assert.equal(state.tornTail, undefined);
    assert.deepEqual(warnings, []);
    assert.equal(fs.fileBytes(path).byteLength, sizeBefore, 'the zeros stay');
    await reopened.save(hardState(1, 3), entries(4, 5, 1, 10));
    await reopened.close();
    assert.equal(fs.fileBytes(path).byteLength, sizeBefore, 'the new records went into the zeros');
    const { state: again } = await reopen(fs);
    assert.deepEqual(again.entries, entries(1, 5, 1, 10));
  });

  test('a rollover cuts the old segment back to its last record, durably; only the last segment ends in zeros', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 700, preallocateBytes: 500 });
    for (let index = 1; index <= 30; index++) await wal.save(hardState(1, index - 1), [entry(index, 1, 40)]);
    const paths = wal.segmentPaths();
    assert.ok(paths.length >= 3);
    fs.crash();
    for (const path of paths.slice(0, -1)) {
      const bytes = fs.fileBytes(path);
      assert.equal(bytes.byteLength, recordsEndBytes(bytes), `${path} ends at its last record`);
    }
    const last = fs.fileBytes(paths[paths.length - 1]!);
    assert.ok(last.byteLength > recordsEndBytes(last), 'the last segment ends in zeros');
    const { state } = await reopen(fs);
    assert.deepEqual(state.entries, Array.from({ length: 30 }, (_, i) => entry(i + 1, 1, 40)));
  });

  test('the default is 1 MiB; 0 turns preallocation off; a negative, fractional or huge size is refused', async () => {
    const fs = newFileSystem();
    const wal = await Wal.create(fs, WAL_DIR, IDENTITY, { onWarning: () => {} });
    const path = wal.segmentPaths()[0]!;
    assert.equal(fs.fileBytes(path).byteLength, recordsEndBytes(fs.fileBytes(path)) + 1024 * 1024);
    await wal.close();
    const off = await newWal({ preallocateBytes: 0 });
    await off.wal.save(hardState(1, 0), entries(1, 2, 1));
    const offPath = off.wal.segmentPaths()[0]!;
    assert.equal(off.fs.fileBytes(offPath).byteLength, recordsEndBytes(off.fs.fileBytes(offPath)), 'no zeros: the file ends at its last record');
    assert.equal(off.wal.stats.bytesPreallocated, 0);
    await off.wal.close();
    for (const preallocateBytes of [-1, 0.5, 65 * 1024 * 1024]) {
      await assert.rejects(Wal.create(newFileSystem(), WAL_DIR, IDENTITY, quietOptions({ preallocateBytes })), storageError('CONCORD_E_STORAGE_CONFIG_INVALID', /preallocateBytes must be a whole number of bytes from 0 to/));
    }
  });

  test('zeros after the records of an earlier segment are corruption, not its end (a disk that zero-filled its last blocks)', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 700, preallocateBytes: 500 });
    for (let index = 1; index <= 30; index++) await wal.save(hardState(1, index - 1), [entry(index, 1, 40)]);
    await wal.close();
    const first = wal.segmentPaths()[0]!;
    const offsets = frameOffsets(fs.fileBytes(first));
    const lastRecord = offsets[offsets.length - 1]!;
    const zeroed = fs.fileBytes(first).slice();
    zeroed.fill(0, lastRecord);
    const handle = await fs.open(first);
    await handle.write(zeroed, 0);
    await handle.close();
    await assert.rejects(reopen(fs), (error: unknown) => {
      assert.ok(storageError('CONCORD_E_WAL_CORRUPT')(error));
      assert.equal((error as { offsetBytes: number }).offsetBytes, lastRecord);
      return true;
    });
  });

  test('a byte that is not zero among the zeros of the last segment is a torn write there, cut off', async () => {
    const { fs, wal } = await newWal({ preallocateBytes: 500 });
    await wal.save(hardState(1, 0), entries(1, 3, 1, 10));
    await wal.close();
    const path = wal.segmentPaths()[0]!;
    const bytes = fs.fileBytes(path);
    const end = recordsEndBytes(bytes);
    fs.corruptByte(path, bytes.byteLength - 1, 0x01);
    const { state } = await reopen(fs);
    assert.equal(state.tornTail?.offsetBytes, end);
    assert.deepEqual(state.entries, entries(1, 3, 1, 10));
  });
});

describe('Wal group commit', () => {
  test('concurrent saves share fsyncs, and each resolves only once an fsync covers it', async () => {
    const { fs, wal } = await newWal();
    const fsyncsBefore = wal.stats.fsyncs;
    const saveCount = 50;
    const imagesAtResolution: PowerLossFileSystem[] = [];
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= saveCount; i++) {
      const save = wal.save(hardState(1, i - 1), [entry(i, 1, i)]);
      // The moment it resolves, pull the plug (on a copy): what survives must include this save.
      saves.push(save.then(() => void (imagesAtResolution[i - 1] = fs.crashedCopy())));
      if (i % 10 === 0) await Promise.resolve(); // let some saves arrive while an fsync is in flight
    }
    await Promise.all(saves);
    const fsyncs = wal.stats.fsyncs - fsyncsBefore;
    assert.ok(fsyncs < saveCount, `${fsyncs} fsyncs for ${saveCount} saves`);
    assert.ok(fsyncs >= 2, 'saves that arrive during an fsync need a second one');
    assert.equal(wal.stats.batches, fsyncs);
    assert.equal(wal.stats.fsyncDurationsMs.count, wal.stats.fsyncs);
    assert.equal(
      wal.stats.fsyncDurationsMs.counts.reduce((a, b) => a + b, 0),
      wal.stats.fsyncs,
    );
    await wal.close();
    for (const [i, image] of imagesAtResolution.entries()) {
      const { state } = await reopen(image);
      assert.ok(state.entries.length >= i + 1, `save ${i + 1} was acknowledged but lost: ${state.entries.length} entries survived`);
      assert.deepEqual(state.entries.slice(0, i + 1), Array.from({ length: i + 1 }, (_, k) => entry(k + 1, 1, k + 1)));
    }
  });

  test('without fsync, a save that resolved can be lost (the check above can fail)', async () => {
    const fs = newFileSystem();
    await (await Wal.create(fs, WAL_DIR, IDENTITY, quietOptions())).close();
    const { wal } = await Wal.open(fs, WAL_DIR, quietOptions({ unsafeNoFsync: true }));
    await wal.save(hardState(1, 0), [entry(1, 1)]);
    const { state } = await reopen(fs.crashedCopy());
    assert.deepEqual(state.entries, []);
    await wal.close();
  });
});

describe('Wal recovery', () => {
  async function walWithSegments(): Promise<{ fs: PowerLossFileSystem; paths: string[] }> {
    const { fs, wal } = await newWal({ segmentSizeBytes: 600 });
    for (let index = 1; index <= 30; index++) await wal.save(hardState(1, index), [entry(index, 1, 40)]);
    await wal.close();
    return { fs, paths: wal.segmentPaths() };
  }

  test('a torn tail of the last segment is cut back to the last good record and fsynced', async () => {
    const { fs, wal } = await newWal();
    await wal.save(hardState(1, 1), entries(1, 4, 1, 10));
    const path = wal.segmentPaths()[0]!;
    const goodBytes = recordsEndBytes(fs.fileBytes(path));
    // The next batch is written but the power fails before its fsync, and only half of it reached
    // the disk; the preallocated zeros after it are still there.
    fs.crashAfterOperations(1);
    await assert.rejects(wal.save(hardState(1, 4), entries(5, 8, 1, 10)));
    await wal.close();
    const image = fs.clone();
    const written = image.fileBytes(path);
    const batchBytes = recordsEndBytes(written) - goodBytes;
    assert.ok(batchBytes > 0);
    const torn = written.slice();
    torn.fill(0, goodBytes + Math.floor(batchBytes / 2), goodBytes + batchBytes);
    const handle = await image.open(path);
    await handle.write(torn, 0);
    await handle.sync();
    await handle.close();
    const warnings: string[] = [];
    const { wal: reopened, state } = await Wal.open(image, WAL_DIR, quietOptions({}, warnings));
    assert.ok(state.tornTail, 'the torn tail is reported');
    assert.equal(state.tornTail.path, path);
    assert.ok(state.tornTail.offsetBytes >= goodBytes);
    assert.match(warnings.join('\n'), /cut a torn write off/);
    assert.ok(indexTerms(state.entries).length >= 4);
    assert.deepEqual(state.entries.slice(0, 4), entries(1, 4, 1, 10));
    // The cut is durable: crash again and reopen without any torn tail.
    await reopened.save(undefined, []);
    await reopened.close();
    const { state: again } = await Wal.open(image.crashedCopy(), WAL_DIR, quietOptions());
    assert.equal(again.tornTail, undefined);
    assert.deepEqual(again.entries, state.entries);
  });

  test('garbage after the last good record of the last segment is a torn tail', async () => {
    const { fs, paths } = await walWithSegments();
    const last = paths[paths.length - 1]!;
    const size = recordsEndBytes(fs.fileBytes(last));
    const handle = await fs.open(last);
    await handle.write(new Uint8Array([0x13, 0, 0, 0, 0x40, 0, 0, 0, 3, 1, 2, 3]), size);
    await handle.close();
    const { state } = await reopen(fs);
    assert.equal(state.tornTail?.offsetBytes, size);
    assert.equal(fs.fileBytes(last).byteLength, size, 'cut back to the last good record, preallocated zeros included');
    assert.equal(state.entries.length, 30);
  });

  test('a flipped byte in the middle of a segment is corruption, named by file and offset', async () => {
    const { fs, paths } = await walWithSegments();
    for (const path of [paths[0]!, paths[paths.length - 1]!]) {
      const image = fs.clone();
      const offsets = frameOffsets(image.fileBytes(path));
      const victim = offsets[2]!; // a record with valid records after it
      image.corruptByte(path, victim + 12, 0x01);
      const problem = storageError('CONCORD_E_WAL_CORRUPT', new RegExp(`${path} is corrupt at byte offset ${victim}: checksum mismatch`));
      await assert.rejects(Wal.open(image, WAL_DIR, quietOptions()), (error) => {
        assert.ok(problem(error));
        assert.equal((error as { offsetBytes: number }).offsetBytes, victim);
        return true;
      });
      // Refusing did not modify the file.
      assert.equal(image.fileBytes(path).byteLength, fs.fileBytes(path).byteLength);
    }
  });

  test('a damaged length field mid-segment is corruption too, even in the last segment', async () => {
    const { fs, paths } = await walWithSegments();
    const last = paths[paths.length - 1]!;
    const victim = frameOffsets(fs.fileBytes(last))[1]!;
    fs.corruptByte(last, victim + 6, 0x10); // makes the record claim far more bytes than the file has
    // With preallocated zeros after it, the longer record may fit in the file and fail its checksum instead.
    await assert.rejects(reopen(fs), storageError('CONCORD_E_WAL_CORRUPT', /(runs .* past the end of the file|checksum mismatch .*), yet a valid record follows/));
  });

  test('a missing segment in the middle is corruption', async () => {
    const { fs, paths } = await walWithSegments();
    await fs.unlink(paths[1]!);
    await assert.rejects(reopen(fs), storageError('CONCORD_E_WAL_CORRUPT', /a segment file is missing/));
  });

  test('a leftover .tmp segment from an interrupted rollover is removed', async () => {
    const { fs, paths } = await walWithSegments();
    const temp = `${WAL_DIR}/00000000000000ff-0000000000000099.wal.tmp`;
    await (await fs.createExclusive(temp)).close();
    const { state } = await reopen(fs);
    assert.equal(state.entries.length, 30);
    assert.deepEqual(fs.listFiles(), paths);
  });

  test('a WAL of another cluster or member is refused without touching it', async () => {
    const { fs } = await walWithSegments();
    const before = fs.listFiles().map((path) => fs.fileBytes(path));
    await assert.rejects(
      Wal.open(fs, WAL_DIR, quietOptions({ expected: { ...IDENTITY, clusterId: 7n } })),
      storageError('CONCORD_E_DATA_DIR_FOREIGN_CLUSTER', /belongs to cluster 0xcdf818194e3a8c32, not 0x7.*Point --data-dir elsewhere/),
    );
    await assert.rejects(
      Wal.open(fs, WAL_DIR, quietOptions({ expected: { ...IDENTITY, memberId: 9n } })),
      storageError('CONCORD_E_DATA_DIR_FOREIGN_MEMBER'),
    );
    assert.deepEqual(
      fs.listFiles().map((path) => fs.fileBytes(path)),
      before,
    );
  });

  test('a WAL written in a newer format is refused with advice', async () => {
    const fs = newFileSystem();
    await fs.mkdirp(WAL_DIR);
    const handle = await fs.createExclusive(`${WAL_DIR}/0000000000000000-0000000000000001.wal`);
    const metadata = { formatVersion: WAL_FORMAT_VERSION + 1, ...IDENTITY, sequence: 0, firstIndex: 1 };
    await handle.write(encodeFrame(metadataPayload(metadata), 0), 0);
    await handle.close();
    await assert.rejects(
      reopen(fs),
      storageError('CONCORD_E_DATA_DIR_NEWER_FORMAT', new RegExp(`format version ${WAL_FORMAT_VERSION + 1}.*written by a newer Concord; upgrade or point --data-dir elsewhere`)),
    );
  });
});

describe('Wal on a full or failing disk', () => {
  for (const kind of ['write', 'sync'] as const) {
    test(`ENOSPC during ${kind}: that save and every later one fail with CONCORD_E_NO_SPACE; acknowledged data survives`, async () => {
      const { fs, wal } = await newWal();
      await wal.save(hardState(1, 2), entries(1, 3, 1, 20));
      fs.injectFault({ code: 'ENOSPC', kinds: [kind] });
      await assert.rejects(wal.save(hardState(1, 3), entries(4, 6, 1, 20)), storageError('CONCORD_E_NO_SPACE', /disk is full/));
      assert.equal(wal.readOnlyError?.code, 'CONCORD_E_NO_SPACE');
      await assert.rejects(wal.save(undefined, entries(4, 4, 1)), storageError('CONCORD_E_NO_SPACE', /read-only.*restart/));
      await assert.rejects(wal.saveSnapshotMarker(1, 1), storageError('CONCORD_E_NO_SPACE'));
      await wal.close();
      // Restart after freeing space: first as a process restart (the page cache survives, with the
      // partial write in it), then after a power failure.
      fs.clearFaults();
      const { wal: restarted, state } = await reopen(fs.clone());
      assert.deepEqual(state.entries.slice(0, 3), entries(1, 3, 1, 20));
      if (kind === 'write') assert.ok(state.tornTail, 'the half-written batch is cut off');
      await restarted.close();
      const { state: afterPowerLoss } = await reopen(fs.crashedCopy());
      assert.deepEqual(afterPowerLoss.entries, entries(1, 3, 1, 20));
      assert.deepEqual(afterPowerLoss.hardState, hardState(1, 2));
    });
  }

  test('EIO from fsync is CONCORD_E_IO and also makes the WAL read-only', async () => {
    const { fs, wal } = await newWal();
    fs.injectFault({ code: 'EIO', kinds: ['sync'], times: 1 });
    await assert.rejects(wal.save(undefined, entries(1, 1, 1)), storageError('CONCORD_E_IO'));
    // The disk recovered, but an fsync that failed may have dropped pages: stay read-only.
    await assert.rejects(wal.save(undefined, entries(1, 1, 1)), storageError('CONCORD_E_IO', /read-only/));
    await wal.close();
  });

  test('ENOSPC while creating a new segment fails the save that needed it', async () => {
    const { fs, wal } = await newWal({ segmentSizeBytes: 100 });
    await wal.save(undefined, entries(1, 5, 1, 20));
    fs.injectFault({ code: 'ENOSPC', kinds: ['write'] });
    await assert.rejects(wal.save(undefined, entries(6, 6, 1)), storageError('CONCORD_E_NO_SPACE'));
    await wal.close();
    fs.clearFaults();
    const { state } = await reopen(fs.crashedCopy());
    assert.deepEqual(state.entries, entries(1, 5, 1, 20));
  });
});
