// Hostile bytes on a running member's peer port, over real TCP: random bytes and random frames,
// wrong protocol versions, a HELLO of another cluster followed by garbage, a member impersonating
// the receiver itself, a connection that sends one byte at a time, more connections than the
// listener takes, and snapshot streams with wrong sizes. Each connection is closed (with a log line
// when it broke the protocol) within the handshake timeout, and the member keeps serving clients.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Etcd3 } from 'etcd3';
import { crc32c } from '@node-rs/crc32';
import { message } from '../../src/consensus/types.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { ByteWriter } from '../../src/storage/binary-codec.ts';
import { FRAME_TYPES, PROTOCOL_VERSION, ProtocolError, encodeFrame, encodeHello } from '../../src/transport/frame.ts';
import type { Frame, Hello } from '../../src/transport/frame.ts';
import { encodeMessage } from '../../src/transport/message-codec.ts';
import { SnapshotReceiver } from '../../src/transport/snapshot-stream.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';

const HANDSHAKE_TIMEOUT_MS = 400;
const MAX_INBOUND_CONNECTIONS = 40;
/** How long a connection may stay open past the handshake timeout on a loaded machine. */
const CLOSE_SLACK_MS = 3_000;

let server: StoreServer;
let client: Etcd3;
let dataRoot: string;
const logLines: string[] = [];
let peerPort: number;

before(async () => {
  dataRoot = mkdtempSync(join(tmpdir(), 'concord-peer-hostile-'));
  const log = (line: string) => {
    if (logLines.length < 10_000) logLines.push(line);
  };
  server = await StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    name: 'target', dataDir: join(dataRoot, 'd'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0',
  })), {
    logger: { info: () => {}, warn: log, error: log },
    transportLimits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxInboundConnections: MAX_INBOUND_CONNECTIONS },
  });
  peerPort = Number(server.peerAddresses[0]!.split(':').pop());
  client = new Etcd3({ hosts: server.clientAddresses[0]! });
  await client.put('before').value('1');
});

after(async () => {
  client.close();
  await server.stop();
  rmSync(dataRoot, { recursive: true, force: true });
});

/** Asserts the member still serves a write and a linearizable read. */
async function assertServing(what: string): Promise<void> {
  const value = `${what}-${Date.now()}`;
  await client.put('alive').value(value);
  assert.equal(await client.get('alive').string(), value, `the member serves clients after ${what}`);
}

interface Outcome {
  closed: boolean;
  afterMs: number;
  received: Buffer;
}

/** Connects, sends `chunks` (spaced by `gapMs`), and waits for the member to close the connection. */
function sendAndWatch(chunks: Uint8Array[], gapMs = 0, waitMs = HANDSHAKE_TIMEOUT_MS + CLOSE_SLACK_MS): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const received: Buffer[] = [];
    const socket: Socket = connect(peerPort, '127.0.0.1');
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ closed, afterMs: performance.now() - started, received: Buffer.concat(received) });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('end', () => finish(true));
    socket.on('connect', () => {
      let at = 0;
      const next = () => {
        if (done || at >= chunks.length) return;
        socket.write(chunks[at++]!, () => {});
        if (gapMs === 0) next();
        else setTimeout(next, gapMs);
      };
      next();
    });
  });
}

function helloFrame(overrides: Partial<Hello>): Uint8Array {
  return encodeFrame(FRAME_TYPES.HELLO, encodeHello({
    protocolVersion: PROTOCOL_VERSION, purpose: 'stream', clusterId: server.clusterId, fromId: 0x1234n, toId: server.memberId, peerUrls: [], ...overrides,
  }));
}

function frameWithLength(type: number, lengthBytes: number): Uint8Array {
  const header = new Uint8Array(5);
  new DataView(header.buffer).setUint32(0, lengthBytes, true);
  header[4] = type;
  return header;
}

