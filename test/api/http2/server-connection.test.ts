// The member's own HTTP/2 server connection (src/api/http2/server-connection.ts), driven frame by
// frame through a recording transport: what it answers to each part of the protocol, flow control
// both ways, limits, and every kind of protocol violation. Real clients (node:http2, grpc-js,
// etcdctl) are in test/api/unary-fast-path.test.ts and the member tests.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServerConnection } from '../../../src/api/http2/server-connection.ts';
import type { ConnectionHandler, ServerConnectionOptions } from '../../../src/api/http2/server-connection.ts';
import type { ServerStream, StreamCloseReason } from '../../../src/api/http2/server-stream.ts';
import { CLIENT_PREFACE, ErrorCode, FrameFlag, FrameType, Setting, frame, readUint32, settingsFrame, windowUpdateFrame, rstStreamFrame } from '../../../src/api/http2/frame.ts';
import { encodeHeaderBlock } from '../../../src/api/http2/hpack-encoder.ts';
import { HpackDecoder } from '../../../src/api/http2/hpack-decoder.ts';

const OPTIONS: ServerConnectionOptions = {
  maxConcurrentStreams: 4,
  streamWindowBytes: 1_000,
  connectionWindowBytes: 100_000,
  maxHeaderListBytes: 1_000,
  maxWaitingBytes: 100_000,
  nowMs: () => clockMs,
};
/** The connections' clock (the rate budgets read it); tests move it. */
let clockMs = 0;

interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** A connection with a transport that records every write, and a handler that records every stream. */
class Harness {
  readonly writes: Uint8Array[] = [];
  readonly streams: ServerStream[] = [];
  readonly events: string[] = [];
  readonly errors: { errorCode: number; message: string }[] = [];
  ended = false;
  private readonly deferred: (() => void)[] = [];
  readonly connection: ServerConnection;
  /** Decodes the server's header blocks, as a client would. */
  private readonly decoder = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 1 << 20 });
  private pending = new Uint8Array(0);

  constructor(options: ServerConnectionOptions = OPTIONS, onStream?: (stream: ServerStream) => void) {
    const handler: ConnectionHandler = {
      onStream: (stream) => {
        this.streams.push(stream);
        stream.consumer = {
          onData: (chunk) => this.events.push(`data ${stream.id} ${Buffer.from(chunk).toString()}`),
          onEnd: () => this.events.push(`end ${stream.id}`),
          onClose: (reason: StreamCloseReason) => this.events.push(`close ${stream.id} ${reason.errorCode}`),
        };
        onStream?.(stream);
      },
      onHeaderListTooLarge: (stream) => {
        this.events.push(`too large ${stream.id}`);
        stream.reset(ErrorCode.REFUSED_STREAM);
      },
      onConnectionError: (errorCode, message) => this.errors.push({ errorCode, message }),
    };
    this.connection = new ServerConnection({
      // A view, not a copy: bytes the connection wrote over after handing them out would show.
      write: (bytes) => this.writes.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
      end: () => { this.ended = true; },
      defer: (work) => this.deferred.push(work),
    }, handler, options);
  }

  runDeferred(): void {
    while (this.deferred.length > 0) this.deferred.shift()!();
  }

  /** Runs deferred work (the transport's flush) and returns the frames written since the last call. */
  frames(): ParsedFrame[] {
    this.runDeferred();
    const bytes = Buffer.concat([this.pending, ...this.writes.splice(0)]);
    const frames: ParsedFrame[] = [];
    let offset = 0;
    while (bytes.length - offset >= 9) {
      const length = bytes.readUIntBE(offset, 3);
      if (bytes.length - offset - 9 < length) break;
      frames.push({ type: bytes[offset + 3]!, flags: bytes[offset + 4]!, streamId: bytes.readUInt32BE(offset + 5) & 0x7fffffff, payload: bytes.subarray(offset + 9, offset + 9 + length) });
      offset += 9 + length;
    }
    this.pending = bytes.subarray(offset);
    return frames;
  }

  headersOf(frame: ParsedFrame): string[] {
    return this.decoder.decode(frame.payload, 0, frame.payload.length) ?? [];
  }

  send(...frames: Uint8Array[]): void {
    for (const bytes of frames) this.connection.receive(bytes);
  }

  /** The preface and an empty SETTINGS, then drops the server's own opening frames. */
  open(settings: [number, number][] = []): void {
    this.send(CLIENT_PREFACE, settingsFrame(settings));
    this.frames();
  }

  goAway(): { lastStreamId: number; errorCode: number; debug: string } | undefined {
    const found = this.frames().find((f) => f.type === FrameType.GOAWAY);
    if (found === undefined) return undefined;
    return { lastStreamId: readUint32(found.payload, 0), errorCode: readUint32(found.payload, 4), debug: Buffer.from(found.payload.subarray(8)).toString() };
  }
}

