// The WAL's record format: framing (length, type, checksum) and the payload of each record type.
//
// Frame, little-endian:
//
//   offset  size  field
//   0       4     crc      CRC32C of bytes [4, 9 + length), seeded with the record's offset
//   4       4     length   payload length in bytes (at most RECORD_PAYLOAD_BYTES_LIMIT)
//   8       1     type     1 metadata, 2 hard state, 3 entries, 4 snapshot marker
//   9       n     payload
//
// The checksum is per record, not chained: each record can be verified on its own, which is what
// lets recovery tell a torn tail (nothing valid after the bad record) from corruption in the middle
// (valid records after it). It covers the length and the type as well as the payload, so a flipped
// length byte is caught like any other. It is seeded with the record's byte offset in its segment
// file, so a valid record that appears at another position (a misdirected sector write, or WAL bytes
// stored inside an entry's payload) does not validate there.
//
// Payloads:
//   metadata        u32 formatVersion, u64 clusterId, u64 memberId, u64 sequence, u64 firstIndex
//                   (formatVersion comes first, so a newer format is recognised before anything else)
//   hard state      u64 term, u64 vote, u64 commit
//   entries         u64 firstIndex, u32 count, then per entry: u64 term, u8 type (0 normal,
//                   1 confChange), u32 dataLength, data. Indexes are consecutive by construction.
//   snapshot marker u64 index, u64 term

import { crc32c } from '@node-rs/crc32';
import type { Entry, EntryType, HardState } from '../consensus/types.ts';
import { ByteReader, ByteWriter, DecodeError } from './binary-codec.ts';

export const WAL_FORMAT_VERSION = 1;
export const RECORD_HEADER_BYTES = 9;
/** The largest payload any Concord version writes; a larger length is treated as a bad record. */
export const RECORD_PAYLOAD_BYTES_LIMIT = 256 * 1024 * 1024;
/** Bytes an entry adds to an entries payload besides its data. */
export const ENTRY_OVERHEAD_BYTES = 13;
/** Bytes of an entries payload besides its entries. */
export const ENTRIES_PAYLOAD_HEADER_BYTES = 12;

export interface WalIdentity {
  clusterId: bigint;
  memberId: bigint;
}

export interface SegmentMetadata extends WalIdentity {
  formatVersion: number;
  /** The segment's position in the WAL, starting at 0; also in its file name. */
  sequence: number;
  /** The index that follows the last entry written before this segment; also in its file name. */
  firstIndex: number;
}

/** Records that a snapshot at (index, term) exists, so entries up to index are no longer needed. */
export interface SnapshotMarker {
  index: number;
  term: number;
}

export type WalRecord =
  | { type: 'metadata'; metadata: SegmentMetadata }
  | { type: 'hardState'; hardState: HardState }
  | { type: 'entries'; entries: Entry[] }
  | { type: 'snapshotMarker'; marker: SnapshotMarker };

export type WalRecordType = WalRecord['type'];

export const RECORD_TYPE_CODES: Record<WalRecordType, number> = { metadata: 1, hardState: 2, entries: 3, snapshotMarker: 4 };
const MAX_TYPE_CODE = 4;
const RECORD_TYPES: WalRecordType[] = ['metadata', 'hardState', 'entries', 'snapshotMarker'];
const ENTRY_TYPE_CODES: Record<EntryType, number> = { normal: 0, confChange: 1 };
const ENTRY_TYPES: EntryType[] = ['normal', 'confChange'];

/** The metadata record holds a format version newer than this build reads. */
export class NewerFormatError extends DecodeError {
  override name = 'NewerFormatError';
  readonly formatVersion: number;
  constructor(formatVersion: number) {
    super(`format version ${formatVersion} is newer than ${WAL_FORMAT_VERSION}`);
    this.formatVersion = formatVersion;
  }
}

function offsetSeed(offsetBytes: number): number {
  const seed = new Uint8Array(8);
  const view = new DataView(seed.buffer);
  view.setUint32(0, offsetBytes % 0x1_0000_0000, true);
  view.setUint32(4, Math.floor(offsetBytes / 0x1_0000_0000), true);
  return crc32c(seed);
}

/** An unframed record: its type code and payload, ready to be framed at a known offset. */
export interface RecordPayload {
  typeCode: number;
  payload: Uint8Array;
}

export function frameSizeBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

