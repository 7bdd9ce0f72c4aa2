// Hostile files on disk: a real data dir (several WAL segments, snapshots, a released prefix) whose
// files are truncated at every record boundary, bit-flipped, extended with garbage, given a huge
// record length, or replaced by random bytes. recover() must either start (a torn tail of the last
// segment cut off; nothing else lost, nothing invented) or refuse with a coded StorageError naming
// the file: never an uncoded exception, a hang, or an acknowledged entry silently gone.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import type { Entry } from '../../src/consensus/types.ts';
import { emptyKvSnapshot, writeBootstrappedDataDir } from '../../src/server/data-dir-bootstrap.ts';
import { closeDataDir, dataDirLayout, persistSnapshot, recover } from '../../src/storage/data-dir.ts';
import type { RecoverOptions, RecoveredDataDir } from '../../src/storage/data-dir.ts';
import { StorageError } from '../../src/storage/errors.ts';
import { NodeFileSystem } from '../../src/storage/file-system.ts';
import { SnapshotStore } from '../../src/storage/snapshot-store.ts';
import { Wal, parseSegmentName } from '../../src/storage/wal.ts';
import { decodeFrame, decodeRecordPayload, isZeroTail } from '../../src/storage/wal-record.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';
import { IDENTITY, TEST_PREALLOCATE_BYTES, entries } from './fixtures.ts';

const fs = new NodeFileSystem();
const RECOVER_OPTIONS: RecoverOptions = {
  wal: { segmentSizeBytes: 700, preallocateBytes: TEST_PREALLOCATE_BYTES, onWarning: () => {} },
  lock: { isProcessAlive: () => false, unreadableLockGraceMs: 0 },
};
const LAST_INDEX = 60;

interface Frame {
  start: number;
  end: number;
}

interface BaseDataDir {
  dir: string;
  /** Every entry acknowledged by a save, by index. */
  acknowledged: Map<number, Entry>;
  /** Files relative to the data dir, WAL segments in sequence order. */
  walFiles: string[];
  snapFiles: string[];
  frames: Map<string, Frame[]>;
  /** The index the last segment's entries start at (from its name). */
  lastSegmentFirstIndex: number;
  /** Entry index -> the offset where its record ends, for the entries in the last segment. */
  lastSegmentEntryEnds: Map<number, number>;
}

let root: string;
let base: BaseDataDir;

/**
 * A data dir as a member leaves it: the bootstrap snapshot at 1, entries 2..LAST_INDEX saved in
 * batches over several segments, snapshots at 20 and 40 (segments below 20 released).
 */
async function buildBase(dir: string): Promise<BaseDataDir> {
  await writeBootstrappedDataDir(fs, dir, IDENTITY, [{ id: IDENTITY.memberId, name: 'fuzz', peerUrls: ['http://127.0.0.1:2380'] }], emptyKvSnapshot());
  const layout = dataDirLayout(dir);
  const { wal } = await Wal.open(fs, layout.walDir, RECOVER_OPTIONS.wal);
  const snapshots = new SnapshotStore(fs, layout.snapDir);
  const acknowledged = new Map<number, Entry>();
  for (let from = 2; from <= LAST_INDEX; from += 4) {
    const batch = entries(from, Math.min(from + 3, LAST_INDEX), 2, from % 3 === 0 ? 40 : 0);
    await wal.save({ term: 2, vote: IDENTITY.memberId, commit: batch[batch.length - 1]!.index }, batch);
    for (const e of batch) acknowledged.set(e.index, e);
    const last = batch[batch.length - 1]!.index;
    if (last === 21 || last === 41) {
      const at = last - 1;
      await persistSnapshot({ wal, snapshots }, { metadata: { index: at, term: 2, confState: { voters: [IDENTITY.memberId], learners: [] } }, data: new TextEncoder().encode(`state at ${at}`) });
    }
  }
  await wal.close();
  const walFiles = readdirSync(layout.walDir).sort().map((name) => join('member', 'wal', name));
  const snapFiles = readdirSync(layout.snapDir).sort().map((name) => join('member', 'snap', name));
  const frames = new Map<string, Frame[]>();
  const lastSegmentEntryEnds = new Map<number, number>();
  for (const file of walFiles) {
    const bytes = new Uint8Array(readFileSync(join(dir, file)));
    const list: Frame[] = [];
    for (let offset = 0; offset < bytes.byteLength && !isZeroTail(bytes, offset);) {
      const frame = decodeFrame(bytes, offset);
      assert.equal(frame.kind, 'valid');
      if (frame.kind !== 'valid') break;
      list.push({ start: offset, end: frame.nextOffset });
      const record = decodeRecordPayload(frame.typeCode, frame.payload);
      if (file === walFiles[walFiles.length - 1] && record.type === 'entries') {
        for (const e of record.entries) lastSegmentEntryEnds.set(e.index, frame.nextOffset);
      }
      offset = frame.nextOffset;
    }
    frames.set(file, list);
  }
  const lastSegmentFirstIndex = parseSegmentName(basename(walFiles[walFiles.length - 1]!))!.firstIndex;
  return { dir, acknowledged, walFiles, snapFiles, frames, lastSegmentFirstIndex, lastSegmentEntryEnds };
}

