// The write-ahead log: Raft's hard state, entries and snapshot markers, appended to segment files
// under <dataDir>/member/wal/ and fsynced before a save is acknowledged.
//
// Segments are named <sequence>-<firstIndex>.wal with both numbers as 16 hex digits (as in etcd):
// the sequence counts segments from 0, and firstIndex is the index that followed the last entry
// written before the segment was created. Every segment starts with a metadata record (format
// version, cluster id, member id, sequence, first index), then the latest hard state and snapshot
// marker, so that any suffix of the segments is self-describing once older ones are released. A
// segment is created under a .tmp name, written, fsynced, renamed and its directory fsynced before
// any entry goes into it: a segment with its final name always has a durable header.
//
// Group commit: save() encodes its records and queues them. One writer drains the queue: it takes
// every queued save (up to maxBatchBytes), writes them with one write and covers them with one
// fsync, then resolves them all. Saves that arrive while that fsync is in flight form the next
// batch. So a save resolves only after an fsync that started after its bytes were written. The
// queue itself is bounded by the caller: the server's Raft loop waits for each Ready's save before
// it produces the next one, so at most a few saves are ever queued.
//
// Failures: a failed write or fsync (ENOSPC, EIO) rejects the batch and turns the WAL read-only:
// every later save is rejected with the same code. Nothing acknowledged is lost, because only what
// an fsync covered was acknowledged; the partial tail that the failed write may have left is cut
// off by recovery on the next start.
//
// Preallocation: the segment being written is kept ahead of its records with zeros
// (preallocateBytes, 1 MiB by default). They are written and fsynced with the segment's header,
// and written again by the batch whose records run past them, before that batch's fsync. An append
// then overwrites blocks the file already has, within its size, so its fsync flushes data alone:
// appending to a growing file makes every fsync also commit the new size and block allocation to
// the file system's journal, which measured 20-35 % slower per fsync on ext4 here (etcd
// preallocates its segments for the same reason). So the last segment's records end where every
// remaining byte of the file is zero. A rollover cuts the old segment back to its last record and
// fsyncs it before the next segment exists, so in any other segment zeros are a bad record, as
// before (a disk that zero-fills blocks is not mistaken for a clean end), and a build that knows
// nothing of preallocation reads the zeros at the end of the last segment as a torn write and cuts
// them off, losing nothing. The zeros cost disk space: a full disk refuses writes up to 1 MiB
// sooner.
//
// Recovery (Wal.open): segments are read in sequence order and their records replayed (see
// wal-replay.ts). A bad record at the tail of the last segment with nothing valid after it is a
// write that a crash interrupted: the file is cut back to the last good record and fsynced. A bad
// record anywhere else (or one followed by valid records) is corruption: CONCORD_E_WAL_CORRUPT,
// naming the file and the byte offset. The limit of this rule: damage to the very last record of
// the last segment looks exactly like a torn write and is truncated, as in etcd.

import { join, dirname } from 'node:path';
import type { Entry, HardState } from '../consensus/types.ts';
import { StorageBugError, StorageError, checkPositiveLimit, isStorageError } from './errors.ts';
import type { FileHandle, FileSystem } from './file-system.ts';
import { DecodeError } from './binary-codec.ts';
import { FsyncPlacement } from './fsync-placement.ts';
import {
  ENTRIES_PAYLOAD_HEADER_BYTES,
  ENTRY_OVERHEAD_BYTES,
  NewerFormatError,
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_LIMIT,
  WAL_FORMAT_VERSION,
  decodeFrame,
  decodeRecordPayload,
  entriesPayload,
  findValidFrame,
  frameSizeBytes,
  hardStatePayload,
  isZeroTail,
  metadataPayload,
  snapshotMarkerPayload,
  writeFrame,
} from './wal-record.ts';
import type { RecordPayload, SegmentMetadata, SnapshotMarker, WalIdentity, WalRecord } from './wal-record.ts';
import { WalReplay, ZERO_MARKER } from './wal-replay.ts';

export type { SnapshotMarker, WalIdentity, SegmentMetadata } from './wal-record.ts';

const MiB = 1024 * 1024;

export interface WalOptions {
  /** A segment is closed once it holds this many bytes (it may exceed it by one batch). Default 64 MiB. */
  segmentSizeBytes?: number;
  /** The largest record written; larger entry batches are split, a larger single entry is refused. Default 16 MiB. */
  maxRecordBytes?: number;
  /** A group-commit batch stops taking saves once it holds this many bytes (one save is never split). Default 64 MiB. */
  maxBatchBytes?: number;
  /**
   * Zeros kept written ahead of the records (see Preallocation above), so that an append's fsync
   * covers data only. Default 1 MiB; 0 turns preallocation off (every append grows the file).
   */
  preallocateBytes?: number;
  /**
   * A batch of at most this many log entries, after a run of fast fsyncs, waits for its fsync on
   * the event loop's thread instead of the thread pool (see fsync-placement.ts). Default 8; 0 never
   * does. Entries, not records: one record holds up to maxRecordBytes of entries, so a batch of
   * hundreds of writes can be one record.
   */
  onThreadFsyncMaxEntries?: number;
  /** An fsync slower than this many milliseconds sends the next ones to the thread pool. Default 2. */
  onThreadFsyncMaxMs?: number;
  /** Skips every fsync. For benchmarks and for the test that proves fsync matters; never in production. */
  unsafeNoFsync?: boolean;
  /** Where warnings go (unsafeNoFsync, a truncated torn tail). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Milliseconds, for the fsync duration histogram. Default: performance.now. */
  clockMs?: () => number;
}

