// The snapshot format of the key-value state machine, as Raft snapshots carry it:
//
//   magic "CKVS" | format version (1 byte) | body | CRC-32C of everything before it (4 bytes, BE)
//
// The body holds the applied index, the MVCC state (revision, compact revision, each key's retained
// history), the leases, the alarms and (from format version 2 on) the auth state: users, roles,
// permissions, the enabled flag and the auth revision. Version 1 snapshots, written before auth
// existed, are still read, with a fresh auth state. A snapshot from a newer format version is
// refused with a message to upgrade; a damaged one (bad magic, checksum, truncation, trailing
// bytes, broken invariants) is refused as invalid. Nothing is half-restored: decoding completes
// before use.

import type { AlarmMember, AlarmType } from './types.ts';
import type { MvccState } from './mvcc.ts';
import type { KeyRevision } from './key-index.ts';
import { ByteReader, ByteWriter } from './binary.ts';
import { crc32cUpdate } from './crc32c.ts';
import type { Crc32cUpdate } from './crc32c.ts';
import { KvError } from './errors.ts';
import { readKeyHistory, writeKeyHistory } from './history-codec.ts';
import type { AuthState } from './auth/auth-types.ts';
import { readAuthState, writeAuthState } from './auth/auth-codec.ts';
import { INITIAL_AUTH_REVISION } from './auth/auth-store.ts';

export const SNAPSHOT_FORMAT_VERSION = 2;
/** The first version, still read: no auth state. */
const SNAPSHOT_FORMAT_VERSION_WITHOUT_AUTH = 1;
const SNAPSHOT_MAGIC = new Uint8Array([0x43, 0x4b, 0x56, 0x53]); // "CKVS"
const CHECKSUM_BYTES = 4;
const HEADER_BYTES = SNAPSHOT_MAGIC.length + 1;

export interface KvSnapshotState {
  appliedIndex: number;
  mvcc: MvccState;
  leases: { id: bigint; ttlSeconds: number }[];
  alarms: AlarmMember[];
  auth: AuthState;
}

/** The auth state of a store that never had auth commands: what a version 1 snapshot stands for. */
export function freshAuthState(): AuthState {
  return { enabled: false, revision: INITIAL_AUTH_REVISION, users: [], roles: [] };
}

const ALARM_TYPES: AlarmType[] = ['none', 'nospace', 'corrupt'];

/**
 * The state at one moment, captured without copying the histories: each key keeps a reference to its
 * revision list and how many of its changes belong to the snapshot. The store only ever appends to
 * a list (or pops what it appended within the same apply), and compaction replaces a list instead of
 * changing it, so the captured prefix stays as it was while the store moves on.
 */
export interface KvSnapshotCapture {
  appliedIndex: number;
  revision: number;
  compactRevision: number;
  keys: { key: Uint8Array; revisions: readonly KeyRevision[]; count: number }[];
  leases: { id: bigint; ttlSeconds: number }[];
  alarms: AlarmMember[];
  /** Immutable records: capturing them by reference is a consistent copy. */
  auth: AuthState;
}

export interface SnapshotEncoderOptions {
  /**
   * Bytes left at the front of the result for the caller's own header (the member's envelope), so
   * that the whole snapshot is one buffer without a copy. They are zero until the caller fills them.
   */
  prefixBytes?: number;
  /**
   * Encode into a buffer that grows in place (see ByteWriterOptions.growInPlaceBytes), reserving
   * about this many bytes: for a large state, which a growing buffer would copy again and again.
   */
  growInPlaceBytes?: number;
  /** The CRC-32C implementation for the checksum (see Crc32cUpdate). Default: crc32cUpdate. */
  checksum?: Crc32cUpdate;
}

/**
 * Encodes a captured snapshot in slices, so a large store is written out without stalling the
 * member: each step() writes up to maxKeys keys (and checksums what it wrote), until done.
 */
export class SnapshotEncoder {
  private readonly capture: KvSnapshotCapture;
  private readonly writer: ByteWriter;
  private readonly prefixBytes: number;
  private readonly checksum: Crc32cUpdate;
  private nextKey = 0;
  private checksummedBytes: number;
  private crc = 0;
  private bytes: Uint8Array | undefined;

  constructor(capture: KvSnapshotCapture, options: SnapshotEncoderOptions = {}) {
    this.capture = capture;
    this.prefixBytes = options.prefixBytes ?? 0;
    this.checksum = options.checksum ?? crc32cUpdate;
    this.checksummedBytes = this.prefixBytes;
    const writer = this.writer = new ByteWriter({ growInPlaceBytes: options.growInPlaceBytes });
    writer.raw(new Uint8Array(this.prefixBytes));
    writer.raw(SNAPSHOT_MAGIC);
    writer.u8(SNAPSHOT_FORMAT_VERSION);
    writer.uvarint(capture.appliedIndex);
    writer.uvarint(capture.revision);
    writer.uvarint(capture.compactRevision);
    writer.uvarint(capture.keys.length);
  }