const REQUEST = [':method', 'POST', ':scheme', 'http', ':path', '/etcdserverpb.KV/Put', 'content-type', 'application/grpc', 'te', 'trailers'];

function headers(streamId: number, fields: string[] = REQUEST, flags: number = FrameFlag.END_HEADERS): Uint8Array {
  return frame(FrameType.HEADERS, flags, streamId, encodeHeaderBlock(fields));
}

function data(streamId: number, text: string, flags = 0): Uint8Array {
  return frame(FrameType.DATA, flags, streamId, Buffer.from(text));
}

describe('opening a connection', () => {
  test('the server sends its SETTINGS and opens the connection window, then acknowledges the client\'s SETTINGS', () => {
    const harness = new Harness();
    harness.send(CLIENT_PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 5_000]]));
    const frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.flags, f.streamId]), [
      [FrameType.SETTINGS, 0, 0], [FrameType.WINDOW_UPDATE, 0, 0], [FrameType.SETTINGS, FrameFlag.ACK, 0],
    ]);
    const settings = frames[0]!.payload;
    const values = new Map<number, number>();
    for (let i = 0; i < settings.length; i += 6) values.set((settings[i]! << 8) | settings[i + 1]!, readUint32(settings, i + 2));
    assert.equal(values.get(Setting.MAX_CONCURRENT_STREAMS), OPTIONS.maxConcurrentStreams);
    assert.equal(values.get(Setting.INITIAL_WINDOW_SIZE), OPTIONS.streamWindowBytes);
    assert.equal(values.get(Setting.MAX_HEADER_LIST_SIZE), OPTIONS.maxHeaderListBytes);
    assert.equal(readUint32(frames[1]!.payload, 0), OPTIONS.connectionWindowBytes - 65_535);
  });

  test('a connection that does not start with the preface gets GOAWAY PROTOCOL_ERROR and is closed', () => {
    const harness = new Harness();
    harness.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const goAway = harness.goAway();
    assert.equal(goAway?.errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.match(goAway!.debug, /preface/);
    assert.ok(harness.ended);
  });

  test('the preface must be followed by SETTINGS', () => {
    const harness = new Harness();
    harness.send(CLIENT_PREFACE, headers(1));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.equal(harness.streams.length, 0);
  });

  test('PING is answered with an ACK carrying the same 8 bytes', () => {
    const harness = new Harness();
    harness.open();
    harness.send(frame(FrameType.PING, 0, 0, Buffer.from('12345678')));
    const [pong] = harness.frames();
    assert.equal(pong?.type, FrameType.PING);
    assert.equal(pong?.flags, FrameFlag.ACK);
    assert.equal(Buffer.from(pong!.payload).toString(), '12345678');
  });
});