describe('a running member\'s peer port under hostile input', () => {
  test('random bytes and random frames: every connection is closed within the handshake timeout', async (t) => {
    const frameTypes = fc.constantFrom(...Object.values(FRAME_TYPES), 0, 11, 255);
    const randomFrame = fc.record({ type: frameTypes, payload: fc.uint8Array({ maxLength: 200 }) }).map(({ type, payload }) => {
      const frame = new Uint8Array(5 + payload.byteLength);
      new DataView(frame.buffer).setUint32(0, payload.byteLength, true);
      frame[4] = type;
      frame.set(payload, 5);
      return frame;
    });
    const input = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => [bytes]),
      fc.array(randomFrame, { minLength: 1, maxLength: 4 }),
      fc.tuple(fc.constantFrom('foreign', 'version', 'join', 'self', 'unknown'), fc.array(randomFrame, { maxLength: 3 }), fc.uint8Array({ maxLength: 100 }))
        .map(([kind, frames, garbage]) => [helloFor(kind), ...frames, garbage]),
    );
    const batches = fc.array(input, { minLength: 1, maxLength: 8 });
    let connections = 0;
    await fc.assert(
      fc.asyncProperty(batches, async (batch) => {
        // A few at once, as a scanner would; each must be closed in time.
        const outcomes = await Promise.all(batch.map((chunks) => sendAndWatch(chunks)));
        connections += outcomes.length;
        for (const outcome of outcomes) assert.ok(outcome.closed, `a connection stayed open ${Math.round(outcome.afterMs)} ms`);
      }),
      { numRuns: fuzzRuns(50) },
    );
    assert.ok(connections > 50);
    t.diagnostic(`hostile connections: ${connections}, all closed`);
    await assertServing('random peer input');
  });

  test('a HELLO of another cluster, then garbage: refused with a log line naming both clusters', async () => {
    const outcome = await sendAndWatch([helloFrame({ clusterId: 0xdeadbeefn }), new TextEncoder().encode('garbage after the refusal')], 100);
    assert.ok(outcome.closed);
    // (The reject frame itself may be lost: garbage written after the member closed gets a reset.)
    assert.ok(logLines.some((line) => /refused a peer connection from 127\.0\.0\.1:\d+: member 1234 belongs to cluster deadbeef/.test(line)), logLines.join('\n'));
    await assertServing('a foreign HELLO');
  });

  test('a wrong protocol version is refused and told the version spoken', async () => {
    const outcome = await sendAndWatch([helloFrame({ protocolVersion: 99 })]);
    assert.ok(outcome.closed);
    assert.equal(outcome.received[4], FRAME_TYPES.HELLO_REJECT);
    assert.ok(logLines.some((line) => /peer protocol version 99; this member speaks 1/.test(line)));
  });

  test('regression: a HELLO that claims to come from the member itself is refused', async () => {
    // Found by this fuzzing: memberStatus() knows the member's own ID, so a stream "from" the
    // receiver was accepted, and Raft messages on it were stepped as if the member had sent them
    // to itself. A member never dials itself.
    const outcome = await sendAndWatch([helloFrame({ fromId: server.memberId }), encodeFrame(FRAME_TYPES.RAFT, encodeMessage(message({
      type: 'MsgHeartbeat', from: server.memberId, to: server.memberId, term: 1_000_000,
    })))]);
    assert.ok(outcome.closed);
    assert.equal(outcome.received[4], FRAME_TYPES.HELLO_REJECT);
    assert.ok(logLines.some((line) => /claims to be this member/.test(line)), logLines.join('\n'));
    assert.equal(server.member.term() < 1_000_000, true, 'the forged term never reached Raft');
    await assertServing('a HELLO from itself');
  });

  test('a huge length prefix, before and after a refused HELLO, costs nothing but the connection', async () => {
    for (const chunks of [[frameWithLength(FRAME_TYPES.HELLO, 0xffff_ffff)], [frameWithLength(FRAME_TYPES.RAFT, 1 << 30)], [helloFrame({ fromId: 77n }), frameWithLength(FRAME_TYPES.RAFT, 0xffff_fff0)]]) {
      const outcome = await sendAndWatch(chunks);
      assert.ok(outcome.closed && outcome.afterMs < CLOSE_SLACK_MS, `closed at once (${Math.round(outcome.afterMs)} ms)`);
    }
    assert.ok(logLines.some((line) => /a frame of 4294967295 bytes is over the limit of 65536 bytes/.test(line)));
  });

  test('a connection that sends a valid HELLO one byte at a time is cut at the handshake timeout', async () => {
    const hello = helloFrame({});
    const bytes = [...hello].map((byte) => Uint8Array.of(byte));
    const gapMs = Math.ceil((HANDSHAKE_TIMEOUT_MS * 3) / bytes.length);
    const outcome = await sendAndWatch(bytes, gapMs, HANDSHAKE_TIMEOUT_MS * 3 + CLOSE_SLACK_MS);
    assert.ok(outcome.closed, 'closed');
    assert.ok(outcome.afterMs >= HANDSHAKE_TIMEOUT_MS * 0.9, `not before the handshake timeout (${Math.round(outcome.afterMs)} ms)`);
    assert.ok(logLines.some((line) => /no HELLO within 400 ms/.test(line)));
  });

  test('more connections than maxInboundConnections: the excess is refused, the member keeps serving, and room comes back', async () => {
    const sockets: Socket[] = [];
    // Watched from creation: the excess is refused at once, before any later listener could see it.
    const closed: Promise<boolean>[] = [];
    try {
      for (let i = 0; i < MAX_INBOUND_CONNECTIONS + 20; i++) {
        const socket = connect(peerPort, '127.0.0.1');
        socket.on('error', () => {});
        sockets.push(socket);
        closed.push(new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), HANDSHAKE_TIMEOUT_MS + CLOSE_SLACK_MS + 5_000);
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
        }));
      }
      await assertServing('a connection flood');
      // Every one of them is closed by the handshake timeout or refused at once.
      assert.equal((await Promise.all(closed)).filter(Boolean).length, sockets.length);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    const answer = await sendAndWatch([helloFrame({ clusterId: 0xabcn })]);
    assert.equal(answer.received[4], FRAME_TYPES.HELLO_REJECT, 'a new connection is answered again');
  });
});

