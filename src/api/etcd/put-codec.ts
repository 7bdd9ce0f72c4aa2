// KV.Put's request and response encoded by hand, because Put is the write path's hot message: the
// generic codec (protobufjs through proto-loader, with 64-bit fields as decimal strings) cost a
// string per 64-bit field, a Long per string, a bigint-to-text walk over every response and two
// object conversions per call. Here a request becomes the store's PutRequest in one pass over its
// bytes, and a response is written straight from the store's PutResponse, with the member's
// constant header fields encoded once. Every other message keeps the generic codec.
//
// The encoding is proto3's, as etcd's Go code writes it (zero-valued fields left out); decoding
// accepts anything a proto3 encoder may send: fields in any order, repeated scalars (the last one
// wins), unknown fields (skipped). test/api/put-codec.test.ts checks both directions against the
// generic codec on random messages.

import type { ServiceDefinition } from '@grpc/grpc-js';
import type { KeyValue, PutRequest, PutResponse } from '../../kv/types.ts';
import type { HeaderSource } from './wire.ts';

/** What a malformed request becomes; grpc-js answers a deserializer's exception with INTERNAL, as for the generic codec. */
export class PutCodecError extends Error {
  override name = 'PutCodecError';
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
/** A varint longer than this does not fit 64 bits. */
const MAX_VARINT_BYTES = 10;
const EMPTY_BYTES = Buffer.alloc(0);

/** Reads a protobuf message's fields; every read checks the end of the buffer. */
class FieldReader {
  position = 0;
  private readonly bytes: Buffer;

  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  done(): boolean {
    return this.position >= this.bytes.length;
  }

  /** A varint as a number; exact below 2^53, which tags, lengths and booleans always are. */
  varintNumber(): number {
    let value = 0;
    let scale = 1;
    for (let read = 0; read < MAX_VARINT_BYTES; read++) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new PutCodecError(`a varint at byte ${this.position} is longer than ${MAX_VARINT_BYTES} bytes`);
  }

  /** A varint as the int64 it encodes (two's complement for negative values). */
  varintInt64(): bigint {
    const start = this.position;
    const small = this.varintNumber();
    if (this.position - start <= 7) return BigInt(small); // at most 49 bits: the number is exact
    let value = 0n;
    for (let at = this.position - 1; at >= start; at--) value = (value << 7n) | BigInt(this.bytes[at]! & 0x7f);
    return BigInt.asIntN(64, value);
  }

  lengthDelimited(): Buffer {
    const length = this.varintNumber();
    const end = this.position + length;
    if (end > this.bytes.length) {
      throw new PutCodecError(`a field of ${length} bytes at byte ${this.position} runs past the message's end (${this.bytes.length} bytes)`);
    }
    const value = this.bytes.subarray(this.position, end);
    this.position = end;
    return value;
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varintNumber();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new PutCodecError(`field ${field} has wire type ${wireType}, which proto3 does not use`);
    }
  }

  private advance(bytes: number): void {
    if (this.position + bytes > this.bytes.length) throw new PutCodecError(`a fixed-size field at byte ${this.position} runs past the message's end`);
    this.position += bytes;
  }

  private byte(): number {
    if (this.position >= this.bytes.length) throw new PutCodecError(`the message ends inside a varint (${this.bytes.length} bytes)`);
    return this.bytes[this.position++]!;
  }
}

const PUT_REQUEST_FIELDS: Record<number, { name: string; wireType: number }> = {
  1: { name: 'key', wireType: WIRE_LENGTH_DELIMITED },
  2: { name: 'value', wireType: WIRE_LENGTH_DELIMITED },
  3: { name: 'lease', wireType: WIRE_VARINT },
  4: { name: 'prev_kv', wireType: WIRE_VARINT },
  5: { name: 'ignore_value', wireType: WIRE_VARINT },
  6: { name: 'ignore_lease', wireType: WIRE_VARINT },
};

