// A small length-prefixed binary encoding shared by the Raft command codec and the snapshot format:
// unsigned varints (LEB128) for counts and revisions, a sign byte plus varint for integers that may
// be negative, fixed 8 bytes for 64-bit IDs (two's complement for int64, plain for uint64), and varint-length-prefixed byte
// strings. Numbers are checked on the way in (a request's bad number is the caller's error) and on
// the way out (malformed input ends in the reader's `fail`).

import { KvBugError, KvError } from './errors.ts';

/** 2^53 needs 8 groups of 7 bits; a longer varint is garbage. */
const MAX_VARINT_BYTES = 8;
const INITIAL_CAPACITY_BYTES = 256;
/** A writer reused across calls (see reset) keeps a buffer up to this size; a larger one is let go. */
const REUSED_CAPACITY_MAX_BYTES = 64 * 1024;
/** An in-place writer commits its reservation this much at a time (or what one write needs): fresh bytes cost when touched. */
const IN_PLACE_GROWTH_BYTES = 1024 * 1024;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

export interface ByteWriterOptions {
  /**
   * Grow in place: the buffer is a resizable ArrayBuffer that reserves this many bytes of address
   * space and commits them as they are written, so nothing written is ever copied and a view of it
   * stays valid (see viewFrom). For encodings of hundreds of MB: each copy of a doubling buffer
   * touched that much fresh memory at once. Beyond the reservation the writer moves to a twice
   * larger one (a single copy), so the reservation is an estimate, never a limit.
   */
  growInPlaceBytes?: number;
}

/**
 * A resizable buffer of `byteLength` bytes reserving `maxByteLength`, or undefined where the
 * platform refuses the reservation (a limit on address space): the writer then grows by copying.
 */