/** Writes the frame of `record` into `target` at `targetOffset`; the frame lives at `fileOffsetBytes`. */
export function writeFrame(record: RecordPayload, target: Uint8Array, targetOffset: number, fileOffsetBytes: number): void {
  const view = new DataView(target.buffer, target.byteOffset + targetOffset, RECORD_HEADER_BYTES);
  view.setUint32(4, record.payload.byteLength, true);
  view.setUint8(8, record.typeCode);
  target.set(record.payload, targetOffset + RECORD_HEADER_BYTES);
  const covered = target.subarray(targetOffset + 4, targetOffset + RECORD_HEADER_BYTES + record.payload.byteLength);
  view.setUint32(0, crc32c(covered, offsetSeed(fileOffsetBytes)), true);
}

export function encodeFrame(record: RecordPayload, fileOffsetBytes: number): Uint8Array {
  const frame = new Uint8Array(frameSizeBytes(record.payload.byteLength));
  writeFrame(record, frame, 0, fileOffsetBytes);
  return frame;
}

export type FrameResult =
  | { kind: 'valid'; typeCode: number; payload: Uint8Array; nextOffset: number }
  /** The header or the payload runs past the end of the bytes: typical of a torn write. */
  | { kind: 'incomplete'; reason: string }
  /** Unknown type, impossible length or checksum mismatch. */
  | { kind: 'invalid'; reason: string };

/** Checks the frame that starts at `offset` of `bytes`, which is the start of its segment file. */
export function decodeFrame(bytes: Uint8Array, offset: number): FrameResult {
  const available = bytes.byteLength - offset;
  if (available < RECORD_HEADER_BYTES) return { kind: 'incomplete', reason: `only ${available} bytes of a record header` };
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, RECORD_HEADER_BYTES);
  const lengthBytes = view.getUint32(4, true);
  const typeCode = view.getUint8(8);
  if (typeCode === 0 || typeCode > MAX_TYPE_CODE) return { kind: 'invalid', reason: `unknown record type ${typeCode}` };
  if (lengthBytes > RECORD_PAYLOAD_BYTES_LIMIT) {
    return { kind: 'invalid', reason: `record length ${lengthBytes} exceeds the format limit ${RECORD_PAYLOAD_BYTES_LIMIT}` };
  }
  const end = offset + RECORD_HEADER_BYTES + lengthBytes;
  if (end > bytes.byteLength) {
    return { kind: 'incomplete', reason: `record of ${lengthBytes} payload bytes runs ${end - bytes.byteLength} bytes past the end of the file` };
  }
  const expected = view.getUint32(0, true);
  const actual = crc32c(bytes.subarray(offset + 4, end), offsetSeed(offset));
  if (expected !== actual) return { kind: 'invalid', reason: `checksum mismatch (stored ${hex32(expected)}, computed ${hex32(actual)})` };
  return { kind: 'valid', typeCode, payload: bytes.subarray(offset + RECORD_HEADER_BYTES, end), nextOffset: end };
}

/**
 * The offset of the first valid frame at or after `from`, or -1. Used only after a bad record, to
 * decide whether it is a torn tail (nothing valid follows) or corruption (something does).
 */
export function findValidFrame(bytes: Uint8Array, from: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = from; at + RECORD_HEADER_BYTES <= bytes.byteLength; at++) {
    // Cheap filters first: almost every position fails on the type byte or the length.
    const typeCode = view.getUint8(at + 8);
    if (typeCode === 0 || typeCode > MAX_TYPE_CODE) continue;
    if (view.getUint32(at + 4, true) > bytes.byteLength - at - RECORD_HEADER_BYTES) continue;
    if (decodeFrame(bytes, at).kind === 'valid') return at;
  }
  return -1;
}

/**
 * True when every byte from `offset` to the end is zero: the preallocated part of the last segment,
 * after its last record (a record header is never all zero: type 0 does not exist).
 */