/** etcdserverpb.PutRequest's bytes to the store's PutRequest. key and value are views into `bytes`. */
export function decodePutRequest(bytes: Buffer): PutRequest {
  const request: Required<PutRequest> = { key: EMPTY_BYTES, value: EMPTY_BYTES, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
  const reader = new FieldReader(bytes);
  while (!reader.done()) {
    const tag = reader.varintNumber();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    const known = PUT_REQUEST_FIELDS[field];
    if (known === undefined) {
      reader.skip(wireType, field);
      continue;
    }
    if (wireType !== known.wireType) {
      throw new PutCodecError(`etcdserverpb.PutRequest field ${field} (${known.name}) has wire type ${wireType}, expected ${known.wireType}`);
    }
    switch (field) {
      case 1:
        request.key = reader.lengthDelimited();
        break;
      case 2:
        request.value = reader.lengthDelimited();
        break;
      case 3:
        request.lease = reader.varintInt64();
        break;
      case 4:
        request.prevKv = reader.varintNumber() !== 0;
        break;
      case 5:
        request.ignoreValue = reader.varintNumber() !== 0;
        break;
      case 6:
        request.ignoreLease = reader.varintNumber() !== 0;
        break;
    }
  }
  return request;
}

// ---- Encoding ----

/** Bytes of a varint for a non-negative safe integer. */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** An int64 or uint64 as varint bytes (a negative int64 takes 10 bytes, as in every protobuf encoder). */
function varint64Bytes(value: bigint): Uint8Array {
  let rest = BigInt.asUintN(64, value);
  const bytes: number[] = [];
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Uint8Array.from(bytes);
}

/** Writes into a buffer sized beforehand; no bounds checks beyond the buffer's own. */
class FieldWriter {
  position = 0;
  readonly bytes: Buffer;

  constructor(sizeBytes: number) {
    this.bytes = Buffer.allocUnsafe(sizeBytes);
  }

  varint(value: number): void {
    while (value >= 0x80) {
      this.bytes[this.position++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.position++] = value;
  }

  raw(bytes: Uint8Array): void {
    this.bytes.set(bytes, this.position);
    this.position += bytes.length;
  }
}

/** A non-negative safe integer field (revisions, versions, terms): tag + varint, or nothing when zero. */
function numberFieldSize(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function writeNumberField(writer: FieldWriter, tag: number, value: number): void {
  if (value === 0) return;
  writer.varint(tag);
  writer.varint(value);
}

function bytesFieldSize(value: Uint8Array): number {
  return value.length === 0 ? 0 : 1 + varintSize(value.length) + value.length;
}

function writeBytesField(writer: FieldWriter, tag: number, value: Uint8Array): void {
  if (value.length === 0) return;
  writer.varint(tag);
  writer.varint(value.length);
  writer.raw(value);
}

/** Revisions, versions and terms are never negative; a negative one would need the bigint path. */
function checkNonNegative(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bug: ${field} ${value} is not a non-negative safe integer`);
}

// Tags: field number × 8 + wire type.
const TAG = {
  header: (1 << 3) | WIRE_LENGTH_DELIMITED,
  prevKv: (2 << 3) | WIRE_LENGTH_DELIMITED,
  clusterId: (1 << 3) | WIRE_VARINT,
  memberId: (2 << 3) | WIRE_VARINT,
  revision: (3 << 3) | WIRE_VARINT,
  raftTerm: (4 << 3) | WIRE_VARINT,
  kvKey: (1 << 3) | WIRE_LENGTH_DELIMITED,
  kvCreateRevision: (2 << 3) | WIRE_VARINT,
  kvModRevision: (3 << 3) | WIRE_VARINT,
  kvVersion: (4 << 3) | WIRE_VARINT,
  kvValue: (5 << 3) | WIRE_LENGTH_DELIMITED,
  kvLease: (6 << 3) | WIRE_VARINT,
} as const;

function keyValueSize(kv: KeyValue, leaseBytes: Uint8Array | undefined): number {
  return bytesFieldSize(kv.key) + numberFieldSize(kv.createRevision) + numberFieldSize(kv.modRevision) +
    numberFieldSize(kv.version) + bytesFieldSize(kv.value) + (leaseBytes ? 1 + leaseBytes.length : 0);
}

/**
 * Encodes etcdserverpb.PutResponse for one member. The cluster and member IDs never change, so
 * their bytes are made once; the revision and raft term are written per response.
 */
export class PutResponseEncoder {
  private readonly source: HeaderSource;
  /** cluster_id and member_id fields, ready to copy. */
  private readonly constantHeaderFields: Uint8Array;

  constructor(source: HeaderSource) {
    this.source = source;
    const fields: number[] = [];
    if (source.clusterId !== 0n) fields.push(TAG.clusterId, ...varint64Bytes(source.clusterId));
    if (source.memberId !== 0n) fields.push(TAG.memberId, ...varint64Bytes(source.memberId));
    this.constantHeaderFields = Uint8Array.from(fields);
  }

  encode(response: PutResponse): Buffer {
    const revision = response.header.revision;
    const raftTerm = this.source.raftTerm();
    checkNonNegative(revision, 'revision');
    checkNonNegative(raftTerm, 'raft_term');
    const headerSize = this.constantHeaderFields.length + numberFieldSize(revision) + numberFieldSize(raftTerm);
    const prevKv = response.prevKv;
    let prevKvSize = 0;
    let leaseBytes: Uint8Array | undefined;
    if (prevKv) {
      checkNonNegative(prevKv.createRevision, 'prev_kv.create_revision');
      checkNonNegative(prevKv.modRevision, 'prev_kv.mod_revision');
      checkNonNegative(prevKv.version, 'prev_kv.version');
      leaseBytes = prevKv.lease === 0n ? undefined : varint64Bytes(prevKv.lease);
      prevKvSize = keyValueSize(prevKv, leaseBytes);
    }
    const size = 1 + varintSize(headerSize) + headerSize + (prevKv ? 1 + varintSize(prevKvSize) + prevKvSize : 0);
    const writer = new FieldWriter(size);
    writer.varint(TAG.header);
    writer.varint(headerSize);
    writer.raw(this.constantHeaderFields);
    writeNumberField(writer, TAG.revision, revision);
    writeNumberField(writer, TAG.raftTerm, raftTerm);
    if (prevKv) {
      writer.varint(TAG.prevKv);
      writer.varint(prevKvSize);
      writeBytesField(writer, TAG.kvKey, prevKv.key);
      writeNumberField(writer, TAG.kvCreateRevision, prevKv.createRevision);
      writeNumberField(writer, TAG.kvModRevision, prevKv.modRevision);
      writeNumberField(writer, TAG.kvVersion, prevKv.version);
      writeBytesField(writer, TAG.kvValue, prevKv.value);
      if (leaseBytes) {
        writer.varint(TAG.kvLease);
        writer.raw(leaseBytes);
      }
    }
    if (writer.position !== size) throw new Error(`bug: PutResponse encoded to ${writer.position} bytes, sized ${size}`);
    return writer.bytes;
  }
}

/**
 * The KV service definition with Put on this codec: the handler receives a PutRequest and returns
 * the encoded response (from PutResponseEncoder). Only the server side changes; clients built
 * from the generic definition are unaffected.
 */
export function withPutCodec(kv: ServiceDefinition): ServiceDefinition {
  const put = kv.Put;
  if (put === undefined) throw new Error('bug: the KV service definition has no Put method');
  return {
    ...kv,
    Put: { ...put, requestDeserialize: decodePutRequest, responseSerialize: (encoded: Buffer) => encoded },
  };
}