function reserveInPlace(byteLength: number, maxByteLength: number): Uint8Array<ArrayBuffer> | undefined {
  try {
    return new Uint8Array(new ArrayBuffer(byteLength, { maxByteLength }));
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

export class ByteWriter {
  private buffer: Uint8Array<ArrayBuffer>;
  private view: DataView;
  private length = 0;

  constructor(options: ByteWriterOptions = {}) {
    const reservation = options.growInPlaceBytes === undefined ? undefined : Math.max(INITIAL_CAPACITY_BYTES, options.growInPlaceBytes);
    this.buffer = (reservation !== undefined && reserveInPlace(0, reservation)) || new Uint8Array(INITIAL_CAPACITY_BYTES);
    this.view = new DataView(this.buffer.buffer);
  }

  /**
   * Starts over, keeping the buffer (up to REUSED_CAPACITY_MAX_BYTES): a hot encoder reuses one
   * writer instead of allocating and growing a buffer per call. finish() copies out, so what it
   * returned before stays valid.
   */
  reset(): this {
    if (this.buffer.buffer.resizable) throw new KvBugError('an in-place writer is not reused: views of its bytes must stay valid');
    this.length = 0;
    if (this.buffer.length > REUSED_CAPACITY_MAX_BYTES) {
      this.buffer = new Uint8Array(INITIAL_CAPACITY_BYTES);
      this.view = new DataView(this.buffer.buffer);
    }
    return this;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const buffer = this.buffer.buffer;
    if (buffer.resizable && needed <= buffer.maxByteLength) {
      // The views track the buffer's length: resizing commits more of the reservation, copying nothing.
      buffer.resize(Math.min(buffer.maxByteLength, Math.max(needed, this.length + IN_PLACE_GROWTH_BYTES)));
      return;
    }
    let capacity = Math.max(1, buffer.resizable ? buffer.maxByteLength : this.buffer.length) * 2;
    while (capacity < needed) capacity *= 2;
    const grown = (buffer.resizable && reserveInPlace(needed, capacity)) || new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new KvBugError(`not a byte: ${value}`);
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  uvarint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `expected an integer in [0, 2^53), got ${value}`);
    }
    let rest = value;
    while (rest >= 0x80) {
      this.u8((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.u8(rest);
  }

  /** A sign byte then the magnitude: lossless for every safe integer, unlike zigzag in doubles. */
  int(value: number): void {
    if (!Number.isSafeInteger(value)) throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `expected an integer below 2^53, got ${value}`);
    this.u8(value < 0 ? 1 : 0);
    this.uvarint(Math.abs(value));
  }

  int64(value: bigint): void {
    if (value < INT64_MIN || value > INT64_MAX) throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `expected a 64-bit integer, got ${value}`);
    this.reserve(8);
    this.view.setBigInt64(this.length, value);
    this.length += 8;
  }

  uint64(value: bigint): void {
    if (value < 0n || value > UINT64_MAX) throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `expected an unsigned 64-bit integer, got ${value}`);
    this.reserve(8);
    this.view.setBigUint64(this.length, value);
    this.length += 8;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value >>> 0);
    this.length += 4;
  }

  bytes(value: Uint8Array): void {
    this.uvarint(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  get sizeBytes(): number {
    return this.length;
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /**
   * The bytes written from `start` on, as a view of the writer's buffer (no copy). An in-place
   * writer's bytes never move within its reservation; any other writer's view is valid only until the
   * next write, which may move the buffer.
   */
  viewFrom(start: number): Uint8Array {
    return new Uint8Array(this.buffer.buffer, start, this.length - start);
  }
}

/** Reads what ByteWriter wrote; every malformed input ends in `fail`, never in a wrong value. */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;
  private readonly input: Uint8Array;
  private readonly fail: (detail: string) => Error;
  /** Byte fields are views of the input instead of copies: only for input that never changes. */
  private readonly shareBytes: boolean;

  constructor(input: Uint8Array, fail: (detail: string) => Error, options: { shareBytes?: boolean } = {}) {
    this.input = input;
    this.fail = fail;
    this.shareBytes = options.shareBytes === true;
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }

  get remainingBytes(): number {
    return this.input.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(bytes: number, what: string): void {
    if (this.remainingBytes < bytes) {
      throw this.fail(`truncated: ${what} needs ${bytes} bytes at offset ${this.offset}, ${this.remainingBytes} left`);
    }
  }

  u8(what = 'byte'): number {
    this.need(1, what);
    return this.input[this.offset++]!;
  }

  bool(what: string): boolean {
    const value = this.u8(what);
    if (value > 1) throw this.fail(`${what} must be 0 or 1, got ${value} at offset ${this.offset - 1}`);
    return value === 1;
  }

  uvarint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        // One encoding per number: an overlong varint (a trailing zero group) is not ours.
        if (byte === 0 && i > 0) throw this.fail(`${what} is an overlong varint at offset ${this.offset}`);
        if (!Number.isSafeInteger(value)) throw this.fail(`${what} exceeds 2^53 at offset ${this.offset}`);
        return value;
      }
      scale *= 0x80;
    }
    throw this.fail(`${what} is a varint longer than ${MAX_VARINT_BYTES} bytes at offset ${this.offset}`);
  }

  int(what: string): number {
    const negative = this.bool(`${what} sign`);
    const magnitude = this.uvarint(what);
    if (negative && magnitude === 0) throw this.fail(`${what} is a negative zero at offset ${this.offset}`);
    return negative ? -magnitude : magnitude;
  }

  int64(what: string): bigint {
    this.need(8, what);
    const value = this.view.getBigInt64(this.offset);
    this.offset += 8;
    return value;
  }

  uint64(what: string): bigint {
    this.need(8, what);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  bytes(what: string): Uint8Array {
    const length = this.uvarint(`${what} length`);
    return this.raw(length, what);
  }

  raw(length: number, what: string): Uint8Array {
    this.need(length, what);
    const end = this.offset + length;
    const value = this.shareBytes ? this.input.subarray(this.offset, end) : this.input.slice(this.offset, end);
    this.offset += length;
    return value;
  }

  /** Trailing bytes mean the input is not what we think it is. */
  expectEnd(what: string): void {
    if (this.remainingBytes !== 0) throw this.fail(`${this.remainingBytes} unexpected bytes after the ${what}`);
  }
}