type Mutation =
  | { kind: 'truncate'; file: string; atBytes: number }
  | { kind: 'flipBit'; file: string; atBytes: number; bit: number }
  | { kind: 'append'; file: string; bytes: Uint8Array }
  | { kind: 'hugeLength'; file: string; frame: number; lengthBytes: number }
  | { kind: 'replace'; file: string; bytes: Uint8Array };

/** The offset from which the mutation changes the file (its end for an append). */
function firstChangedByte(mutation: Mutation, sizeBytes: number): number {
  switch (mutation.kind) {
    case 'truncate':
    case 'flipBit':
      return mutation.atBytes;
    case 'append':
      return sizeBytes;
    case 'hugeLength':
      return base.frames.get(mutation.file)![mutation.frame]!.start;
    case 'replace':
      return 0;
  }
}

function applyMutation(dir: string, mutation: Mutation): void {
  const path = join(dir, mutation.file);
  switch (mutation.kind) {
    case 'truncate':
      truncateSync(path, mutation.atBytes);
      return;
    case 'flipBit': {
      const bytes = readFileSync(path);
      bytes[mutation.atBytes]! ^= 1 << mutation.bit;
      writeFileSync(path, bytes);
      return;
    }
    case 'append':
      writeFileSync(path, mutation.bytes, { flag: 'a' });
      return;
    case 'hugeLength': {
      const bytes = readFileSync(path);
      bytes.writeUInt32LE(mutation.lengthBytes, base.frames.get(mutation.file)![mutation.frame]!.start + 4);
      writeFileSync(path, bytes);
      return;
    }
    case 'replace':
      writeFileSync(path, mutation.bytes);
      return;
  }
}

/**
 * The highest index that recovery may lose down to: a change inside the last record of the last
 * segment looks like a torn write and may cost that record; a truncation may cost everything after
 * the cut (those writes were never on disk). Anywhere else nothing may be lost.
 */
function lowestAllowedLastIndex(mutation: Mutation): number {
  const lastSegment = base.walFiles[base.walFiles.length - 1]!;
  if (mutation.file !== lastSegment || mutation.kind === 'append') return LAST_INDEX;
  const frames = base.frames.get(lastSegment)!;
  const changedAt = firstChangedByte(mutation, frames[frames.length - 1]!.end);
  const cutFrame = frames.findIndex((frame) => changedAt < frame.end);
  if (cutFrame === -1) return LAST_INDEX;
  if (mutation.kind !== 'truncate' && cutFrame !== frames.length - 1) return LAST_INDEX;
  return lastIndexBefore(frames[cutFrame]!.start);
}

/** The last entry index whose record ends at or before `offsetBytes` of the last segment. */
function lastIndexBefore(offsetBytes: number): number {
  let last = base.lastSegmentFirstIndex - 1;
  for (const [index, endBytes] of base.lastSegmentEntryEnds) if (endBytes <= offsetBytes) last = Math.max(last, index);
  return last;
}

/** What recovery returned is the acknowledged log up to some index, from a snapshot the base saved. */
function checkRecovered(recovered: RecoveredDataDir, mutation: Mutation): void {
  const snapshotIndex = recovered.snapshot?.metadata.index ?? 0;
  assert.ok([1, 20, 40].includes(snapshotIndex), `recovered from a snapshot at ${snapshotIndex}`);
  const lastIndex = recovered.entries[recovered.entries.length - 1]?.index ?? snapshotIndex;
  recovered.entries.forEach((e, i) => {
    assert.equal(e.index, snapshotIndex + 1 + i, 'entries follow the snapshot without a gap');
    assert.deepEqual(e, base.acknowledged.get(e.index), `entry ${e.index} is the one acknowledged`);
  });
  const lowest = lowestAllowedLastIndex(mutation);
  assert.ok(lastIndex >= lowest, `recovery kept entries up to ${lastIndex}, but ${lowest} were acknowledged and ${JSON.stringify(mutation.kind)} at ${mutation.file} may not cost them`);
  assert.ok(recovered.hardState.commit <= lastIndex, `commit ${recovered.hardState.commit} is within the recovered log (last ${lastIndex})`);
}

