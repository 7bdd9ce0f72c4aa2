// HPACK (RFC 7541) for the hand-written HTTP/2 server: the Huffman code, the decoder and the
// stateless encoder. The decoder is checked against the RFC's own examples and, more to the point,
// against an independent encoder with a dynamic table: nghttp2 inside node:http2's client, whose
// request blocks a raw TCP server reads off the wire. The encoder is checked the other way round:
// its blocks are sent as responses to that client, whose nghttp2 decoder must read them back.
// Both directions use one session for many requests, so the peer's table carries state between them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants as http2Constants, sensitiveHeaders } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import fc from 'fast-check';
import {
  EOS_SYMBOL, HUFFMAN_CODES, HUFFMAN_LENGTHS, HuffmanFailure, huffmanDecode, huffmanDecodedBound,
} from '../../../src/api/http2/hpack-huffman.ts';
import { HpackDecoder, HpackError } from '../../../src/api/http2/hpack-decoder.ts';
import type { HpackDecoderOptions } from '../../../src/api/http2/hpack-decoder.ts';
import { encodeHeaderBlock } from '../../../src/api/http2/hpack-encoder.ts';
import { STATIC_TABLE } from '../../../src/api/http2/hpack-static-table.ts';

const DEFAULTS: HpackDecoderOptions = { maxTableBytes: 4096, maxHeaderListBytes: 1 << 20 };

function decoder(options: Partial<HpackDecoderOptions> = {}): HpackDecoder {
  return new HpackDecoder({ ...DEFAULTS, ...options });
}

function decode(target: HpackDecoder, block: Uint8Array): string[] | undefined {
  return target.decode(block, 0, block.length);
}

/** 'ab 12 ...' (spaces ignored) as bytes. */
function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, '').match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

function latin1Bytes(text: string): number[] {
  return Array.from(text, (char) => char.charCodeAt(0));
}

/** §5.1 integer, written here independently of the encoder under test. */
function hpackInteger(flags: number, prefixMask: number, value: number): number[] {
  if (value < prefixMask) return [flags | value];
  const octets = [flags | prefixMask];
  let rest = value - prefixMask;
  for (; rest >= 128; rest = Math.floor(rest / 128)) octets.push((rest % 128) | 0x80);
  octets.push(rest);
  return octets;
}

/** §5.2 raw string literal. */
function rawString(text: string): number[] {
  return [...hpackInteger(0x00, 0x7f, text.length), ...latin1Bytes(text)];
}

/** §6.2.1 literal with incremental indexing and a new name. */
function literalIndexed(name: string, value: string): number[] {
  return [0x40, ...rawString(name), ...rawString(value)];
}

/** A test-only Huffman encoder: the codes as bit strings, padded with the EOS code's leading ones. */
function huffmanEncode(bytes: Iterable<number>): Uint8Array {
  let bits = '';
  for (const symbol of bytes) bits += HUFFMAN_CODES[symbol]!.toString(2).padStart(HUFFMAN_LENGTHS[symbol]!, '0');
  bits += '1'.repeat((8 - (bits.length % 8)) % 8);
  return Uint8Array.from(bits.match(/.{8}/g) ?? [], (octet) => parseInt(octet, 2));
}