/** The most zeros kept ahead of the records: one buffer of this size is held per WAL. */
const PREALLOCATE_BYTES_LIMIT = 64 * MiB;

export const WAL_DEFAULTS = {
  segmentSizeBytes: 64 * MiB,
  maxRecordBytes: 16 * MiB,
  maxBatchBytes: 64 * MiB,
  preallocateBytes: 1 * MiB,
  onThreadFsyncMaxEntries: 8,
  onThreadFsyncMaxMs: 2,
} as const;

interface ResolvedWalOptions {
  segmentSizeBytes: number;
  maxRecordBytes: number;
  maxBatchBytes: number;
  /** preallocateBytes of zeros, written whenever the WAL preallocates; never modified. */
  zeros: Uint8Array;
  onThreadFsyncMaxEntries: number;
  onThreadFsyncMaxMs: number;
  unsafeNoFsync: boolean;
  onWarning: (message: string) => void;
  clockMs: () => number;
}

function resolveOptions(options: WalOptions): ResolvedWalOptions {
  const preallocateBytes = options.preallocateBytes ?? WAL_DEFAULTS.preallocateBytes;
  if (!Number.isSafeInteger(preallocateBytes) || preallocateBytes < 0 || preallocateBytes > PREALLOCATE_BYTES_LIMIT) {
    throw new StorageError(
      'CONCORD_E_STORAGE_CONFIG_INVALID',
      `preallocateBytes must be a whole number of bytes from 0 to ${PREALLOCATE_BYTES_LIMIT}, got ${preallocateBytes}`,
    );
  }
  const resolved: ResolvedWalOptions = {
    segmentSizeBytes: options.segmentSizeBytes ?? WAL_DEFAULTS.segmentSizeBytes,
    maxRecordBytes: options.maxRecordBytes ?? WAL_DEFAULTS.maxRecordBytes,
    maxBatchBytes: options.maxBatchBytes ?? WAL_DEFAULTS.maxBatchBytes,
    zeros: new Uint8Array(preallocateBytes),
    onThreadFsyncMaxEntries: options.onThreadFsyncMaxEntries ?? WAL_DEFAULTS.onThreadFsyncMaxEntries,
    onThreadFsyncMaxMs: options.onThreadFsyncMaxMs ?? WAL_DEFAULTS.onThreadFsyncMaxMs,
    unsafeNoFsync: options.unsafeNoFsync ?? false,
    onWarning: options.onWarning ?? ((message) => process.emitWarning(message, { code: 'CONCORD_W_STORAGE' })),
    clockMs: options.clockMs ?? (() => performance.now()),
  };
  checkPositiveLimit(resolved.segmentSizeBytes, 'segmentSizeBytes');
  checkPositiveLimit(resolved.maxRecordBytes, 'maxRecordBytes', RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_LIMIT);
  checkPositiveLimit(resolved.maxBatchBytes, 'maxBatchBytes');
  if (!Number.isSafeInteger(resolved.onThreadFsyncMaxEntries) || resolved.onThreadFsyncMaxEntries < 0) {
    throw new StorageError('CONCORD_E_STORAGE_CONFIG_INVALID', `onThreadFsyncMaxEntries must be a whole number of entries, 0 or more, got ${resolved.onThreadFsyncMaxEntries}`);
  }
  if (!(resolved.onThreadFsyncMaxMs > 0) || !Number.isFinite(resolved.onThreadFsyncMaxMs)) {
    throw new StorageError('CONCORD_E_STORAGE_CONFIG_INVALID', `onThreadFsyncMaxMs must be a positive number of milliseconds, got ${resolved.onThreadFsyncMaxMs}`);
  }
  const smallestEntriesRecord = RECORD_HEADER_BYTES + ENTRIES_PAYLOAD_HEADER_BYTES + ENTRY_OVERHEAD_BYTES;
  if (resolved.maxRecordBytes < smallestEntriesRecord) {
    throw new StorageError('CONCORD_E_STORAGE_CONFIG_INVALID', `maxRecordBytes must be at least ${smallestEntriesRecord}, got ${resolved.maxRecordBytes}`);
  }
  if (resolved.unsafeNoFsync) {
    resolved.onWarning(
      'UNSAFE: the WAL runs with unsafeNoFsync: it never fsyncs, so a power failure or OS crash loses acknowledged ' +
        'writes and can leave the data dir unrecoverable. Use it only for benchmarks and tests.',
    );
  }
  return resolved;
}

// ---- segment names ----

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const TEMP_SUFFIX = '.tmp';

