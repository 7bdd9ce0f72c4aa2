// HPACK (RFC 7541) header block decoding, for the HTTP/2 server: every request's HEADERS block
// comes through here, so the common cases (an indexed field, a literal with an indexed name) hand
// back strings that already exist instead of building new ones.
//
// Header octets are Latin-1 here, one char per octet, as node:http2 presents them: the decoder
// makes no judgement on names or values (upper-case names, pseudo-header order and the like are
// HTTP/2's rules, RFC 7540 §8.1.2, for the caller).

import { STATIC_TABLE } from './hpack-static-table.ts';
import type { HeaderEntry } from './hpack-static-table.ts';
import { describeHuffmanFailure, huffmanDecode, huffmanDecodedBound } from './hpack-huffman.ts';

/** A connection error of type COMPRESSION_ERROR (RFC 7541 §2.4, RFC 7540 §4.3). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE we advertise: the largest dynamic table a size update may ask for (HTTP/2's default is 4096). */
  maxTableBytes: number;
  /** Largest header list (RFC 7540 §6.5.2 size: name + value + 32 per field) we accept; a larger one is reported, not thrown. */
  maxHeaderListBytes: number;
}

/** RFC 7541 §4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;
const STATIC_COUNT = STATIC_TABLE.length;
/** Integers (indexes, lengths, sizes) past this are refused: nothing legitimate is that large. */
const MAX_INTEGER = 0x7fffffff;
/** Enough continuation octets for MAX_INTEGER (31 bits past any prefix, 7 bits each). */
const MAX_CONTINUATION_OCTETS = 5;

const NO_BYTES = new Uint8Array(0);

export class HpackDecoder {
  private readonly maxTableBytes: number;
  private readonly maxHeaderListBytes: number;
  private readonly table: DynamicTable;
  /** Set by a throw: the peer's encoder and this decoder no longer agree on the table. */
  private failed = false;
  /** Huffman strings decode into this before they become a string; grown as needed, to at most 8/5 of the largest block. */
  private scratch = new Uint8Array(256);
  // The block being decoded, bytes[at, end), held here so the small readers below share it.
  private bytes: Uint8Array = NO_BYTES;
  private at = 0;
  private end = 0;

  constructor(options: HpackDecoderOptions) {
    checkLimit('maxTableBytes', options.maxTableBytes);
    checkLimit('maxHeaderListBytes', options.maxHeaderListBytes);
    this.maxTableBytes = options.maxTableBytes;
    this.maxHeaderListBytes = options.maxHeaderListBytes;
    // The table starts at the size we advertise, which the peer's encoder may shrink with size
    // updates. That is exact for HTTP/2's default of 4096; a smaller size binds the peer only from
    // its acknowledgement of our SETTINGS (RFC 7540 §6.5.3), and blocks it sent before that may
    // still fill 4096 bytes.
    this.table = new DynamicTable(options.maxTableBytes);
  }

  /** Dynamic table occupancy in bytes (RFC size), for tests. */
  get tableBytes(): number {
    return this.table.bytes;
  }

  /**
   * Decodes one complete header block (bytes[start, end)). Returns the fields as a flat array
   * [name0, value0, name1, value1, ...], in order, or undefined when the list is over
   * maxHeaderListBytes (the block is still decoded to the end, so the dynamic table stays in
   * step with the peer's encoder). Throws HpackError on malformed input; after a throw the
   * decoder is unusable (the connection is closed by the caller).
   */
  decode(bytes: Uint8Array, start: number, end: number): string[] | undefined {
    if (this.failed) throw new HpackError('HPACK: the decoder failed on an earlier block');
    if (!(start >= 0 && start <= end && end <= bytes.length)) throw new RangeError(`HpackDecoder: [${start}, ${end}) is not within ${bytes.length} bytes`);
    this.bytes = bytes;
    this.at = start;
    this.end = end;
    try {
      return this.decodeFields();
    } catch (error) {
      this.failed = true;
      throw error;
    } finally {
      this.bytes = NO_BYTES; // holds no caller's buffer between blocks
    }
  }

  private decodeFields(): string[] | undefined {
    const fields: string[] = [];
    let listBytes = 0;
    while (this.at < this.end) {
      const first = this.bytes[this.at]!;
      let name: string;
      let value: string;
      if (first & 0x80) { // §6.1 indexed field
        const entry = this.entry(this.readInteger(0x7f));
        name = entry.name;
        value = entry.value;
      } else if (first & 0x40) { // §6.2.1 literal with incremental indexing
        name = this.readName(0x3f);
        value = this.readString();
        this.table.add(name, value);
      } else if (first & 0x20) { // §6.3 dynamic table size update; any field before it added at least 32
        if (listBytes > 0) throw new HpackError('HPACK: a dynamic table size update after a field');
        this.resizeTable(this.readInteger(0x1f));
        continue;
      } else { // §6.2.2 without indexing, §6.2.3 never indexed: the same to a decoder that does not re-encode
        name = this.readName(0x0f);
        value = this.readString();
      }
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      // Past the limit the fields are dropped, but the block is read on for the table's sake.
      if (listBytes <= this.maxHeaderListBytes) fields.push(name, value);
    }
    return listBytes <= this.maxHeaderListBytes ? fields : undefined;
  }

  private resizeTable(bytes: number): void {
    if (bytes > this.maxTableBytes) throw new HpackError(`HPACK: a dynamic table size update to ${bytes} bytes, over the ${this.maxTableBytes} advertised`);
    this.table.resize(bytes);
  }