function huffmanDecodeAll(code: Uint8Array): number[] | number {
  const out = new Uint8Array(huffmanDecodedBound(code.length));
  const length = huffmanDecode(code, 0, code.length, out);
  return length < 0 ? length : Array.from(out.subarray(0, length));
}

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('the codes built from the lengths are the RFC\'s', () => {
    const spotChecks: [symbol: number, code: number, length: number][] = [
      [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [48, 0x0, 5], [32, 0x14, 6], [58, 0x5c, 7],
      [92, 0x7fff0, 19], [255, 0x3ffffee, 26], [EOS_SYMBOL, 0x3fffffff, 30],
    ];
    for (const [symbol, code, length] of spotChecks) {
      assert.deepEqual([HUFFMAN_CODES[symbol], HUFFMAN_LENGTHS[symbol]], [code, length], `symbol ${symbol}`);
    }
    // A complete prefix code: the Kraft sum is exactly 1 (each term is a power of two, so exact).
    const kraft = Array.from(HUFFMAN_LENGTHS).reduce((sum, length) => sum + 2 ** -length, 0);
    assert.equal(kraft, 1);
  });

  test('decodes what the test encoder encodes, for any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      assert.deepEqual(huffmanDecodeAll(huffmanEncode(bytes)), Array.from(bytes));
    }), { numRuns: 500 });
  });

  test('the RFC\'s example strings (C.4.1)', () => {
    assert.deepEqual(huffmanDecodeAll(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), latin1Bytes('www.example.com'));
    assert.deepEqual(Array.from(huffmanEncode(latin1Bytes('no-cache'))), Array.from(hex('a8eb 1064 9cbf')));
  });

  test('refuses more than 7 bits of padding, padding that is not ones, and the EOS symbol', () => {
    // 'a' is 00011 (5 bits): then 3 bits of ones end the octet.
    assert.deepEqual(huffmanDecodeAll(hex('1f')), [0x61]);
    assert.equal(huffmanDecodeAll(hex('1f ff')), HuffmanFailure.longPadding, '11 bits of ones');
    assert.equal(huffmanDecodeAll(hex('ff')), HuffmanFailure.longPadding, '8 bits of ones alone');
    assert.equal(huffmanDecodeAll(hex('18')), HuffmanFailure.badPadding, 'padding 000');
    assert.equal(huffmanDecodeAll(hex('1e')), HuffmanFailure.badPadding, 'padding 110');
    assert.equal(huffmanDecodeAll(hex('ff ff ff ff')), HuffmanFailure.eos, 'the 30-bit EOS code and 2 bits');
    assert.equal(huffmanDecodeAll(Uint8Array.of(0x1f, 0xff, 0xff, 0xff, 0xff)), HuffmanFailure.eos, 'EOS after a symbol');
    for (const code of ['1f ff', '18', 'ff ff ff ff']) {
      const string = hex(code);
      assert.throws(() => decode(decoder(), Uint8Array.of(0x00, 0x01, 0x61, 0x80 | string.length, ...string)), HpackError, code);
    }
  });
});