function checkRefusal(error: unknown, mutation: Mutation, dir: string): void {
  assert.ok(error instanceof StorageError, `an uncoded ${String(error)} for ${describeMutation(mutation)}`);
  assert.match(error.code, /^CONCORD_E_/);
  assert.ok(error.path?.startsWith(dir), `${error.code} names a file of the data dir: ${error.message}`);
  if (error.code === 'CONCORD_E_WAL_CORRUPT') {
    assert.equal(error.path, join(dir, mutation.file), `the corrupt segment named is the mutated one: ${error.message}`);
    assert.ok(error.offsetBytes !== undefined && error.message.includes(`byte offset ${error.offsetBytes}`), error.message);
  }
  assert.ok(!error.message.includes('\n'), 'the message is one line');
}

function describeMutation(mutation: Mutation): string {
  const { bytes: _bytes, ...rest } = mutation as Mutation & { bytes?: Uint8Array };
  return JSON.stringify(rest);
}

let runCount = 0;
/** Applies the mutation to a copy of the base and checks what recovery makes of it. */
async function recoverMutated(mutation: Mutation): Promise<'recovered' | 'refused'> {
  const dir = join(root, `run-${runCount++}`);
  cpSync(base.dir, dir, { recursive: true });
  try {
    applyMutation(dir, mutation);
    let recovered: RecoveredDataDir;
    try {
      recovered = await recover(fs, dir, IDENTITY, RECOVER_OPTIONS);
    } catch (error) {
      checkRefusal(error, mutation, dir);
      return 'refused';
    }
    try {
      checkRecovered(recovered, mutation);
    } finally {
      await closeDataDir(recovered);
    }
    // The repair is durable and complete: a second start finds nothing to cut and the same log.
    const again = await recover(fs, dir, IDENTITY, RECOVER_OPTIONS);
    try {
      assert.equal(again.tornTail, undefined);
      assert.deepEqual(again.entries.map((e) => e.index), recovered.entries.map((e) => e.index));
    } finally {
      await closeDataDir(again);
    }
    return 'recovered';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'concord-data-dir-fuzz-'));
  base = await buildBase(join(root, 'base'));
  assert.ok(base.walFiles.length >= 3, `the base spans several segments (${base.walFiles.join(', ')})`);
  assert.equal(base.snapFiles.length, 3);
});

after(() => rmSync(root, { recursive: true, force: true }));