describe('a unary call', () => {
  test('headers, data and end reach the consumer', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1), data(1, 'hello'), data(1, ' world', FrameFlag.END_STREAM));
    assert.deepEqual([...harness.streams[0]!.headers], REQUEST);
    assert.deepEqual(harness.events, ['data 1 hello', 'data 1  world', 'end 1']);
  });

  test('the answer leaves in one write, after the synchronous work, in order', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    const stream = harness.streams[0]!;
    stream.sendHeaders(encodeHeaderBlock([':status', '200']), false);
    stream.sendData(Buffer.from('answer'));
    stream.sendTrailers(encodeHeaderBlock(['grpc-status', '0']));
    assert.equal(harness.writes.length, 0, 'nothing is written before the deferred flush');
    harness.runDeferred();
    assert.equal(harness.writes.length, 1, 'one write');
    const frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.flags, f.streamId]), [
      [FrameType.HEADERS, FrameFlag.END_HEADERS, 1],
      [FrameType.DATA, 0, 1],
      [FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1],
    ]);
    assert.deepEqual(harness.headersOf(frames[0]!), [':status', '200']);
    assert.equal(Buffer.from(frames[1]!.payload).toString(), 'answer');
    assert.deepEqual(harness.headersOf(frames[2]!), ['grpc-status', '0']);
    assert.equal(harness.connection.openStreams, 0, 'a stream ended on both sides is forgotten');
  });

  test('frames split at every byte give the same events', () => {
    const bytes = Buffer.concat([CLIENT_PREFACE, settingsFrame([]), headers(1), data(1, 'abc'), data(1, 'def', FrameFlag.END_STREAM), headers(3, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM)]);
    const whole = new Harness();
    whole.send(bytes);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
      const split = new Harness();
      let at = 0;
      for (const cut of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
        split.send(bytes.subarray(at, cut));
        at = cut;
      }
      assert.deepEqual(split.events, whole.events);
      assert.deepEqual(split.streams.map((s) => [...s.headers]), whole.streams.map((s) => [...s.headers]));
    }), { numRuns: 200 });
    assert.deepEqual(whole.events, ['data 1 abc', 'data 1 def', 'end 1', 'end 3']);
  });

  test('a header block continued in CONTINUATION frames is one stream', () => {
    const harness = new Harness();
    harness.open();
    const block = encodeHeaderBlock(REQUEST);
    harness.send(
      frame(FrameType.HEADERS, FrameFlag.END_STREAM, 1, block.subarray(0, 10)),
      frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 20)),
      frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(20)),
    );
    assert.deepEqual([...harness.streams[0]!.headers], REQUEST);
    assert.deepEqual(harness.events, ['end 1']);
  });

  test('a header block interrupted by another frame is a connection error', () => {
    const harness = new Harness();
    harness.open();
    const block = encodeHeaderBlock(REQUEST);
    harness.send(frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)), data(1, 'x'));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.equal(harness.streams.length, 0);
  });

  test('padding is removed from DATA and HEADERS', () => {
    const harness = new Harness();
    harness.open();
    const block = encodeHeaderBlock(REQUEST);
    harness.send(frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.PADDED, 1, Buffer.concat([Buffer.from([3]), block, Buffer.alloc(3)])));
    harness.send(frame(FrameType.DATA, FrameFlag.PADDED | FrameFlag.END_STREAM, 1, Buffer.concat([Buffer.from([2]), Buffer.from('pad'), Buffer.alloc(2)])));
    assert.deepEqual([...harness.streams[0]!.headers], REQUEST);
    assert.deepEqual(harness.events, ['data 1 pad', 'end 1']);
  });

  test('an answer before the request\'s end asks the client to stop sending (RST_STREAM NO_ERROR)', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1), data(1, 'part'));
    harness.streams[0]!.sendHeaders(encodeHeaderBlock([':status', '200', 'grpc-status', '8']), true);
    const frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.streamId]), [[FrameType.HEADERS, 1], [FrameType.RST_STREAM, 1]]);
    assert.equal(readUint32(frames[1]!.payload, 0), ErrorCode.NO_ERROR);
    // The client's data in flight is dropped, not an error.
    harness.send(data(1, 'late', FrameFlag.END_STREAM));
    assert.equal(harness.goAway(), undefined);
    assert.deepEqual(harness.events, ['data 1 part', `close 1 ${ErrorCode.NO_ERROR}`]);
  });

  test('a client reset reaches the consumer, and a late answer goes nowhere', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM), rstStreamFrame(1, ErrorCode.CANCEL));
    assert.deepEqual(harness.events, ['end 1', `close 1 ${ErrorCode.CANCEL}`]);
    harness.streams[0]!.sendHeaders(encodeHeaderBlock([':status', '200']), true);
    assert.deepEqual(harness.frames(), []);
  });
});