describe('HpackDecoder: the RFC\'s examples (Appendix C)', () => {
  test('C.4: requests with Huffman coding, one table across them', () => {
    const target = decoder();
    assert.deepEqual(decode(target, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')),
      [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com']);
    assert.equal(target.tableBytes, 57);
    assert.deepEqual(decode(target, hex('8286 84be 5886 a8eb 1064 9cbf')),
      [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache']);
    assert.equal(target.tableBytes, 110);
    assert.deepEqual(decode(target, hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')),
      [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value']);
    assert.equal(target.tableBytes, 164);
  });

  test('C.6: responses with Huffman coding in a 256-byte table, with evictions', () => {
    const target = decoder({ maxTableBytes: 256 });
    const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
    assert.deepEqual(decode(target, hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`)),
    [':status', '302', 'cache-control', 'private', 'date', date1, 'location', 'https://www.example.com']);
    assert.equal(target.tableBytes, 222);
    assert.deepEqual(decode(target, hex('4883 640e ffc1 c0bf')),
      [':status', '307', 'cache-control', 'private', 'date', date1, 'location', 'https://www.example.com']);
    assert.equal(target.tableBytes, 222);
    assert.deepEqual(decode(target, hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
      77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`)),
    [':status', '200', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:22 GMT', 'location', 'https://www.example.com',
      'content-encoding', 'gzip', 'set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']);
    assert.equal(target.tableBytes, 215);
  });
});

describe('HpackDecoder: edge cases', () => {
  function assertHpackError(target: HpackDecoder, block: number[], message: RegExp): void {
    assert.throws(() => decode(target, Uint8Array.from(block)), (error: unknown) => error instanceof HpackError && message.test(error.message));
  }

  test('index 0, and an index past both tables', () => {
    assertHpackError(decoder(), [0x80], /index 0/);
    assertHpackError(decoder(), [0xbe], /^HPACK: index 62 is beyond the tables \(61 static \+ 0 dynamic\)$/);
    const target = decoder();
    decode(target, Uint8Array.from(literalIndexed('a', 'b')));
    assertHpackError(target, [0xbf], /index 63 is beyond the tables \(61 static \+ 1 dynamic\)/);
    assertHpackError(decoder(), [0x0f, 0x2f, 0x00], /index 62 is beyond/); // a literal's name index
  });

  test('a size update to 0 empties the table: its entries are gone', () => {
    const target = decoder();
    assert.deepEqual(decode(target, Uint8Array.from(literalIndexed('a', 'b'))), ['a', 'b']);
    assert.deepEqual(decode(target, Uint8Array.of(0xbe)), ['a', 'b']);
    assertHpackError(target, [0x20, 0xbe], /index 62 is beyond the tables \(61 static \+ 0 dynamic\)/);
  });

  test('size updates: only up to the advertised size, only before the first field', () => {
    assertHpackError(decoder(), hpackInteger(0x20, 0x1f, 4097), /size update to 4097 bytes, over the 4096 advertised/);
    assertHpackError(decoder({ maxTableBytes: 100 }), hpackInteger(0x20, 0x1f, 101), /over the 100 advertised/);
    assertHpackError(decoder(), [0x82, 0x20], /size update after a field/);
    // Two at the start (a decrease then the final size) are allowed, and a block may be only that.
    assert.deepEqual(decode(decoder(), Uint8Array.from([0x20, ...hpackInteger(0x20, 0x1f, 4096)])), []);
    assert.deepEqual(decode(decoder(), Uint8Array.from([0x20, 0x82])), [':method', 'GET']);
  });

  test('a smaller size evicts at once, and later entries respect it', () => {
    const target = decoder();
    decode(target, Uint8Array.from([...literalIndexed('a', 'x'.repeat(40)), ...literalIndexed('b', 'y'.repeat(40))]));
    assert.equal(target.tableBytes, 2 * 73);
    decode(target, Uint8Array.from(hpackInteger(0x20, 0x1f, 100)));
    assert.equal(target.tableBytes, 73);
    assert.deepEqual(decode(target, Uint8Array.of(0xbe)), ['b', 'y'.repeat(40)], 'the newest stays');
    assertHpackError(target, [0xbf], /1 dynamic/);
  });

  test('truncated integers and strings, and integers too large', () => {
    assertHpackError(decoder(), [0xff], /ends inside an integer/);
    assertHpackError(decoder(), [0xff, 0x80], /ends inside an integer/);
    assertHpackError(decoder(), [0x40], /ends inside a string/);
    assertHpackError(decoder(), [0x40, 0x01, 0x61], /ends inside a string/);
    assertHpackError(decoder(), [0x40, 0x05, 0x61], /a string of 5 octets with 1 left/);
    assertHpackError(decoder(), [0x40, 0x01, 0x61, 0x02, 0x62], /a string of 2 octets with 1 left/);
    // 2^31 - 2 claimed with nothing behind it: refused before anything is allocated.
    assertHpackError(decoder(), [0x00, ...hpackInteger(0, 0x7f, 2 ** 31 - 2)], /a string of 2147483646 octets with 0 left/);
    assertHpackError(decoder(), hpackInteger(0x80, 0x7f, 2 ** 31), /an integer over 2147483647/);
    assertHpackError(decoder(), [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /more than 5 continuation octets/);
    assertHpackError(decoder(), [0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f], /an integer over/);
  });

  test('a header list over the limit is reported, and its block still updates the table', () => {
    const target = decoder({ maxHeaderListBytes: 100 });
    const big = 'v'.repeat(64); // 'x-big' + 64 + 32 = 101 bytes
    assert.equal(decode(target, Uint8Array.from(literalIndexed('x-big', big))), undefined);
    assert.equal(target.tableBytes, 101);
    assert.equal(decode(target, Uint8Array.of(0xbe)), undefined, 'the same field again, indexed');
    const fits = 'v'.repeat(63); // exactly 100 bytes: accepted
    assert.deepEqual(decode(target, Uint8Array.from([0x7e, ...rawString(fits)])), ['x-big', fits]);
    assert.deepEqual(decode(target, Uint8Array.from(literalIndexed('a', 'b'))), ['a', 'b']);
    // The over-limit block's entry, behind two newer ones, by its name (the whole field is over the limit).
    assert.deepEqual(decode(target, Uint8Array.from([0x0f, 64 - 15, ...rawString('ok')])), ['x-big', 'ok']);
  });

  test('eviction: oldest first; an entry larger than the table empties it', () => {
    const target = decoder({ maxTableBytes: 100 });
    const entry = (name: string) => literalIndexed(name, 'x'.repeat(17)); // 1 + 17 + 32 = 50 bytes
    decode(target, Uint8Array.from([...entry('a'), ...entry('b')]));
    assert.equal(target.tableBytes, 100);
    decode(target, Uint8Array.from(entry('c')));
    assert.equal(target.tableBytes, 100);
    assert.deepEqual(decode(target, Uint8Array.of(0xbe, 0xbf)), ['c', 'x'.repeat(17), 'b', 'x'.repeat(17)]);
    assertHpackError(decoder({ maxTableBytes: 100 }), [...entry('a'), ...entry('b'), ...entry('c'), 0xc0], /64 is beyond the tables \(61 static \+ 2 dynamic\)/);
    // 'big' + 66 + 32 = 101 > 100: the field is still delivered, the table is left empty.
    assert.deepEqual(decode(target, Uint8Array.from(literalIndexed('big', 'y'.repeat(66)))), ['big', 'y'.repeat(66)]);
    assert.equal(target.tableBytes, 0);
    assertHpackError(target, [0xbe], /0 dynamic/);
  });

  test('a literal may name the entry it evicts', () => {
    const target = decoder({ maxTableBytes: 50 });
    decode(target, Uint8Array.from(literalIndexed('a', 'x'.repeat(17))));
    // Literal with indexing, name = index 62 ('a'), which its own insertion evicts.
    assert.deepEqual(decode(target, Uint8Array.from([0x40 | 62, ...rawString('y'.repeat(17))])), ['a', 'y'.repeat(17)]);
    assert.deepEqual(decode(target, Uint8Array.of(0xbe)), ['a', 'y'.repeat(17)]);
  });

  test('many entries: every index finds its entry as the table grows and wraps', () => {
    const target = decoder();
    const written: string[] = [];
    for (let round = 0; round < 400; round++) {
      const name = `n${round}`;
      const value = 'v'.repeat(round % 50);
      decode(target, Uint8Array.from(literalIndexed(name, value)));
      written.push(name, value);
      if (round % 37 !== 0) continue;
      // Every live entry, newest first, against what was written.
      let bytes = 0;
      for (let index = 62; bytes < target.tableBytes; index++) {
        const at = written.length - 2 * (index - 61);
        const fields = decode(target, Uint8Array.from(hpackInteger(0x80, 0x7f, index)));
        assert.deepEqual(fields, [written[at], written[at + 1]], `round ${round}, index ${index}`);
        bytes += written[at]!.length + written[at + 1]!.length + 32;
      }
      assert.equal(bytes, target.tableBytes);
    }
  });

  test('never-indexed and without-indexing literals leave the table alone', () => {
    const target = decoder();
    const block = [0x10, ...rawString('secret'), ...rawString('s'), 0x00, ...rawString('plain'), ...rawString('p'), 0x1f, 0x08, ...rawString('token')];
    assert.deepEqual(decode(target, Uint8Array.from(block)), ['secret', 's', 'plain', 'p', 'authorization', 'token']);
    assert.equal(target.tableBytes, 0);
  });

  test('after a throw the decoder refuses every later block', () => {
    const target = decoder();
    assert.throws(() => decode(target, Uint8Array.of(0x80)), HpackError);
    assert.throws(() => decode(target, Uint8Array.of(0x82)), /failed on an earlier block/);
  });

  test('decodes bytes[start, end) only', () => {
    assert.deepEqual(decoder().decode(Uint8Array.of(0xbe, 0x82, 0x84, 0xff), 1, 3), [':method', 'GET', ':path', '/']);
    assert.throws(() => decoder().decode(Uint8Array.of(0x82), 0, 2), RangeError);
  });
});

describe('encodeHeaderBlock', () => {
  test('static indexes, static names and new names, with multi-octet integers', () => {
    const block = encodeHeaderBlock([':status', '200', 'content-type', 'application/grpc', 'x-long', 'a'.repeat(300)]);
    assert.deepEqual(Array.from(block), [
      0x88, // :status 200, index 8
      0x0f, 0x10, ...rawString('application/grpc'), // name index 31 = 15 + 16
      0x00, ...rawString('x-long'), 0x7f, 0xad, 0x01, ...latin1Bytes('a'.repeat(300)), // 300 = 127 + 173
    ]);
    assert.deepEqual(Array.from(encodeHeaderBlock(['www-authenticate', 'x', ':authority', 'h'])), [0x0f, 0x2e, 0x01, 0x78, 0x01, 0x01, 0x68]);
    assert.deepEqual(Array.from(encodeHeaderBlock([])), []);
  });

  test('round trip through the decoder, for any Latin-1 fields', () => {
    const names = fc.oneof(fc.constantFrom(...STATIC_TABLE.map((entry) => entry.name)), fc.string({ unit: 'binary-ascii', maxLength: 200 }));
    const values = fc.oneof(
      fc.constantFrom(...STATIC_TABLE.map((entry) => entry.value)),
      fc.array(fc.integer({ min: 0, max: 0xff }), { maxLength: 400 }).map((codes) => String.fromCharCode(...codes)),
    );
    fc.assert(fc.property(fc.array(fc.tuple(names, values), { maxLength: 20 }), (pairs) => {
      const fields = pairs.flat();
      const target = decoder();
      assert.deepEqual(decode(target, encodeHeaderBlock(fields)), fields);
      assert.equal(target.tableBytes, 0, 'nothing was indexed');
    }), { numRuns: 300 });
  });

  test('refuses chars past Latin-1 and an odd list', () => {
    assert.throws(() => encodeHeaderBlock(['x-name', 'caf\u00e9 \u03c0']), /char code 960 at 5/);
    assert.throws(() => encodeHeaderBlock(['x-name']), /not a list of name, value pairs/);
  });
});

/** The text with every character past Latin-1 replaced by '?'. */
function latin1Only(text: string): string {
  return [...text].map((char) => (char.charCodeAt(0) > 0xff ? '?' : char)).join('');
}

describe('HpackDecoder: any bytes', () => {
  // Blocks that look like HPACK get further into the decoder than uniform noise.
  const representation = fc.oneof(
    fc.integer({ min: 0, max: 0xff }).map((octet) => [octet]),
    fc.integer({ min: 0, max: 80 }).map((index) => hpackInteger(0x80, 0x7f, index)),
    fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([name, value]) => literalIndexed(latin1Only(name), latin1Only(value))),
    fc.integer({ min: 0, max: 5000 }).map((size) => hpackInteger(0x20, 0x1f, size)),
    fc.uint8Array({ maxLength: 12 }).map((bytes) => [0x00, 0x01, 0x61, 0x80 | bytes.length, ...bytes]),
  );
  const block = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.array(representation, { maxLength: 12 }).map((parts) => Uint8Array.from(parts.flat())));

  /** Decodes the blocks in turn: each one's fields, or its HpackError's message and then nothing more. */
  function run(blocks: Uint8Array[]): (string[] | string | undefined)[] {
    const target = decoder({ maxTableBytes: 256, maxHeaderListBytes: 300 });
    const results: (string[] | string | undefined)[] = [];
    for (const bytes of blocks) {
      try {
        results.push(decode(target, bytes));
      } catch (error) {
        if (!(error instanceof HpackError)) throw error;
        results.push(error.message);
        break;
      }
    }
    return results;
  }

  test('throws nothing but HpackError, and decodes the same way every time', () => {
    fc.assert(fc.property(fc.array(block, { minLength: 1, maxLength: 6 }), (blocks) => {
      assert.deepEqual(run(blocks), run(blocks));
    }), { numRuns: 2000 });
  });
});

// A raw HTTP/2 server: enough of RFC 7540 to take node:http2's requests off the wire and answer
// each with a header block of the test's choosing.

const FRAME_HEADER_BYTES = 9;
const CONNECTION_PREFACE_BYTES = 24;
const FRAME = { headers: 0x1, settings: 0x4, continuation: 0x9 } as const;
const FLAG = { endStream: 0x1, ack: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;

/** Answers one request's header block with the response's header block. */
type StreamHandler = (streamId: number, block: Uint8Array) => Uint8Array;

interface RawServer {
  readonly port: number;
  readonly seen: { continuationFrames: number; paddedFrames: number; priorityFrames: number };
  /** What went wrong on a connection (a handler's throw, a frame out of place): the test reads it. */
  readonly failures: string[];
  close(): Promise<void>;
}

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

async function startRawServer(onConnection: () => StreamHandler): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const seen = { continuationFrames: 0, paddedFrames: 0, priorityFrames: 0 };
  const failures: string[] = [];
  const server: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the client's reset at the end
    const handle = onConnection();
    socket.write(frame(FRAME.settings, 0, 0, new Uint8Array(0))); // our (empty) SETTINGS: all defaults
    let pending = Buffer.alloc(0);
    let prefaceRead = false;
    let block: { streamId: number; parts: Buffer[] } | undefined;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!prefaceRead) {
        if (pending.length < CONNECTION_PREFACE_BYTES) return;
        pending = pending.subarray(CONNECTION_PREFACE_BYTES);
        prefaceRead = true;
      }
      while (pending.length >= FRAME_HEADER_BYTES) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < FRAME_HEADER_BYTES + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        const streamId = pending.readUInt32BE(5) & 0x7fffffff;
        const payload = pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
        pending = pending.subarray(FRAME_HEADER_BYTES + length);
        if (type === FRAME.settings && (flags & FLAG.ack) === 0) socket.write(frame(FRAME.settings, FLAG.ack, 0, new Uint8Array(0)));
        if (type === FRAME.headers) block = { streamId, parts: [headerFragment(payload, flags)] };
        if (type === FRAME.continuation) {
          seen.continuationFrames++;
          if (block?.streamId !== streamId) failures.push(`CONTINUATION on stream ${streamId} out of place`);
          block?.parts.push(payload);
        }
        if ((type === FRAME.headers || type === FRAME.continuation) && (flags & FLAG.endHeaders) !== 0 && block !== undefined) {
          const { streamId: id, parts } = block;
          block = undefined;
          try {
            const response = handle(id, Buffer.concat(parts));
            socket.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, id, response));
          } catch (error) {
            failures.push(`stream ${id}: ${(error as Error).stack}`);
            socket.destroy();
            return;
          }
        }
      }
    });
  });

  /** A HEADERS payload without its padding and priority fields. */
  function headerFragment(payload: Buffer, flags: number): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & FLAG.padded) {
      seen.paddedFrames++;
      end -= payload[0]!;
      start = 1;
    }
    if (flags & FLAG.priority) {
      seen.priorityFrames++;
      start += 5; // stream dependency and weight
    }
    return payload.subarray(start, end);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    seen,
    failures,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** One request on the session, ended at once; resolves with the response headers, or undefined if none came. */