export function isZeroTail(bytes: Uint8Array, offset: number): boolean {
  for (let at = offset; at < bytes.byteLength; at++) if (bytes[at] !== 0) return false;
  return true;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

// ---- payloads ----

export function metadataPayload(metadata: SegmentMetadata): RecordPayload {
  const writer = new ByteWriter(36)
    .u32(metadata.formatVersion)
    .u64(metadata.clusterId)
    .u64(metadata.memberId)
    .u53(metadata.sequence)
    .u53(metadata.firstIndex);
  return { typeCode: RECORD_TYPE_CODES.metadata, payload: writer.finish() };
}

export function hardStatePayload(hardState: HardState): RecordPayload {
  const writer = new ByteWriter(24).u53(hardState.term).u64(hardState.vote).u53(hardState.commit);
  return { typeCode: RECORD_TYPE_CODES.hardState, payload: writer.finish() };
}

export function snapshotMarkerPayload(marker: SnapshotMarker): RecordPayload {
  const writer = new ByteWriter(16).u53(marker.index).u53(marker.term);
  return { typeCode: RECORD_TYPE_CODES.snapshotMarker, payload: writer.finish() };
}

/** Entries must have consecutive indexes (the caller checks); the first index is stored once. */
export function entriesPayload(entries: readonly Entry[]): RecordPayload {
  let sizeBytes = ENTRIES_PAYLOAD_HEADER_BYTES;
  for (const entry of entries) sizeBytes += ENTRY_OVERHEAD_BYTES + entry.data.byteLength;
  const writer = new ByteWriter(sizeBytes).u53(entries[0]?.index ?? 0).u32(entries.length);
  for (const entry of entries) {
    writer.u53(entry.term).u8(ENTRY_TYPE_CODES[entry.type]).u32(entry.data.byteLength).raw(entry.data);
  }
  return { typeCode: RECORD_TYPE_CODES.entries, payload: writer.finish() };
}

export function encodeRecordPayload(record: WalRecord): RecordPayload {
  switch (record.type) {
    case 'metadata':
      return metadataPayload(record.metadata);
    case 'hardState':
      return hardStatePayload(record.hardState);
    case 'entries':
      return entriesPayload(record.entries);
    case 'snapshotMarker':
      return snapshotMarkerPayload(record.marker);
  }
}

/** Decodes a payload whose frame was valid. Throws DecodeError (or NewerFormatError) if it is not. */
export function decodeRecordPayload(typeCode: number, payload: Uint8Array): WalRecord {
  const reader = new ByteReader(payload);
  const record = decodeWith(typeCode, reader);
  reader.expectEnd(`${record.type} record`);
  return record;
}

function decodeWith(typeCode: number, reader: ByteReader): WalRecord {
  const type = RECORD_TYPES[typeCode - 1];
  switch (type) {
    case 'metadata':
      return { type, metadata: decodeMetadata(reader) };
    case 'hardState':
      return { type, hardState: { term: reader.u53('term'), vote: reader.u64('vote'), commit: reader.u53('commit') } };
    case 'entries':
      return { type, entries: decodeEntries(reader) };
    case 'snapshotMarker':
      return { type, marker: { index: reader.u53('snapshot index'), term: reader.u53('snapshot term') } };
  }
  throw new DecodeError(`unknown record type ${typeCode}`);
}

function decodeMetadata(reader: ByteReader): SegmentMetadata {
  const formatVersion = reader.u32('format version');
  if (formatVersion > WAL_FORMAT_VERSION) throw new NewerFormatError(formatVersion);
  if (formatVersion === 0) throw new DecodeError('format version 0 does not exist');
  return {
    formatVersion,
    clusterId: reader.u64('cluster id'),
    memberId: reader.u64('member id'),
    sequence: reader.u53('segment sequence'),
    firstIndex: reader.u53('segment first index'),
  };
}

function decodeEntries(reader: ByteReader): Entry[] {
  const firstIndex = reader.u53('first index');
  const count = reader.u32('entry count');
  if (count === 0 || firstIndex === 0) throw new DecodeError(`entries record with first index ${firstIndex} and count ${count}`);
  // Each entry needs at least its overhead, so a corrupt count cannot make us allocate wildly.
  if (count * ENTRY_OVERHEAD_BYTES > reader.remainingBytes) throw new DecodeError(`entry count ${count} exceeds the record`);
  if (firstIndex + count - 1 > Number.MAX_SAFE_INTEGER) throw new DecodeError(`entry indexes from ${firstIndex} pass 2^53`);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const term = reader.u53('entry term');
    const typeCode = reader.u8('entry type');
    const type = ENTRY_TYPES[typeCode];
    if (type === undefined) throw new DecodeError(`unknown entry type ${typeCode}`);
    const data = reader.raw(reader.u32('entry data length'), 'entry data');
    entries.push({ index: firstIndex + i, term, type, data });
  }
  return entries;
}