describe('snapshot streams with wrong offsets and sizes', () => {
  const FROM = 0x42n;
  const snapHeader = (sizeBytes: number, from = FROM) => {
    const msg = encodeMessage(message({ type: 'MsgSnap', from, to: 1n, term: 2, snapshot: { metadata: { index: 5, term: 2, confState: { voters: [1n], learners: [] } }, data: new Uint8Array(0) } }));
    return new ByteWriter(8 + msg.byteLength).u53(sizeBytes).raw(msg).finish();
  };
  const done = (data: Uint8Array) => new ByteWriter(4).u32(crc32c(data)).finish();

  test('any sequence of snapshot frames is accepted whole or refused with a ProtocolError; buffered bytes never pass the announced size', () => {
    const MAX_SNAPSHOT_BYTES = 4096;
    const frame: fc.Arbitrary<Frame> = fc.oneof(
      fc.record({ type: fc.constant(FRAME_TYPES.SNAP_HEADER), payload: fc.oneof(fc.integer({ min: 0, max: 2 * MAX_SNAPSHOT_BYTES }).map((size) => snapHeader(size)), fc.uint8Array({ maxLength: 40 })) }),
      fc.record({ type: fc.constant(FRAME_TYPES.SNAP_CHUNK), payload: fc.uint8Array({ maxLength: 1500 }) }),
      fc.record({ type: fc.constant(FRAME_TYPES.SNAP_DONE), payload: fc.oneof(fc.uint8Array({ maxLength: 6 }), fc.constant(done(new Uint8Array(0)))) }),
      fc.record({ type: fc.constantFrom(FRAME_TYPES.RAFT, FRAME_TYPES.HELLO, FRAME_TYPES.SNAP_ACK), payload: fc.uint8Array({ maxLength: 10 }) }),
    ) as fc.Arbitrary<Frame>;
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 8 }), (frames) => {
        const receiver = new SnapshotReceiver(FROM, MAX_SNAPSHOT_BYTES);
        let buffered = 0;
        for (const f of frames) {
          try {
            const complete = receiver.onFrame(f);
            if (f.type === FRAME_TYPES.SNAP_CHUNK) buffered += f.payload.byteLength;
            assert.ok(buffered <= MAX_SNAPSHOT_BYTES, `buffered ${buffered} bytes`);
            if (complete) {
              assert.equal(complete.type, 'MsgSnap');
              assert.equal(complete.snapshot!.data.byteLength, buffered);
              return;
            }
          } catch (error) {
            assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
            return;
          }
        }
      }),
      { numRuns: fuzzRuns(3_000) },
    );
  });

  test('a chunk past the announced size, a short snapshot, a bad checksum and a header from another member are refused', () => {
    const cases: [string, Frame[], RegExp][] = [
      ['chunk past the size', [{ type: FRAME_TYPES.SNAP_HEADER, payload: snapHeader(3) }, { type: FRAME_TYPES.SNAP_CHUNK, payload: new Uint8Array(4) }], /more snapshot bytes than the 3 announced/],
      ['short', [{ type: FRAME_TYPES.SNAP_HEADER, payload: snapHeader(3) }, { type: FRAME_TYPES.SNAP_CHUNK, payload: new Uint8Array(2) }, { type: FRAME_TYPES.SNAP_DONE, payload: done(new Uint8Array(2)) }], /snapshot has 2 bytes, 3 were announced/],
      ['checksum', [{ type: FRAME_TYPES.SNAP_HEADER, payload: snapHeader(2) }, { type: FRAME_TYPES.SNAP_CHUNK, payload: Uint8Array.of(1, 2) }, { type: FRAME_TYPES.SNAP_DONE, payload: done(Uint8Array.of(2, 1)) }], /fails its checksum/],
      ['size over the limit', [{ type: FRAME_TYPES.SNAP_HEADER, payload: snapHeader(2 ** 40) }], /over the limit of 4096/],
      ['size beyond 2^53', [{ type: FRAME_TYPES.SNAP_HEADER, payload: Uint8Array.of(255, 255, 255, 255, 255, 255, 255, 255) }], /SNAP_HEADER/],
      ['another member', [{ type: FRAME_TYPES.SNAP_HEADER, payload: snapHeader(1, 0x43n) }], /a snapshot from member 43 on a stream of 42/],
      ['chunk first', [{ type: FRAME_TYPES.SNAP_CHUNK, payload: Uint8Array.of(1) }], /a snapshot chunk before the header/],
    ];
    for (const [what, frames, expected] of cases) {
      const receiver = new SnapshotReceiver(FROM, 4096);
      assert.throws(() => {
        for (const f of frames) receiver.onFrame(f);
      }, (error: unknown) => error instanceof ProtocolError && expected.test(error.message), what);
    }
  });
});

function helloFor(kind: 'foreign' | 'version' | 'join' | 'self' | 'unknown'): Uint8Array {
  switch (kind) {
    case 'foreign':
      return helloFrame({ clusterId: server.clusterId ^ 1n });
    case 'version':
      return helloFrame({ protocolVersion: 0 });
    case 'join':
      return helloFrame({ purpose: 'join', clusterId: 0n, fromId: 0n, toId: 0n, peerUrls: ['http://127.0.0.1:1'] });
    case 'self':
      return helloFrame({ fromId: server.memberId });
    case 'unknown':
      return helloFrame({ fromId: 0x999n });
  }
}