function request(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<{ id: number; response: IncomingHttpHeaders | undefined }> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: true });
    let response: IncomingHttpHeaders | undefined;
    stream.on('response', (received) => response = received);
    stream.on('error', () => {}); // seen as no response
    stream.on('close', () => resolve({ id: stream.id ?? -1, response }));
    stream.resume();
  });
}

async function connectTo(port: number, options: { paddingStrategy?: number } = {}): Promise<ClientHttp2Session> {
  const session = connect(`http://127.0.0.1:${port}`, options);
  session.on('error', () => {}); // a failure shows as a missing response, with the server's reason
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return session;
}

/** [name, values] pairs as node:http2 takes them, and the flat field list it sends. */
type RequestFields = [name: string, values: string[]][];

function latin1String(codes: fc.Arbitrary<number>, maxLength: number): fc.Arbitrary<string> {
  return fc.array(codes, { maxLength }).map((chars) => String.fromCharCode(...chars));
}

describe('HpackDecoder against nghttp2 (node:http2\'s client encoder)', () => {
  let raw: RawServer;
  let session: ClientHttp2Session;
  /** Each stream's decoded request header list and its block's size, as the server read it. */
  const decoded = new Map<number, { fields: string[] | undefined; blockBytes: number }>();
  let connectionDecoder: HpackDecoder;

  before(async () => {
    raw = await startRawServer(() => {
      const target = decoder(); // one per connection, as the server will have
      connectionDecoder = target;
      return (streamId, block) => {
        decoded.set(streamId, { fields: decode(target, block), blockBytes: block.length });
        return Uint8Array.of(0x88); // :status 200, the static index: nothing of the encoder under test
      };
    });
    // Padded HEADERS frames exercise the server's frame reading; HPACK does not see the padding.
    session = await connectTo(raw.port, { paddingStrategy: http2Constants.PADDING_STRATEGY_MAX });
  });

  after(async () => {
    session?.destroy();
    await raw?.close();
  });

  /** Sends the request and returns the list the server decoded, and the block's size. */
  async function roundTrip(fields: RequestFields, sensitive: string[] = []): Promise<{ sent: string[]; fields: string[] | undefined; blockBytes: number }> {
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST', ':scheme': 'http', ':path': '/etcdserverpb.KV/Range', ':authority': `127.0.0.1:${raw.port}`,
    };
    for (const [name, values] of fields) headers[name] = values.length === 1 ? values[0] : values;
    // node:http2 sends the fields named under this symbol as never-indexed literals (§6.2.3).
    const { id, response } = await request(session, { ...headers, [sensitiveHeaders]: sensitive });
    assert.ok(response !== undefined, `no response to stream ${id}: ${raw.failures.join('; ') || 'no server failure'}`);
    const result = decoded.get(id);
    assert.ok(result !== undefined, `stream ${id} was not decoded`);
    const sent = [':method', 'POST', ':scheme', 'http', ':path', '/etcdserverpb.KV/Range', ':authority', `127.0.0.1:${raw.port}`,
      ...fields.flatMap(([name, values]) => values.flatMap((value) => [name, value]))];
    return { sent, ...result };
  }

  test('many varied requests on one session decode to what was sent', async () => {
    const printable = latin1String(fc.integer({ min: 0x20, max: 0x7e }), 60);
    // node:http2 sends a string's chars as octets, and takes every one of 0x20-0xff.
    const latin1 = latin1String(fc.integer({ min: 0x20, max: 0xff }), 60);
    // 1-2.5 KB values are indexed by nghttp2 and push older entries out of its 4096-byte table;
    // longer ones are sent as literals, and a few of them need CONTINUATION frames.
    const long = fc.tuple(fc.string({ minLength: 1, maxLength: 16 }), fc.integer({ min: 60, max: 600 }))
      .map(([unit, times]) => unit.replace(/[^\x20-\x7e]/g, '.').repeat(times));
    const base64 = fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes).toString('base64'));
    // Names repeat across requests (a small pool) so values and names are indexed and referred to.
    const name = fc.oneof(
      fc.constantFrom('x-request-id', 'x-tenant', 'x-note', 'accept', 'cache-control', 'x-custom-header'),
      fc.stringMatching(/^x-[a-z0-9]{1,12}$/),
    );
    const field = fc.oneof(
      fc.tuple(name, fc.array(fc.oneof(printable, latin1, fc.constantFrom('same', 'value')), { minLength: 1, maxLength: 3 })),
      fc.tuple(fc.constantFrom('x-long', 'x-long-2'), long.map((value) => [value])),
      fc.tuple(fc.constantFrom('grpc-trace-bin', 'x-token-bin'), base64.map((value) => [value])),
      fc.tuple(fc.constant('authorization'), printable.map((value) => [`Bearer ${value}`])), // nghttp2 never indexes short ones
    );
    const common: RequestFields = [['content-type', ['application/grpc']], ['te', ['trailers']], ['user-agent', ['grpc-node-js/1.13.4']]];
    const requests = fc.tuple(
      fc.uniqueArray(field, { selector: ([fieldName]) => fieldName, maxLength: 10 }),
      fc.subarray(common),
      fc.boolean(),
    );
    await fc.assert(fc.asyncProperty(requests, async ([fields, usual, secret]) => {
      const all: RequestFields = [...usual, ...fields];
      const sensitive = secret && fields.length > 0 ? [fields[0]![0]] : [];
      const result = await roundTrip(all, sensitive);
      assert.deepEqual(result.fields, result.sent);
    }), { numRuns: 300 });
    assert.ok(connectionDecoder.tableBytes > 0, 'nghttp2 indexed fields');
    assert.ok(raw.seen.paddedFrames > 0, 'padded HEADERS frames were read');
  });

  test('a repeated request comes as dynamic-table indexes, and decodes', async () => {
    const values = ['tenant-with-a-long-name-0123456789', 'caf\u00e9 \u00ff \u00a0 n\u00f6t\u00e9'];
    const fields: RequestFields = [['x-tenant', [values[0]!]], ['x-note', [values[1]!]]];
    const first = await roundTrip(fields);
    const second = await roundTrip(fields);
    assert.deepEqual(first.fields, first.sent);
    assert.deepEqual(second.fields, second.sent);
    // The second block carries neither value (:path is a literal every time: nghttp2 never indexes it).
    const valueBytes = values.reduce((sum, value) => sum + Math.min(value.length, huffmanEncode(latin1Bytes(value)).length), 0);
    assert.ok(first.blockBytes - second.blockBytes >= valueBytes, `blocks of ${first.blockBytes} and ${second.blockBytes} bytes`);
  });

  test('a header list over 16 KB comes in CONTINUATION frames, and decodes', async () => {
    const before = raw.seen.continuationFrames;
    // Octets over 0x7f have Huffman codes longer than 8 bits, so nghttp2 sends them raw: 21 KB.
    const fields: RequestFields = [['x-a', ['\u00e0'.repeat(7000)]], ['x-b', ['\u00e1'.repeat(7000)]], ['x-c', ['\u00e2'.repeat(7000)]]];
    const result = await roundTrip(fields);
    assert.deepEqual(result.fields, result.sent);
    assert.ok(raw.seen.continuationFrames > before, 'CONTINUATION frames were sent');
  });
});

