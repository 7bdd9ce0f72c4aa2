// Little-endian fixed-width integers for the on-disk formats (WAL records, snapshot files).
// Terms and indexes are JavaScript numbers below 2^53, stored as 64-bit fields so that the format
// does not change if they ever become bigints; ids are bigint and stored as unsigned 64-bit.

const TWO_POW_32 = 0x1_0000_0000;

/** Thrown by ByteReader when the bytes do not hold what the format says; callers add file context. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

export class ByteWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private lengthBytes = 0;

  constructor(initialCapacityBytes = 64) {
    this.bytes = new Uint8Array(initialCapacityBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  get sizeBytes(): number {
    return this.lengthBytes;
  }

  private reserve(extraBytes: number): number {
    const at = this.lengthBytes;
    const needed = at + extraBytes;
    if (needed > this.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(needed, this.bytes.byteLength * 2));
      grown.set(this.bytes.subarray(0, at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.lengthBytes = needed;
    return at;
  }

  // reserve() may replace this.bytes and this.view, so it runs before they are read.
  u8(value: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
    return this;
  }

  u32(value: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, value, true);
    return this;
  }

  /** A non-negative safe integer in a 64-bit field. */
  u53(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not a safe non-negative integer`);
    const at = this.reserve(8);
    this.view.setUint32(at, value % TWO_POW_32, true);
    this.view.setUint32(at + 4, Math.floor(value / TWO_POW_32), true);
    return this;
  }

  u64(value: bigint): this {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`${value} is not an unsigned 64-bit integer`);
    const at = this.reserve(8);
    this.view.setBigUint64(at, value, true);
    return this;
  }

  raw(data: Uint8Array): this {
    const at = this.reserve(data.byteLength);
    this.bytes.set(data, at);
    return this;
  }

  /** The bytes written so far (a view, not a copy). */
  finish(): Uint8Array {
    return this.bytes.subarray(0, this.lengthBytes);
  }
}

export class ByteReader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remainingBytes(): number {
    return this.bytes.byteLength - this.offset;
  }

  private take(sizeBytes: number, what: string): number {
    if (sizeBytes > this.remainingBytes) {
      throw new DecodeError(`${what} needs ${sizeBytes} bytes at offset ${this.offset}, only ${this.remainingBytes} remain`);
    }
    const at = this.offset;
    this.offset += sizeBytes;
    return at;
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }

  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }

  u53(what: string): number {
    const at = this.take(8, what);
    const high = this.view.getUint32(at + 4, true);
    if (high >= 0x20_0000) throw new DecodeError(`${what} at offset ${at} is not below 2^53`);
    return high * TWO_POW_32 + this.view.getUint32(at, true);
  }

  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }

  /** A copy, so that a decoded value does not pin the (possibly large) buffer it came from. */
  raw(sizeBytes: number, what: string): Uint8Array {
    const at = this.take(sizeBytes, what);
    return this.bytes.slice(at, at + sizeBytes);
  }

  expectEnd(what: string): void {
    if (this.remainingBytes !== 0) throw new DecodeError(`${what} has ${this.remainingBytes} unexpected trailing bytes`);
  }
}