  /**
   * Writes up to maxKeys more keys; once everything is written, returns the prefix (if one was asked
   * for) followed by the snapshot, as a view of the encoder's buffer.
   */
  step(maxKeys: number): Uint8Array | undefined {
    if (this.bytes) return this.bytes;
    const { keys } = this.capture;
    const end = Math.min(keys.length, this.nextKey + Math.max(1, maxKeys));
    for (; this.nextKey < end; this.nextKey++) {
      const { key, revisions, count } = keys[this.nextKey]!;
      writeKeyHistory(this.writer, key, revisions, count);
    }
    const done = this.nextKey === keys.length;
    if (done) this.writeTail();
    this.checksumWritten();
    if (done) {
      this.writer.u32(this.crc);
      // A view, not a copy: the writer is not written again.
      this.bytes = this.writer.viewFrom(0);
    }
    return this.bytes;
  }

  /** Everything at once, without the prefix (for small states and tests). */
  finish(): Uint8Array {
    let bytes: Uint8Array | undefined;
    while (!(bytes = this.step(Number.MAX_SAFE_INTEGER)));
    return bytes.subarray(this.prefixBytes);
  }

  private writeTail(): void {
    const writer = this.writer;
    writer.uvarint(this.capture.leases.length);
    for (const lease of this.capture.leases) {
      writer.int64(lease.id);
      writer.uvarint(lease.ttlSeconds);
    }
    writer.uvarint(this.capture.alarms.length);
    for (const alarm of this.capture.alarms) {
      writer.uint64(alarm.memberId);
      writer.u8(ALARM_TYPES.indexOf(alarm.alarm));
    }
    writeAuthState(writer, this.capture.auth);
  }

  /** Checksums only what this step wrote: checksumming everything so far made each step O(snapshot size). */
  private checksumWritten(): void {
    this.crc = this.checksum(this.crc, this.writer.viewFrom(this.checksummedBytes));
    this.checksummedBytes = this.writer.sizeBytes;
  }
}

export function encodeSnapshot(state: KvSnapshotState, checksum: Crc32cUpdate = crc32cUpdate): Uint8Array {
  return new SnapshotEncoder({
    appliedIndex: state.appliedIndex,
    revision: state.mvcc.revision,
    compactRevision: state.mvcc.compactRevision,
    keys: state.mvcc.keys.map(({ key, revisions }) => ({ key, revisions, count: revisions.length })),
    leases: state.leases,
    alarms: state.alarms,
    auth: state.auth,
  }, { checksum }).finish();
}

export function decodeSnapshot(bytes: Uint8Array, checksum: Crc32cUpdate = crc32cUpdate): KvSnapshotState {
  const version = checkEnvelope(bytes, checksum);
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  const reader = new ByteReader(body, invalid);
  reader.raw(HEADER_BYTES, 'header');
  const appliedIndex = reader.uvarint('applied index');
  const revision = reader.uvarint('revision');
  const compactRevision = reader.uvarint('compact revision');
  const keys = readCounted(reader, 'key count', () => readKeyHistory(reader));
  const leases = readCounted(reader, 'lease count', () => ({ id: reader.int64('lease ID'), ttlSeconds: reader.uvarint('lease TTL') }));
  const alarms = readCounted(reader, 'alarm count', () => ({ memberId: reader.uint64('alarm member'), alarm: readAlarmType(reader) }));
  const auth = version === SNAPSHOT_FORMAT_VERSION_WITHOUT_AUTH ? freshAuthState() : readAuthState(reader, invalid);
  reader.expectEnd('snapshot body');
  return { appliedIndex, mvcc: { revision, compactRevision, keys }, leases, alarms, auth };
}

/** Checks magic, version and checksum; returns the format version. */
function checkEnvelope(bytes: Uint8Array, checksum: Crc32cUpdate): number {
  if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) throw invalid(`${bytes.length} bytes is too short for a snapshot`);
  if (!SNAPSHOT_MAGIC.every((byte, i) => bytes[i] === byte)) throw invalid('not a Concord key-value snapshot (bad magic)');
  const version = bytes[SNAPSHOT_MAGIC.length]!;
  if (version > SNAPSHOT_FORMAT_VERSION) {
    throw new KvError(
      'CONCORD_E_KV_SNAPSHOT_VERSION',
      `format version ${version}, this member reads up to ${SNAPSHOT_FORMAT_VERSION}`,
    );
  }
  if (version < 1) throw invalid(`unknown format version ${version}`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - CHECKSUM_BYTES, CHECKSUM_BYTES).getUint32(0);
  const computed = checksum(0, bytes.subarray(0, bytes.length - CHECKSUM_BYTES));
  if (stored !== computed) throw invalid(`checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
  return version;
}

/** Reads a count, then that many items; a count larger than the bytes left is garbage, not a reason to allocate. */
function readCounted<T>(reader: ByteReader, what: string, readItem: () => T): T[] {
  const count = reader.uvarint(what);
  if (count > reader.remainingBytes) throw invalid(`${what} ${count} exceeds the ${reader.remainingBytes} bytes left`);
  const items: T[] = [];
  for (let i = 0; i < count; i++) items.push(readItem());
  return items;
}

function readAlarmType(reader: ByteReader): AlarmType {
  const code = reader.u8('alarm type');
  const alarm = ALARM_TYPES[code];
  if (alarm === undefined) throw invalid(`unknown alarm type ${code}`);
  return alarm;
}

function invalid(detail: string): KvError {
  return new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', detail);
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