describe('data dir files under hostile mutation', () => {
  test('the unmutated base recovers every acknowledged entry', async () => {
    const dir = join(root, 'plain');
    cpSync(base.dir, dir, { recursive: true });
    const recovered = await recover(fs, dir, IDENTITY, RECOVER_OPTIONS);
    assert.equal(recovered.snapshot?.metadata.index, 40);
    assert.equal(recovered.entries[recovered.entries.length - 1]?.index, LAST_INDEX);
    await closeDataDir(recovered);
  });

  test('every WAL segment truncated at every record boundary and one byte either side', async (t) => {
    const outcomes = { recovered: 0, refused: 0 };
    for (const file of base.walFiles) {
      const frames = base.frames.get(file)!;
      const cuts = new Set<number>();
      for (const frame of frames) for (const at of [frame.start - 1, frame.start, frame.start + 1, frame.end - 1]) if (at >= 0) cuts.add(at);
      for (const atBytes of cuts) outcomes[await recoverMutated({ kind: 'truncate', file, atBytes })]++;
    }
    // Cuts in the last segment recover (a torn tail); cuts in earlier ones are refused.
    assert.ok(outcomes.recovered > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
    t.diagnostic(`truncations: ${outcomes.recovered} recovered, ${outcomes.refused} refused`);
  });

  test('a record length set huge in any record of any segment', async (t) => {
    const outcomes = { recovered: 0, refused: 0 };
    for (const file of base.walFiles) {
      for (const [frame] of base.frames.get(file)!.entries()) {
        for (const lengthBytes of [0xffff_ffff, 256 * 1024 * 1024 + 1, 1 << 20]) outcomes[await recoverMutated({ kind: 'hugeLength', file, frame, lengthBytes })]++;
      }
    }
    t.diagnostic(`huge lengths: ${outcomes.recovered} recovered, ${outcomes.refused} refused`);
  });

  test('random bit flips, appended garbage and replaced files, in WAL segments and snapshots', async (t) => {
    const anyFile = fc.constantFrom(...base.walFiles, ...base.snapFiles);
    const sizeOf = (file: string) => readFileSync(join(base.dir, file)).byteLength;
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      anyFile.chain((file) => fc.record({ kind: fc.constant('flipBit' as const), file: fc.constant(file), atBytes: fc.nat({ max: sizeOf(file) - 1 }), bit: fc.nat({ max: 7 }) })),
      anyFile.chain((file) => fc.record({ kind: fc.constant('truncate' as const), file: fc.constant(file), atBytes: fc.nat({ max: sizeOf(file) - 1 }) })),
      fc.record({ kind: fc.constant('append' as const), file: anyFile, bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => new Uint8Array(b.length * 100))) }),
      fc.record({ kind: fc.constant('replace' as const), file: anyFile, bytes: fc.uint8Array({ maxLength: 2048 }) }),
      // A lock file left behind by a crash, holding anything: replaced when stale or unreadable,
      // or a coded refusal (it names another host, or a live process).
      fc.record({
        kind: fc.constant('replace' as const),
        file: fc.constant('concord.lock'),
        bytes: fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.record({ pid: fc.oneof(fc.integer(), fc.string()), hostname: fc.oneof(fc.constant(hostname()), fc.string({ maxLength: 8 })) }, { requiredKeys: [] })
            .map((content) => new TextEncoder().encode(JSON.stringify(content))),
        ),
      }),
    );
    const outcomes = { recovered: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        outcomes[await recoverMutated(m)]++;
      }),
      { numRuns: fuzzRuns(600) },
    );
    assert.ok(outcomes.recovered > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
    t.diagnostic(`random mutations: ${outcomes.recovered} recovered, ${outcomes.refused} refused`);
  });

  test('regression: a segment cut at a record boundary is named as the corrupt one, not the segment after it', async () => {
    // Found by this fuzzing: such a cut reads as a complete segment, and recovery blamed the next
    // segment ("entries jump from index 21 to 34"), sending the operator to the wrong file.
    const file = base.walFiles[base.walFiles.length - 2]!;
    const bytes = readFileSync(join(base.dir, file));
    const lastEntries = base.frames.get(file)!.filter((frame) => bytes[frame.start + 8] === 3).pop()!;
    const dir = join(root, 'cut-at-boundary');
    cpSync(base.dir, dir, { recursive: true });
    truncateSync(join(dir, file), lastEntries.start);
    await assert.rejects(recover(fs, dir, IDENTITY, RECOVER_OPTIONS), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'CONCORD_E_WAL_CORRUPT');
      assert.equal(error.path, join(dir, file));
      assert.equal(error.offsetBytes, lastEntries.start);
      assert.match(error.message, /but the next segment starts at entry \d+: its end is missing/);
      return true;
    });
  });

  test('regression: a bootstrapped data dir whose only snapshot is damaged is refused, not a Raft crash', async () => {
    // Found by this fuzzing: the WAL's hard state commits index 1 (the bootstrap snapshot) and holds
    // no entries; with that snapshot unreadable, recovery returned an empty log with commit 1 and
    // Raft threw "hard state commit 1 is out of range [0, 0]" (a bug error with a stack trace).
    const dir = join(root, 'bootstrap-only');
    await writeBootstrappedDataDir(fs, dir, IDENTITY, [{ id: IDENTITY.memberId, name: 'fuzz', peerUrls: ['http://127.0.0.1:2380'] }], emptyKvSnapshot());
    const snapDir = dataDirLayout(dir).snapDir;
    const snapPath = join(snapDir, readdirSync(snapDir)[0]!);
    const bytes = readFileSync(snapPath);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(snapPath, bytes);
    await assert.rejects(recover(fs, dir, IDENTITY, RECOVER_OPTIONS), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'CONCORD_E_WAL_MISSING_ENTRIES');
      assert.match(error.message, /committed, but the readable snapshots and the WAL hold entries only up to 0 \(unreadable: .*0000000000000001-0000000000000001\.snap\)/);
      return true;
    });
    // The lock was released: a fixed data dir can be started at once.
    assert.deepEqual(readdirSync(dir).filter((name) => name.endsWith('.lock')), []);
  });
});