describe('encodeHeaderBlock against nghttp2 (node:http2\'s client decoder)', () => {
  let raw: RawServer;
  let session: ClientHttp2Session;
  /** The response to the next request: requests go one at a time. */
  let nextResponse: string[] = [];

  before(async () => {
    raw = await startRawServer(() => () => encodeHeaderBlock(nextResponse));
    session = await connectTo(raw.port);
  });

  after(async () => {
    session?.destroy();
    await raw?.close();
  });

  /** The response headers as node presents them: one property per field, ':status' a number. */
  function asNodeHeaders(fields: string[]): Record<string, string | number> {
    const headers: Record<string, string | number> = {};
    for (let at = 0; at < fields.length; at += 2) headers[fields[at]!] = fields[at] === ':status' ? Number(fields[at + 1]) : fields[at + 1]!;
    return headers;
  }

  test('the client reads back every response block', async () => {
    // nghttp2 drops (silently) a field whose value has a control char, DEL, or space or tab at
    // either end (RFC 9113 §8.2.1), so the values keep to what it takes.
    const inner = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09)).filter((code) => code !== 0x7f);
    const value = latin1String(inner, 80).map((text) => text.replace(/^[ \t]+|[ \t]+$/g, ''));
    const name = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/).filter((text) => text !== 'x-long');
    // Static names with other values (a name index of 15 or more needs a continuation octet).
    const staticName = fc.constantFrom('cache-control', 'server', 'date', 'etag', 'vary', 'via', 'www-authenticate', 'content-language');
    const extra = fc.uniqueArray(fc.tuple(fc.oneof(name, staticName), value), { selector: ([fieldName]) => fieldName, maxLength: 12 });
    const status = fc.constantFrom('200', '204', '404', '500', '418', '503');
    await fc.assert(fc.asyncProperty(status, extra, fc.boolean(), async (code, pairs, exactStatic) => {
      const fields = [':status', code, 'content-type', 'application/grpc', 'grpc-status', '0', 'x-long', 'a'.repeat(300), ...pairs.flat()];
      if (exactStatic) fields.push('accept-encoding', 'gzip, deflate', 'x'.repeat(200), 'a name over 127 octets');
      nextResponse = fields;
      const { id, response } = await request(session, { ':method': 'POST', ':path': '/etcdserverpb.KV/Range' });
      assert.ok(response !== undefined, `no response on stream ${id}: ${raw.failures.join('; ') || 'the client refused the block'}`);
      assert.deepEqual(Object.fromEntries(Object.entries(response)), asNodeHeaders(fields));
    }), { numRuns: 300 });
  });
});