export function segmentName(sequence: number, firstIndex: number): string {
  return `${sequence.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

export function parseSegmentName(name: string): { sequence: number; firstIndex: number } | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return undefined;
  const sequence = Number.parseInt(match[1]!, 16);
  const firstIndex = Number.parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(sequence) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { sequence, firstIndex };
}

interface SegmentInfo {
  sequence: number;
  firstIndex: number;
  path: string;
}

async function listSegments(fs: FileSystem, dir: string): Promise<{ segments: SegmentInfo[]; tempNames: string[] }> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return { segments: [], tempNames: [] };
    throw error;
  }
  const segments: SegmentInfo[] = [];
  const tempNames: string[] = [];
  for (const name of names) {
    if (name.endsWith(`.wal${TEMP_SUFFIX}`)) tempNames.push(name);
    const parsed = parseSegmentName(name);
    if (parsed) segments.push({ ...parsed, path: join(dir, name) });
  }
  segments.sort((a, b) => a.sequence - b.sequence);
  return { segments, tempNames };
}

// ---- stats ----

/** Upper bounds of the fsync duration buckets (as etcd's wal_fsync_duration_seconds: 1 ms to 8 s). */
export const FSYNC_BUCKET_UPPER_BOUNDS_MS: readonly number[] = Array.from({ length: 14 }, (_, i) => 2 ** i);

export class DurationHistogram {
  readonly upperBoundsMs: readonly number[];
  /** counts[i] observations fell in (upperBoundsMs[i-1], upperBoundsMs[i]]; the last slot is +Inf. */
  readonly counts: number[];
  count = 0;
  sumMs = 0;

  constructor(upperBoundsMs: readonly number[]) {
    this.upperBoundsMs = upperBoundsMs;
    this.counts = new Array<number>(upperBoundsMs.length + 1).fill(0);
  }

  observe(durationMs: number): void {
    let bucket = this.upperBoundsMs.findIndex((bound) => durationMs <= bound);
    if (bucket === -1) bucket = this.upperBoundsMs.length;
    this.counts[bucket]!++;
    this.count++;
    this.sumMs += durationMs;
  }
}

export interface WalStats {
  saves: number;
  /** Group-commit batches written (each covered by one fsync). */
  batches: number;
  /** File fsyncs: one per batch, one per new segment header, one per tail truncation. */
  fsyncs: number;
  /** Of the batches' fsyncs, those that waited on the event loop's thread (see fsync-placement.ts). */
  fsyncsOnThisThread: number;
  dirFsyncs: number;
  bytesWritten: number;
  /** Zeros written ahead of the records (preallocateBytes), not counted in bytesWritten. */
  bytesPreallocated: number;
  segmentsCreated: number;
  segmentsReleased: number;
  fsyncDurationsMs: DurationHistogram;
}

function newStats(): WalStats {
  return {
    saves: 0,
    batches: 0,
    fsyncs: 0,
    fsyncsOnThisThread: 0,
    dirFsyncs: 0,
    bytesWritten: 0,
    bytesPreallocated: 0,
    segmentsCreated: 0,
    segmentsReleased: 0,
    fsyncDurationsMs: new DurationHistogram(FSYNC_BUCKET_UPPER_BOUNDS_MS),
  };
}

// ---- open ----

export interface WalOpenOptions extends WalOptions {
  /** Refuse a WAL written for another cluster or member. */
  expected?: WalIdentity;
  /**
   * The snapshot the caller loaded; the entries after it are returned. A function receives every
   * marker in the WAL (oldest first) and returns the one it could load a snapshot for. Default:
   * the newest marker.
   */
  snapshot?: SnapshotMarker | ((markers: readonly SnapshotMarker[]) => Promise<SnapshotMarker>);
}

export interface TornTail {
  path: string;
  offsetBytes: number;
  droppedBytes: number;
  reason: string;
}

export interface WalState {
  /** The last segment's metadata (the identity is the same in every segment). */
  metadata: SegmentMetadata;
  /** The latest hard state; all zero if none was ever saved. */
  hardState: HardState;
  /** The snapshot the entries follow ({0, 0} if none). */
  snapshotMarker: SnapshotMarker;
  /** Entries after snapshotMarker.index, consecutive, with overwritten suffixes resolved. */
  entries: Entry[];
  /** Every marker still in the WAL, oldest first. */
  snapshotMarkers: SnapshotMarker[];
  /** Set when recovery cut off a torn write at the end of the last segment. */
  tornTail: TornTail | undefined;
}

interface WriterView {
  hardState: HardState | undefined;
  marker: SnapshotMarker | undefined;
  /** The last entry index (or a snapshot marker beyond it). */
  lastIndex: number;
}

interface OpenSegment extends SegmentInfo {
  handle: FileHandle;
  /** Where the records end: the next append goes here. */
  sizeBytes: number;
  /** The end of the zeros written ahead of the records (the file's size); at least sizeBytes. */
  preallocatedEndBytes: number;
}

interface SaveJob {
  kind: 'records';
  records: RecordPayload[];
  /** Log entries in the records (a record holds up to maxRecordBytes of them). */
  entries: number;
  sizeBytes: number;
  view: WriterView;
  /** Whether the save must be on disk before it resolves (false: a later fsync will cover it). */
  sync: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface ReleaseJob {
  kind: 'release';
  index: number;
  resolve: (released: number) => void;
  reject: (error: unknown) => void;
}

type Job = SaveJob | ReleaseJob;

function corrupt(path: string, offsetBytes: number, problem: string): StorageError {
  return new StorageError(
    'CONCORD_E_WAL_CORRUPT',
    `WAL segment ${path} is corrupt at byte offset ${offsetBytes}: ${problem}. This is not a torn write from a crash. ` +
      'Restore the data dir from a backup, or remove this member from the cluster and add it back with an empty data dir.',
    { path, offsetBytes },
  );
}

function newerFormat(path: string, version: number): StorageError {
  return new StorageError(
    'CONCORD_E_DATA_DIR_NEWER_FORMAT',
    `${path} has WAL format version ${version}, but this build reads up to ${WAL_FORMAT_VERSION}: it was written by a newer Concord; upgrade or point --data-dir elsewhere`,
    { path },
  );
}

function hex(id: bigint): string {
  return `0x${id.toString(16)}`;
}

export class Wal {
  readonly dir: string;
  readonly stats: WalStats;
  private readonly fs: FileSystem;
  private readonly identity: WalIdentity;
  private readonly options: ResolvedWalOptions;
  private segments: SegmentInfo[];
  private current: OpenSegment;
  /** The state after every save queued so far: what save() checks new entries against. */
  private queuedView: WriterView;
  /** The state after every batch written so far: what a new segment's header repeats. */
  private writtenView: WriterView;
  private readonly queue: Job[] = [];
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private failure: StorageError | undefined;
  private closed = false;
  private readonly fsyncPlacement: FsyncPlacement;

  private constructor(
    fs: FileSystem,
    dir: string,
    identity: WalIdentity,
    options: ResolvedWalOptions,
    stats: WalStats,
    segments: SegmentInfo[],
    current: OpenSegment,
    view: WriterView,
  ) {
    this.fs = fs;
    this.stats = stats;
    this.dir = dir;
    this.identity = identity;
    this.options = options;
    this.segments = segments;
    this.current = current;
    this.queuedView = view;
    this.writtenView = view;
    this.fsyncPlacement = new FsyncPlacement(options);
  }

  /** True if `dir` holds at least one WAL segment. */
  static async exists(fs: FileSystem, dir: string): Promise<boolean> {
    return (await listSegments(fs, dir)).segments.length > 0;
  }

  /** Creates a new, empty WAL in `dir` (created if missing). Refuses a dir that already has one. */
  static async create(fs: FileSystem, dir: string, identity: WalIdentity, options: WalOptions = {}): Promise<Wal> {
    const resolved = resolveOptions(options);
    await fs.mkdirp(dir);
    const { segments, tempNames } = await listSegments(fs, dir);
    if (segments.length > 0) {
      throw new StorageError('CONCORD_E_WAL_EXISTS', `${dir} already holds a WAL (${segments.length} segments); open it instead of creating one`, { path: dir });
    }
    for (const name of tempNames) await fs.unlink(join(dir, name));
    const view: WriterView = { hardState: undefined, marker: undefined, lastIndex: 0 };
    const stats = newStats();
    const current = await createSegment(fs, dir, identity, 0, view, resolved, stats);
    // The WAL directory itself may be new: make its name durable in the parent too.
    await syncDir(fs, dirname(dir), resolved, stats);
    return new Wal(fs, dir, identity, resolved, stats, [current], current, view);
  }

  /** Reads the WAL in `dir`, cuts off a torn tail, and returns it ready to append, with the recovered state. */
  static async open(fs: FileSystem, dir: string, options: WalOpenOptions = {}): Promise<{ wal: Wal; state: WalState }> {
    const resolved = resolveOptions(options);
    const stats = newStats();
    const { segments, tempNames } = await listSegments(fs, dir);
    if (segments.length === 0) {
      throw new StorageError('CONCORD_E_WAL_NOT_FOUND', `no WAL segments in ${dir}; create a WAL for a new member instead`, { path: dir });
    }
    const replay = new WalReplay();
    let metadata: SegmentMetadata | undefined;
    let tornTail: TornTail | undefined;
    let tailSizeBytes = 0;
    let tailFileBytes = 0;
    for (const [position, segment] of segments.entries()) {
      const expectedSequence = segments[0]!.sequence + position;
      if (segment.sequence !== expectedSequence) {
        throw corrupt(segment.path, 0, `its sequence is ${segment.sequence} where ${expectedSequence} was expected: a segment file is missing`);
      }
      const isLast = position === segments.length - 1;
      const previous = metadata;
      const result = await replaySegment(fs, segment, isLast, replay, (found) => checkSegmentMetadata(segment, found, previous, options.expected));
      metadata = result.metadata;
      tornTail = result.tornTail;
      tailSizeBytes = result.sizeBytes;
      tailFileBytes = result.fileBytes;
      const next = segments[position + 1];
      // A segment cut at a record boundary reads as complete; the next one's name says where the
      // log stood when it was created, so a shortfall is blamed on the segment that lost its end.
      if (next && next.sequence === segment.sequence + 1 && replay.lastIndex() < next.firstIndex - 1) {
        throw corrupt(segment.path, result.sizeBytes, `it ends at entry ${replay.lastIndex()}, but the next segment starts at entry ${next.firstIndex}: its end is missing`);
      }
    }
    const marker = await chooseMarker(replay, options.snapshot, dir);
    const after = replay.entriesAfter(marker);
    if (after.kind === 'missing') {
      throw new StorageError(
        'CONCORD_E_WAL_MISSING_ENTRIES',
        `the WAL in ${dir} starts at entry ${after.firstIndex}, but recovery needs the entries after snapshot index ${marker.index}; ` +
          'a newer snapshot is probably unreadable. Restore the data dir from a backup, or remove this member and add it back with an empty data dir.',
        { path: dir },
      );
    }
    // Only now that everything checked out is anything repaired: a data dir that is refused
    // (another cluster's, a newer format, corrupt) is left exactly as it was found. A .tmp segment
    // is one whose creation a crash interrupted; it never held an acknowledged record.
    for (const name of tempNames) await fs.unlink(join(dir, name));
    if (tornTail) {
      await truncateTail(fs, tornTail.path, tornTail.offsetBytes, resolved, stats);
      resolved.onWarning(`WAL recovery cut a torn write off ${tornTail.path} at byte ${tornTail.offsetBytes} (${tornTail.droppedBytes} bytes: ${tornTail.reason})`);
    }
    const last = segments[segments.length - 1]!;
    const handle = await fs.open(last.path);
    const view: WriterView = {
      hardState: replay.hasHardState ? replay.hardState : undefined,
      marker: replay.latestMarker.index > 0 ? replay.latestMarker : undefined,
      lastIndex: replay.lastIndex(),
    };
    const identity = { clusterId: metadata!.clusterId, memberId: metadata!.memberId };
    // A torn tail was cut off: the file ends at the last good record, and the next append preallocates again.
    const preallocatedEndBytes = tornTail ? tailSizeBytes : tailFileBytes;
    const wal = new Wal(fs, dir, identity, resolved, stats, segments, { ...last, handle, sizeBytes: tailSizeBytes, preallocatedEndBytes }, view);
    const state: WalState = {
      metadata: metadata!,
      hardState: replay.hardState,
      snapshotMarker: marker,
      entries: after.entries,
      snapshotMarkers: replay.markers.slice(),
      tornTail,
    };
    return { wal, state };
  }

  /** The failure that made the WAL read-only, if a write or fsync failed: every save is refused since. */
  get readOnlyError(): StorageError | undefined {
    return this.failure;
  }

  /**
   * Persists `hardState` (if given) and `entries`, resolving once an fsync covers them. Entries must
   * have consecutive indexes; they may start at or before the last index + 1 (overwriting, as Raft
   * truncation requires), or right after the latest snapshot marker.
   */
  /**
   * Appends entries and a hard state. Resolves once they are fsynced, unless options.sync is false:
   * Raft needs no fsync for a hard state whose only change is the commit index (it can be learned
   * again from the leader), so such a save is written and left for the next fsync to cover.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[], options: { sync?: boolean } = {}): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    let records: RecordPayload[];
    let view: WriterView;
    try {
      checkEntries(entries, this.queuedView);
      if (hardState) checkHardState(hardState);
      // Entries go first: a crash can keep any prefix of the batch, and a hard state must never
      // survive without the entries its commit index may point at.
      records = splitEntries(entries, this.options.maxRecordBytes);
      if (hardState) records.push(hardStatePayload(hardState));
      const last = entries[entries.length - 1];
      view = {
        hardState: hardState ? { ...hardState } : this.queuedView.hardState,
        marker: this.queuedView.marker,
        lastIndex: last ? last.index : this.queuedView.lastIndex,
      };
    } catch (error) {
      return Promise.reject(error);
    }
    this.stats.saves++;
    return this.enqueueRecords(records, entries.length, view, options.sync ?? true);
  }

  /** Persists a marker saying a snapshot at (index, term) is durable elsewhere. Save the snapshot first. */
  saveSnapshotMarker(index: number, term: number): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const previous = this.queuedView.marker?.index ?? 0;
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || index < 0 || term < 0 || index < previous) {
      return Promise.reject(new StorageBugError(`snapshot marker (${index}, ${term}) is invalid or older than the latest one at ${previous}`));
    }
    const marker = { index, term };
    const view = { ...this.queuedView, marker, lastIndex: Math.max(this.queuedView.lastIndex, index) };
    return this.enqueueRecords([snapshotMarkerPayload(marker)], 0, view, true);
  }

  /**
   * Deletes whole segments whose entries all have indexes below `index`, oldest first. `index` may
   * be at most the latest snapshot marker's index + 1. Resolves to the number of segments deleted.
   */
  releaseBefore(index: number): Promise<number> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const covered = this.queuedView.marker?.index ?? 0;
    if (!Number.isSafeInteger(index) || index > covered + 1) {
      return Promise.reject(new StorageBugError(`releaseBefore(${index}) would drop entries no snapshot covers (latest snapshot marker is at ${covered})`));
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: 'release', index, resolve, reject });
      this.kick();
    });
  }

  /** Waits for queued saves, then closes the current segment. Later calls are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining) await this.drained;
    try {
      await this.current.handle.close();
    } catch (error) {
      if (!this.failure) throw error;
    }
  }

  /** Segment file names currently in the WAL, oldest first (for tests and `concord` diagnostics). */
  segmentPaths(): string[] {
    return this.segments.map((segment) => segment.path);
  }

  private refusal(): StorageError | undefined {
    if (this.closed) return new StorageError('CONCORD_E_WAL_CLOSED', `the WAL in ${this.dir} is closed`, { path: this.dir });
    if (this.failure) return readOnly(this.failure);
    return undefined;
  }

  private enqueueRecords(records: RecordPayload[], entries: number, view: WriterView, sync: boolean): Promise<void> {
    this.queuedView = view;
    let sizeBytes = 0;
    for (const record of records) sizeBytes += frameSizeBytes(record.payload.byteLength);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'records', records, entries, sizeBytes, view, sync, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    this.drained = this.drain();
  }

  /** The single writer. Never throws: failures reject jobs. */
  private async drain(): Promise<void> {
    // Let the rest of the current tick queue its saves, so a synchronous burst becomes one batch.
    await Promise.resolve();
    while (true) {
      const head = this.queue[0];
      if (head === undefined) {
        this.draining = false;
        return;
      }
      if (this.failure) {
        this.queue.shift();
        head.reject(readOnly(this.failure));
        continue;
      }
      if (head.kind === 'release') {
        this.queue.shift();
        try {
          head.resolve(await this.release(head.index));
        } catch (error) {
          head.reject(this.fail(error));
        }
        continue;
      }
      const batch = this.takeBatch();
      try {
        await this.writeBatch(batch);
        for (const job of batch) job.resolve();
      } catch (error) {
        const failure = this.fail(error);
        for (const job of batch) job.reject(failure);
      }
    }
  }

  private takeBatch(): SaveJob[] {
    const batch: SaveJob[] = [];
    let sizeBytes = 0;
    while (true) {
      const job = this.queue[0];
      if (job === undefined || job.kind !== 'records') break;
      if (batch.length > 0 && sizeBytes + job.sizeBytes > this.options.maxBatchBytes) break;
      batch.push(job);
      sizeBytes += job.sizeBytes;
      this.queue.shift();
    }
    return batch;
  }

  private async writeBatch(batch: SaveJob[]): Promise<void> {
    let sizeBytes = 0;
    for (const job of batch) sizeBytes += job.sizeBytes;
    const lastView = batch[batch.length - 1]!.view;
    if (sizeBytes === 0) {
      this.writtenView = lastView;
      return; // only empty saves: everything before them was already fsynced
    }
    if (this.current.sizeBytes >= this.options.segmentSizeBytes) await this.rollover();
    const buffer = new Uint8Array(sizeBytes);
    let at = 0;
    for (const job of batch) {
      for (const record of job.records) {
        writeFrame(record, buffer, at, this.current.sizeBytes + at);
        at += frameSizeBytes(record.payload.byteLength);
      }
    }
    await this.current.handle.write(buffer, this.current.sizeBytes);
    this.current.sizeBytes += sizeBytes;
    this.stats.bytesWritten += sizeBytes;
    // This append grew the file, so its fsync commits metadata anyway: zeros written now make the
    // next appends' fsyncs cheap, and the same fsync covers them (unless the segment is full: the
    // next batch goes to a new one).
    const current = this.current;
    if (current.sizeBytes > current.preallocatedEndBytes && current.sizeBytes < this.options.segmentSizeBytes) await this.preallocate(current);
    this.writtenView = lastView;
    if (batch.some((job) => job.sync)) await this.syncBatch(batch);
    this.stats.batches++;
  }

  /** The batch's fsync, on this thread or in the pool (see fsync-placement.ts). */
  private async syncBatch(batch: SaveJob[]): Promise<void> {
    let entries = 0;
    for (const job of batch) entries += job.entries;
    const durationMs = await syncFile(this.current.handle, this.options, this.stats, this.fsyncPlacement.onThisThread(entries));
    if (durationMs !== undefined) this.fsyncPlacement.observe(durationMs);
  }

  private async preallocate(segment: OpenSegment): Promise<void> {
    const zeros = this.options.zeros;
    if (zeros.byteLength > 0) await segment.handle.write(zeros, segment.sizeBytes);
    segment.preallocatedEndBytes = segment.sizeBytes + zeros.byteLength;
    this.stats.bytesPreallocated += zeros.byteLength;
  }

  private async rollover(): Promise<void> {
    // The old segment ends at its last record, durably, before the next one exists: only the last
    // segment may end in zeros (see Preallocation above).
    if (this.current.preallocatedEndBytes > this.current.sizeBytes) {
      await this.current.handle.truncate(this.current.sizeBytes);
      await syncFile(this.current.handle, this.options, this.stats);
      this.current.preallocatedEndBytes = this.current.sizeBytes;
    }
    const sequence = this.current.sequence + 1;
    const next = await createSegment(this.fs, this.dir, this.identity, sequence, this.writtenView, this.options, this.stats);
    const previous = this.current;
    this.current = next;
    this.segments.push({ sequence: next.sequence, firstIndex: next.firstIndex, path: next.path });
    await previous.handle.close();
  }

  private async release(index: number): Promise<number> {
    let released = 0;
    // Oldest first, one directory fsync each: whatever a crash keeps is a suffix of the segments.
    while (this.segments.length > 1 && this.segments[1]!.firstIndex <= index) {
      const oldest = this.segments[0]!;
      await this.fs.unlink(oldest.path);
      await syncDir(this.fs, this.dir, this.options, this.stats);
      this.segments.shift();
      released++;
      this.stats.segmentsReleased++;
    }
    return released;
  }

  private fail(error: unknown): StorageError {
    if (!this.failure) {
      this.failure = isStorageError(error)
        ? error
        : new StorageError('CONCORD_E_IO', `WAL write failed: ${error instanceof Error ? error.message : String(error)}`, { path: this.current.path, cause: error });
    }
    return this.failure;
  }
}

function readOnly(failure: StorageError): StorageError {
  return new StorageError(
    failure.code,
    `the WAL is read-only since an earlier write failed (${failure.message}); reads are still served. ` +
      'Free disk space (or fix the disk), then restart the server: recovery keeps every acknowledged write.',
    { ...(failure.path === undefined ? {} : { path: failure.path }), cause: failure },
  );
}

/** fsyncs and times the file (in the thread pool unless onThisThread); the milliseconds it took, or undefined with fsync off. */
async function syncFile(handle: FileHandle, options: ResolvedWalOptions, stats: WalStats, onThisThread = false): Promise<number | undefined> {
  if (options.unsafeNoFsync) return undefined;
  const startedMs = options.clockMs();
  if (onThisThread) {
    stats.fsyncsOnThisThread++;
    handle.syncOnThisThread();
  } else {
    await handle.sync();
  }
  const durationMs = options.clockMs() - startedMs;
  stats.fsyncs++;
  stats.fsyncDurationsMs.observe(durationMs);
  return durationMs;
}

async function syncDir(fs: FileSystem, dir: string, options: ResolvedWalOptions, stats: WalStats): Promise<void> {
  if (options.unsafeNoFsync) return;
  await fs.syncDir(dir);
  stats.dirFsyncs++;
}

/** Creates a segment durably (temp name, header, fsync, rename, directory fsync) and opens it for appending. */
async function createSegment(
  fs: FileSystem,
  dir: string,
  identity: WalIdentity,
  sequence: number,
  view: WriterView,
  options: ResolvedWalOptions,
  stats: WalStats,
): Promise<OpenSegment> {
  const firstIndex = view.lastIndex + 1;
  const path = join(dir, segmentName(sequence, firstIndex));
  const tempPath = `${path}${TEMP_SUFFIX}`;
  const records: RecordPayload[] = [metadataPayload({ formatVersion: WAL_FORMAT_VERSION, ...identity, sequence, firstIndex })];
  if (view.hardState) records.push(hardStatePayload(view.hardState));
  if (view.marker) records.push(snapshotMarkerPayload(view.marker));
  let sizeBytes = 0;
  for (const record of records) sizeBytes += frameSizeBytes(record.payload.byteLength);
  const header = new Uint8Array(sizeBytes);
  let at = 0;
  for (const record of records) {
    writeFrame(record, header, at, at);
    at += frameSizeBytes(record.payload.byteLength);
  }
  const zeros = options.zeros;
  const temp = await fs.createExclusive(tempPath);
  try {
    await temp.write(header, 0);
    if (zeros.byteLength > 0) await temp.write(zeros, sizeBytes);
    await syncFile(temp, options, stats);
  } finally {
    await temp.close();
  }
  await fs.rename(tempPath, path);
  await syncDir(fs, dir, options, stats);
  stats.segmentsCreated++;
  stats.bytesWritten += sizeBytes;
  stats.bytesPreallocated += zeros.byteLength;
  return { sequence, firstIndex, path, handle: await fs.open(path), sizeBytes, preallocatedEndBytes: sizeBytes + zeros.byteLength };
}

function checkEntries(entries: readonly Entry[], view: WriterView): void {
  for (const [i, entry] of entries.entries()) {
    if (!Number.isSafeInteger(entry.index) || entry.index < 1 || !Number.isSafeInteger(entry.term) || entry.term < 0) {
      throw new StorageBugError(`entry ${i} has index ${entry.index} and term ${entry.term}; both must be safe integers, the index at least 1`);
    }
    const previous = entries[i - 1];
    if (previous && entry.index !== previous.index + 1) {
      throw new StorageBugError(`entries must have consecutive indexes, got ${previous.index} then ${entry.index}`);
    }
  }
  const first = entries[0];
  const continuesAfter = Math.max(view.lastIndex, view.marker?.index ?? 0);
  if (first && first.index > continuesAfter + 1) {
    throw new StorageBugError(`entries start at ${first.index}, leaving a gap after the last index ${continuesAfter}`);
  }
}

function checkHardState(hardState: HardState): void {
  const ok =
    Number.isSafeInteger(hardState.term) &&
    hardState.term >= 0 &&
    Number.isSafeInteger(hardState.commit) &&
    hardState.commit >= 0 &&
    hardState.vote >= 0n &&
    hardState.vote < 1n << 64n;
  if (!ok) throw new StorageBugError(`invalid hard state term=${hardState.term} vote=${hardState.vote} commit=${hardState.commit}`);
}

/** Encodes entries as records of at most maxRecordBytes each. */
function splitEntries(entries: readonly Entry[], maxRecordBytes: number): RecordPayload[] {
  const records: RecordPayload[] = [];
  const maxPayloadBytes = maxRecordBytes - RECORD_HEADER_BYTES;
  let start = 0;
  let sizeBytes = ENTRIES_PAYLOAD_HEADER_BYTES;
  for (const [i, entry] of entries.entries()) {
    const entryBytes = ENTRY_OVERHEAD_BYTES + entry.data.byteLength;
    if (ENTRIES_PAYLOAD_HEADER_BYTES + entryBytes > maxPayloadBytes) {
      throw new StorageError(
        'CONCORD_E_WAL_RECORD_TOO_LARGE',
        `entry ${entry.index} holds ${entry.data.byteLength} bytes, more than one WAL record allows (maxRecordBytes ${maxRecordBytes}); raise maxRecordBytes or lower the request size limit`,
      );
    }
    if (sizeBytes + entryBytes > maxPayloadBytes) {
      records.push(entriesPayload(entries.slice(start, i)));
      start = i;
      sizeBytes = ENTRIES_PAYLOAD_HEADER_BYTES;
    }
    sizeBytes += entryBytes;
  }
  if (start < entries.length) records.push(entriesPayload(entries.slice(start)));
  return records;
}

interface SegmentReplay {
  metadata: SegmentMetadata;
  /** Where the segment's records end. */
  sizeBytes: number;
  /** The file's size: past sizeBytes when the segment was preallocated. */
  fileBytes: number;
  tornTail: TornTail | undefined;
}

async function replaySegment(
  fs: FileSystem,
  segment: SegmentInfo,
  isLast: boolean,
  replay: WalReplay,
  checkMetadata: (metadata: SegmentMetadata) => void,
): Promise<SegmentReplay> {
  const bytes = await fs.readFile(segment.path);
  let metadata: SegmentMetadata | undefined;
  let offset = 0;
  while (offset < bytes.byteLength) {
    const frame = decodeFrame(bytes, offset);
    if (frame.kind !== 'valid') {
      // The preallocated zeros after the last record of the last segment: where it ends.
      if (isLast && metadata !== undefined && isZeroTail(bytes, offset)) return { metadata, sizeBytes: offset, fileBytes: bytes.byteLength, tornTail: undefined };
      if (!isLast || metadata === undefined) throw corrupt(segment.path, offset, frame.reason);
      const next = findValidFrame(bytes, offset + 1);
      if (next !== -1) throw corrupt(segment.path, offset, `${frame.reason}, yet a valid record follows at byte ${next}`);
      const tornTail = { path: segment.path, offsetBytes: offset, droppedBytes: bytes.byteLength - offset, reason: frame.reason };
      return { metadata, sizeBytes: offset, fileBytes: bytes.byteLength, tornTail };
    }
    let record: WalRecord;
    try {
      record = decodeRecordPayload(frame.typeCode, frame.payload);
    } catch (error) {
      if (error instanceof NewerFormatError) throw newerFormat(segment.path, error.formatVersion);
      if (error instanceof DecodeError) throw corrupt(segment.path, offset, `record passes its checksum but does not decode: ${error.message}`);
      throw error;
    }
    if ((offset === 0) !== (record.type === 'metadata')) {
      throw corrupt(segment.path, offset, offset === 0 ? `the first record is ${record.type}, not metadata` : 'a second metadata record');
    }
    if (record.type === 'metadata') {
      checkMetadata(record.metadata);
      metadata = record.metadata;
    }
    const problem = applyRecord(replay, record);
    if (problem) throw corrupt(segment.path, offset, problem);
    offset = frame.nextOffset;
  }
  if (metadata === undefined) throw corrupt(segment.path, 0, 'the segment is empty (no metadata record)');
  return { metadata, sizeBytes: offset, fileBytes: bytes.byteLength, tornTail: undefined };
}

function applyRecord(replay: WalReplay, record: WalRecord): string | undefined {
  switch (record.type) {
    case 'metadata':
      return undefined;
    case 'hardState':
      replay.applyHardState(record.hardState);
      return undefined;
    case 'entries':
      return replay.applyEntries(record.entries);
    case 'snapshotMarker':
      return replay.applyMarker(record.marker);
  }
}

async function truncateTail(fs: FileSystem, path: string, offset: number, options: ResolvedWalOptions, stats: WalStats): Promise<void> {
  const handle = await fs.open(path);
  try {
    await handle.truncate(offset);
    await syncFile(handle, options, stats);
  } finally {
    await handle.close();
  }
}

function checkSegmentMetadata(
  segment: SegmentInfo,
  metadata: SegmentMetadata,
  previous: SegmentMetadata | undefined,
  expected: WalIdentity | undefined,
): void {
  if (expected && metadata.clusterId !== expected.clusterId) {
    throw new StorageError(
      'CONCORD_E_DATA_DIR_FOREIGN_CLUSTER',
      `${segment.path} belongs to cluster ${hex(metadata.clusterId)}, not ${hex(expected.clusterId)}: this data dir is another cluster's. ` +
        'Point --data-dir elsewhere, or remove the directory if that cluster is gone. ' +
        '(If instead this member\'s peer URLs changed since it was bootstrapped, by etcdctl member update, start it with ' +
        '--initial-cluster-state existing: that uses the data dir\'s own identity.)',
      { path: segment.path },
    );
  }
  if (expected && metadata.memberId !== expected.memberId) {
    throw new StorageError(
      'CONCORD_E_DATA_DIR_FOREIGN_MEMBER',
      `${segment.path} belongs to member ${hex(metadata.memberId)}, not ${hex(expected.memberId)}: each member needs its own data dir. Point --data-dir elsewhere.`,
      { path: segment.path },
    );
  }
  if (metadata.sequence !== segment.sequence || metadata.firstIndex !== segment.firstIndex) {
    throw corrupt(segment.path, 0, `its metadata says sequence ${metadata.sequence} and first index ${metadata.firstIndex}, which does not match the file name`);
  }
  if (previous && (metadata.clusterId !== previous.clusterId || metadata.memberId !== previous.memberId)) {
    throw corrupt(segment.path, 0, `it belongs to cluster ${hex(metadata.clusterId)} member ${hex(metadata.memberId)}, unlike the segments before it`);
  }
}

async function chooseMarker(replay: WalReplay, option: WalOpenOptions['snapshot'], dir: string): Promise<SnapshotMarker> {
  if (option === undefined) return replay.latestMarker;
  const marker = typeof option === 'function' ? await option(replay.markers.slice()) : option;
  if (marker.index > 0 && !replay.hasMarker(marker)) {
    throw new StorageError(
      'CONCORD_E_WAL_MISSING_ENTRIES',
      `the WAL in ${dir} has no marker for the snapshot at index ${marker.index} term ${marker.term}, so it cannot tell which entries follow it; ` +
        'restore the data dir from a backup, or remove this member and add it back with an empty data dir.',
      { path: dir },
    );
  }
  return marker.index === 0 ? ZERO_MARKER : marker;
}