describe('request headers', () => {
  const invalid: [string, string[]][] = [
    ['an upper-case name', [...REQUEST, 'X-Upper', 'v']],
    ['no :path', [':method', 'POST', ':scheme', 'http']],
    ['a pseudo-header after a regular one', [':method', 'POST', ':scheme', 'http', 'x', 'y', ':path', '/p']],
    ['an unknown pseudo-header', [...REQUEST.slice(0, 6), ':status', '200']],
    ['a repeated pseudo-header', [':method', 'POST', ':method', 'GET', ':scheme', 'http', ':path', '/p']],
    ['a connection-specific header', [...REQUEST, 'connection', 'keep-alive']],
    ['te other than trailers', [...REQUEST.slice(0, 8), 'te', 'gzip']],
  ];
  for (const [name, fields] of invalid) {
    test(`${name}: RST_STREAM PROTOCOL_ERROR, no stream for the handler`, () => {
      const harness = new Harness();
      harness.open();
      harness.send(headers(1, fields));
      const frames = harness.frames();
      assert.deepEqual(frames.map((f) => [f.type, f.streamId, readUint32(f.payload, 0)]), [[FrameType.RST_STREAM, 1, ErrorCode.PROTOCOL_ERROR]]);
      assert.equal(harness.streams.length, 0);
      // The connection goes on.
      harness.send(headers(3));
      assert.equal(harness.streams.length, 1);
    });
  }

  test('a header list over the limit goes to onHeaderListTooLarge, and the next block still decodes', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1, [...REQUEST, 'x-big', 'v'.repeat(OPTIONS.maxHeaderListBytes)]));
    assert.deepEqual(harness.events, ['too large 1']);
    harness.send(headers(3));
    assert.deepEqual([...harness.streams[0]!.headers], REQUEST);
  });

  test('a header block over twice the list limit ends the connection (ENHANCE_YOUR_CALM)', () => {
    const harness = new Harness();
    harness.open();
    const block = Buffer.alloc(OPTIONS.maxHeaderListBytes);
    harness.send(frame(FrameType.HEADERS, 0, 1, block), frame(FrameType.CONTINUATION, 0, 1, block), frame(FrameType.CONTINUATION, 0, 1, block));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
  });

  test('streams over maxConcurrentStreams are refused; after one ends, a new one is taken', () => {
    const harness = new Harness();
    harness.open();
    for (let id = 1; id <= 9; id += 2) harness.send(headers(id));
    assert.equal(harness.streams.length, OPTIONS.maxConcurrentStreams);
    assert.deepEqual(harness.frames().map((f) => [f.type, f.streamId, readUint32(f.payload, 0)]), [[FrameType.RST_STREAM, 9, ErrorCode.REFUSED_STREAM]]);
    harness.streams[0]!.reset();
    harness.send(headers(11));
    assert.equal(harness.streams.length, OPTIONS.maxConcurrentStreams + 1);
  });

  test('an even stream ID from a client is a connection error', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(2));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.PROTOCOL_ERROR);
  });
});