  /** The entry at a wire index: the static table first, then the dynamic table, newest first. */
  private entry(index: number): HeaderEntry {
    if (index === 0) throw new HpackError('HPACK: index 0');
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]!;
    const entry = this.table.get(index - STATIC_COUNT);
    if (entry === undefined) throw new HpackError(`HPACK: index ${index} is beyond the tables (${STATIC_COUNT} static + ${this.table.count} dynamic)`);
    return entry;
  }

  /** A literal's name: the indexed entry's own string, or (index 0) a new string. */
  private readName(prefixMask: number): string {
    const index = this.readInteger(prefixMask);
    return index === 0 ? this.readString() : this.entry(index).name;
  }

  /** §5.1: an integer with a prefix of `prefixMask` bits in the current octet. */
  private readInteger(prefixMask: number): number {
    if (this.at >= this.end) throw truncated('an integer');
    const bytes = this.bytes;
    let value = bytes[this.at++]! & prefixMask;
    if (value < prefixMask) return value;
    let factor = 1;
    for (let octets = 0; octets < MAX_CONTINUATION_OCTETS; octets++) {
      if (this.at >= this.end) throw truncated('an integer');
      const octet = bytes[this.at++]!;
      value += (octet & 0x7f) * factor;
      if (value > MAX_INTEGER) throw new HpackError(`HPACK: an integer over ${MAX_INTEGER}`);
      if ((octet & 0x80) === 0) return value;
      factor *= 128;
    }
    throw new HpackError(`HPACK: an integer with more than ${MAX_CONTINUATION_OCTETS} continuation octets`);
  }

  /** §5.2: a string literal, raw or Huffman-coded. Its length is checked against the block first. */
  private readString(): string {
    if (this.at >= this.end) throw truncated('a string');
    const huffman = (this.bytes[this.at]! & 0x80) !== 0;
    const length = this.readInteger(0x7f);
    const start = this.at;
    if (length > this.end - start) throw new HpackError(`HPACK: a string of ${length} octets with ${this.end - start} left in the block`);
    this.at = start + length;
    if (!huffman) return latin1(this.bytes, start, start + length);
    const out = this.scratchFor(huffmanDecodedBound(length));
    const decoded = huffmanDecode(this.bytes, start, start + length, out);
    if (decoded < 0) throw new HpackError(`HPACK: ${describeHuffmanFailure(decoded)}`);
    return latin1(out, 0, decoded);
  }

  private scratchFor(octets: number): Uint8Array {
    if (this.scratch.length < octets) this.scratch = new Uint8Array(Math.max(octets, this.scratch.length * 2));
    return this.scratch;
  }
}

function checkLimit(option: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`HpackDecoder: ${option} must be a non-negative integer, got ${value}`);
}

function truncated(what: string): HpackError {
  return new HpackError(`HPACK: the block ends inside ${what}`);
}

/**
 * RFC 7541 §2.3.2: the dynamic table, a ring of entries, newest at `newest`, evicted oldest first.
 * Its size in entries is bounded by the byte limit (each entry is at least 32 bytes).
 */
class DynamicTable {
  /** Current limit in bytes: the advertised size, or less after a size update. */
  private limit: number;
  private ring: (HeaderEntry | undefined)[] = new Array(16).fill(undefined);
  private newest = -1; // the ring's index of the newest entry
  count = 0;
  bytes = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** The entry at a dynamic index (1 = newest), or undefined past the end. */
  get(index: number): HeaderEntry | undefined {
    if (index > this.count) return undefined;
    return this.ring[(this.newest - index + 1) & (this.ring.length - 1)];
  }

  /** §4.4: an entry larger than the limit empties the table and is not added. */
  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.limit) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.limit - size);
    if (this.count === this.ring.length) this.grow();
    this.newest = (this.newest + 1) & (this.ring.length - 1);
    this.ring[this.newest] = { name, value };
    this.count++;
    this.bytes += size;
  }

  /** §4.3: a smaller limit evicts at once. */
  resize(limit: number): void {
    this.limit = limit;
    this.evictTo(limit);
  }

  private evictTo(bytes: number): void {
    const mask = this.ring.length - 1;
    while (this.bytes > bytes) {
      const oldest = (this.newest - this.count + 1) & mask;
      const entry = this.ring[oldest]!;
      this.ring[oldest] = undefined;
      this.bytes -= entry.name.length + entry.value.length + ENTRY_OVERHEAD;
      this.count--;
    }
  }

  /** Doubles the ring (only when full), oldest entry first at 0. */
  private grow(): void {
    const ring: (HeaderEntry | undefined)[] = new Array(this.ring.length * 2).fill(undefined);
    for (let index = this.count; index >= 1; index--) ring[this.count - index] = this.get(index);
    this.ring = ring;
    this.newest = this.count - 1;
  }
}

/** Strings this short are built a char at a time: cheaper than a subarray and an apply. */
const SHORT_STRING = 12;
/** Chars per String.fromCharCode call, well inside any engine's argument limit. */
const CHUNK = 4096;

/** bytes[start, end) as a string, one char per octet. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  let text = '';
  if (end - start <= SHORT_STRING) {
    for (let at = start; at < end; at++) text += String.fromCharCode(bytes[at]!);
    return text;
  }
  for (let at = start; at < end; at += CHUNK) {
    const chunk = bytes.subarray(at, Math.min(at + CHUNK, end));
    text += String.fromCharCode.apply(null, chunk as unknown as number[]);
  }
  return text;
}