describe('limits on what a client may make the server do', () => {
  test('rapid reset: past the burst of client resets, GOAWAY ENHANCE_YOUR_CALM; with time, the budget comes back', () => {
    const harness = new Harness({ ...OPTIONS, maxConcurrentStreams: 10 });
    harness.open();
    let id = 1;
    const openAndReset = () => {
      harness.send(headers(id), rstStreamFrame(id, ErrorCode.CANCEL));
      id += 2;
    };
    for (let i = 0; i < 1_000; i++) openAndReset();
    assert.equal(harness.goAway(), undefined, 'the burst (nghttp2\'s, 1,000) is allowed');
    clockMs += 1_000; // 33 more
    for (let i = 0; i < 33; i++) openAndReset();
    assert.equal(harness.goAway(), undefined);
    openAndReset();
    const goAway = harness.goAway();
    assert.equal(goAway?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
    assert.match(goAway!.debug, /reset/);
  });

  test('streams this side resets for the client\'s errors count as resets too, and their consumers are told', () => {
    const harness = new Harness({ ...OPTIONS, maxConcurrentStreams: 10 });
    harness.open();
    let id = 1;
    for (let i = 0; i < 1_001 && harness.goAway() === undefined; i++) {
      harness.send(headers(id), windowUpdateFrame(id, 0)); // a stream error: this side resets it
      id += 2;
    }
    assert.ok(harness.events.includes(`close 1 ${ErrorCode.PROTOCOL_ERROR}`), 'the consumer of a stream reset here is told');
    assert.equal(harness.ended, true, 'cut off past the budget');
  });

  test('more than 64 CONTINUATION frames in a header block, even empty ones: ENHANCE_YOUR_CALM', () => {
    const harness = new Harness();
    harness.open();
    harness.send(frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock(REQUEST).subarray(0, 4)));
    for (let i = 0; i < 63; i++) harness.send(frame(FrameType.CONTINUATION, 0, 1));
    assert.equal(harness.goAway(), undefined);
    harness.send(frame(FrameType.CONTINUATION, 0, 1));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
  });

  test('SETTINGS: more than 32 entries in a frame, or frames past their budget: ENHANCE_YOUR_CALM', () => {
    const many = new Harness();
    many.open();
    many.send(settingsFrame(Array.from({ length: 33 }, () => [Setting.HEADER_TABLE_SIZE, 4096] as [number, number])));
    assert.equal(many.goAway()?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
    const flood = new Harness();
    flood.open();
    for (let i = 0; i < 100; i++) flood.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, i]]));
    assert.equal(flood.goAway(), undefined);
    flood.send(settingsFrame([]));
    assert.equal(flood.goAway()?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
  });

  test('answers waiting for windows the client never opens: past maxWaitingBytes, ENHANCE_YOUR_CALM', () => {
    const harness = new Harness();
    harness.open([[Setting.INITIAL_WINDOW_SIZE, 0]]);
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM), headers(3, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    harness.streams[0]!.sendData(new Uint8Array(OPTIONS.maxWaitingBytes / 2));
    assert.equal(harness.goAway(), undefined);
    harness.streams[1]!.sendData(new Uint8Array(OPTIONS.maxWaitingBytes / 2 + 1));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
    assert.ok(harness.events.includes(`close 1 ${ErrorCode.ENHANCE_YOUR_CALM}`));
  });

  test('a frame header announcing more than 16,384 bytes is refused before its body arrives', () => {
    const harness = new Harness();
    harness.open();
    const header = frame(FrameType.DATA, 0, 1, Buffer.alloc(0));
    header[0] = 0x10; // 1 MiB
    harness.send(header.subarray(0, 5));
    harness.send(header.subarray(5));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.FRAME_SIZE_ERROR);
  });

  test('a consumer that throws ends its connection (INTERNAL_ERROR), not the process', () => {
    const harness = new Harness(OPTIONS, (stream) => {
      stream.consumer = { onData: () => { throw new Error('consumer bug'); }, onEnd: () => {}, onClose: () => {} };
    });
    harness.open();
    assert.doesNotThrow(() => harness.send(headers(1), data(1, 'x')));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.INTERNAL_ERROR);
    assert.match(harness.errors[0]!.message, /consumer bug/);
  });
});

describe('flow control', () => {
  test('a stream closed with request data its consumer never acknowledged gives the connection its window back', () => {
    const harness = new Harness({ ...OPTIONS, connectionWindowBytes: 2_000, streamWindowBytes: 1_500 }, (stream) => { stream.manualFlowControl = true; });
    harness.open();
    harness.send(headers(1), frame(FrameType.DATA, 0, 1, Buffer.alloc(1_400)));
    harness.frames();
    harness.send(rstStreamFrame(1, ErrorCode.CANCEL));
    const updates = harness.frames().filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    assert.deepEqual(updates.map((f) => readUint32(f.payload, 0)), [1_400]);
    // The whole window again: 1,900 bytes on a new stream do not break it.
    harness.send(headers(3), frame(FrameType.DATA, 0, 3, Buffer.alloc(1_400)));
    assert.equal(harness.goAway(), undefined);
  });

  test('data waits for the client\'s stream window, then goes with the trailers behind it', () => {
    const harness = new Harness();
    harness.open([[Setting.INITIAL_WINDOW_SIZE, 10]]);
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    const stream = harness.streams[0]!;
    let writable = 0;
    stream.onWritable = () => writable++;
    stream.sendHeaders(encodeHeaderBlock([':status', '200']), false);
    assert.equal(stream.sendData(Buffer.from('0123456789abcdefghijklmno')), false);
    stream.sendTrailers(encodeHeaderBlock(['grpc-status', '0']));
    let frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.payload.length]), [[FrameType.HEADERS, 1], [FrameType.DATA, 10]]);
    harness.send(windowUpdateFrame(1, 10));
    frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, Buffer.from(f.payload).toString()]), [[FrameType.DATA, 'abcdefghij']]);
    assert.equal(writable, 0);
    harness.send(windowUpdateFrame(1, 100));
    frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.flags]), [[FrameType.DATA, 0], [FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM]]);
    assert.equal(Buffer.from(frames[0]!.payload).toString(), 'klmno');
    assert.equal(harness.connection.openStreams, 0);
  });

  test('a larger SETTINGS_INITIAL_WINDOW_SIZE releases waiting data', () => {
    const harness = new Harness();
    harness.open([[Setting.INITIAL_WINDOW_SIZE, 4]]);
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    harness.streams[0]!.sendData(Buffer.from('abcdefgh'), true);
    assert.deepEqual(harness.frames().map((f) => f.payload.length), [4]);
    harness.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 100]]));
    const frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.flags]), [[FrameType.SETTINGS, FrameFlag.ACK], [FrameType.DATA, FrameFlag.END_STREAM]]);
  });

  test('data waits for the connection window, shared by the streams', () => {
    const harness = new Harness();
    harness.open([[Setting.INITIAL_WINDOW_SIZE, 1_000_000]]);
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM), headers(3, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    const [one, three] = harness.streams;
    one!.sendData(Buffer.alloc(60_000), true);
    three!.sendData(Buffer.alloc(10_000), true);
    const sent = () => harness.frames().filter((f) => f.type === FrameType.DATA).reduce((sum, f) => sum + f.payload.length, 0);
    assert.equal(sent(), 65_535, 'the default connection window, in frames of at most 16,384 bytes');
    harness.send(windowUpdateFrame(0, 100_000));
    assert.equal(sent(), 70_000 - 65_535);
    assert.equal(harness.connection.openStreams, 0);
  });

  test('request data is given back to the client as the consumer takes it (WINDOW_UPDATE at half the window)', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1));
    harness.send(data(1, 'x'.repeat(400)));
    assert.deepEqual(harness.frames(), []);
    harness.send(data(1, 'x'.repeat(200)));
    const frames = harness.frames();
    assert.deepEqual(frames.map((f) => [f.type, f.streamId, readUint32(f.payload, 0)]), [[FrameType.WINDOW_UPDATE, 1, 600]]);
  });

  test('with manual flow control the window opens only when the consumer acknowledges', () => {
    const harness = new Harness(OPTIONS, (stream) => { stream.manualFlowControl = true; });
    harness.open();
    harness.send(headers(1), data(1, 'x'.repeat(900)));
    assert.deepEqual(harness.frames(), []);
    harness.send(data(1, 'x'.repeat(200)));
    assert.equal(harness.goAway(), undefined);
    assert.deepEqual(harness.frames().map((f) => [f.type, readUint32(f.payload, 0)]), [], 'nothing given back yet');
    const rst = new Harness(OPTIONS, (stream) => { stream.manualFlowControl = true; });
    rst.open();
    rst.send(headers(1), data(1, 'x'.repeat(900)), data(1, 'x'.repeat(200)));
    // 1,100 bytes into a window of 1,000: the stream is reset, the connection goes on.
    assert.deepEqual(rst.frames().map((f) => [f.type, f.streamId, readUint32(f.payload, 0)]), [[FrameType.RST_STREAM, 1, ErrorCode.FLOW_CONTROL_ERROR]]);
    const ok = new Harness(OPTIONS, (stream) => { stream.manualFlowControl = true; });
    ok.open();
    ok.send(headers(1), data(1, 'x'.repeat(900)));
    ok.streams[0]!.acknowledge(900);
    assert.deepEqual(ok.frames().map((f) => [f.type, f.streamId, readUint32(f.payload, 0)]), [[FrameType.WINDOW_UPDATE, 1, 900]]);
    ok.send(data(1, 'x'.repeat(900)));
    assert.equal(ok.goAway(), undefined);
  });

  test('data past the connection window is a connection error (FLOW_CONTROL_ERROR)', () => {
    const harness = new Harness({ ...OPTIONS, streamWindowBytes: 1_000_000, connectionWindowBytes: 65_535 }, (stream) => { stream.manualFlowControl = true; });
    harness.open();
    harness.send(headers(1));
    for (let i = 0; i < 4; i++) harness.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)));
    assert.equal(harness.goAway(), undefined);
    harness.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.FLOW_CONTROL_ERROR);
  });

  test('a WINDOW_UPDATE that overflows the connection window is a connection error', () => {
    const harness = new Harness();
    harness.open();
    harness.send(windowUpdateFrame(0, 2 ** 31 - 1));
    assert.equal(harness.goAway()?.errorCode, ErrorCode.FLOW_CONTROL_ERROR);
  });
});

describe('ending', () => {
  test('GOAWAY from the client: open streams finish, then the connection ends', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1, REQUEST, FrameFlag.END_HEADERS | FrameFlag.END_STREAM));
    harness.send(frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)));
    assert.equal(harness.ended, false);
    harness.streams[0]!.sendHeaders(encodeHeaderBlock([':status', '200']), true);
    assert.equal(harness.ended, true);
  });

  test('a connection error tells every open stream, and nothing more is read', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1), frame(FrameType.PUSH_PROMISE, 0, 1, Buffer.alloc(4)), headers(3));
    assert.deepEqual(harness.events, [`close 1 ${ErrorCode.PROTOCOL_ERROR}`]);
    assert.equal(harness.streams.length, 1);
    assert.match(harness.errors[0]!.message, /PUSH_PROMISE/);
  });

  test('destroy (the socket closed) tells every open stream', () => {
    const harness = new Harness();
    harness.open();
    harness.send(headers(1));
    harness.connection.destroy('gone');
    assert.deepEqual(harness.events, [`close 1 ${ErrorCode.CANCEL}`]);
  });

  const malformed: [string, Uint8Array, number][] = [
    ['SETTINGS on a stream', frame(FrameType.SETTINGS, 0, 1), ErrorCode.PROTOCOL_ERROR],
    ['SETTINGS of 5 bytes', frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)), ErrorCode.FRAME_SIZE_ERROR],
    ['a SETTINGS ACK with a payload', frame(FrameType.SETTINGS, FrameFlag.ACK, 0, Buffer.alloc(6)), ErrorCode.FRAME_SIZE_ERROR],
    ['ENABLE_PUSH 2', settingsFrame([[Setting.ENABLE_PUSH, 2]]), ErrorCode.PROTOCOL_ERROR],
    ['INITIAL_WINDOW_SIZE 2^31', settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]]), ErrorCode.FLOW_CONTROL_ERROR],
    ['MAX_FRAME_SIZE 100', settingsFrame([[Setting.MAX_FRAME_SIZE, 100]]), ErrorCode.PROTOCOL_ERROR],
    ['PING of 7 bytes', frame(FrameType.PING, 0, 0, Buffer.alloc(7)), ErrorCode.FRAME_SIZE_ERROR],
    ['PING on a stream', frame(FrameType.PING, 0, 1, Buffer.alloc(8)), ErrorCode.PROTOCOL_ERROR],
    ['DATA on stream 0', frame(FrameType.DATA, 0, 0, Buffer.alloc(1)), ErrorCode.PROTOCOL_ERROR],
    ['DATA on a stream never opened', frame(FrameType.DATA, 0, 7, Buffer.alloc(1)), ErrorCode.PROTOCOL_ERROR],
    ['HEADERS on stream 0', headers(0), ErrorCode.PROTOCOL_ERROR],
    ['RST_STREAM on a stream never opened', rstStreamFrame(9, 0), ErrorCode.PROTOCOL_ERROR],
    ['WINDOW_UPDATE of 0 on the connection', windowUpdateFrame(0, 0), ErrorCode.PROTOCOL_ERROR],
    ['a frame over 16,384 bytes', frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)), ErrorCode.FRAME_SIZE_ERROR],
    ['padding that fills the frame', frame(FrameType.DATA, FrameFlag.PADDED, 1, Buffer.from([4, 0, 0, 0])), ErrorCode.PROTOCOL_ERROR],
    ['an HPACK block that does not decode', frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, Buffer.from([0x80])), ErrorCode.COMPRESSION_ERROR],
  ];
  for (const [name, bytes, errorCode] of malformed) {
    test(`${name}: GOAWAY with the RFC's code and a text`, () => {
      const harness = new Harness();
      harness.open();
      harness.send(headers(1));
      harness.send(bytes);
      const goAway = harness.goAway();
      assert.equal(goAway?.errorCode, errorCode);
      assert.equal(goAway?.lastStreamId, 1);
      assert.ok(goAway!.debug.length > 0);
      assert.ok(harness.ended);
    });
  }

  test('arbitrary bytes after the preface end in frames or a GOAWAY, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 64 }), (bytes, chunk) => {
      const harness = new Harness();
      harness.send(CLIENT_PREFACE, settingsFrame([]));
      for (let at = 0; at < bytes.length; at += chunk) harness.send(bytes.subarray(at, at + chunk));
      harness.frames();
    }), { numRuns: 1_000 });
  });
});
