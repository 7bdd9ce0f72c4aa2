// The peer protocol's bytes: frames cut from a stream at any split, Raft messages round-tripped
// field by field, and hostile bytes refused with a ProtocolError (never another exception).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Message, MessageType } from '../../src/consensus/types.ts';
import { isLocalMessage, message } from '../../src/consensus/types.ts';
import { ByteWriter } from '../../src/storage/binary-codec.ts';
import {
  FRAME_TYPES, FrameDecoder, ProtocolError, decodeHello, decodeJsonWithId, encodeFrame, encodeHello, encodeJsonWithId,
} from '../../src/transport/frame.ts';
import { decodeMessage, encodeMessage } from '../../src/transport/message-codec.ts';

const NETWORK_TYPES: MessageType[] = ([
  'MsgProp', 'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgPreVoteResp', 'MsgSnap',
  'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgTransferLeader', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp',
] as MessageType[]).filter((type) => !isLocalMessage(type));

const id = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const index = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });
const arbitraryMessage: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...NETWORK_TYPES),
  from: id,
  to: id,
  term: index,
  logTerm: index,
  index,
  commit: index,
  reject: fc.boolean(),
  rejectHint: index,
  context: bytes,
  entries: fc.array(fc.record({ term: index, index, type: fc.constantFrom('normal' as const, 'confChange' as const), data: bytes }, { noNullPrototype: true }), { maxLength: 5 }),
}, { noNullPrototype: true }).chain((fields) => fc.record({
  metadata: fc.record({ index, term: index, confState: fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 2 }) }, { noNullPrototype: true }) }, { noNullPrototype: true }),
}, { noNullPrototype: true }).map(({ metadata }) => (fields.type === 'MsgSnap' ? { ...fields, snapshot: { metadata, data: new Uint8Array(0) } } : fields)));

test('every network message round-trips through the codec, field by field', () => {
  fc.assert(fc.property(arbitraryMessage, (original) => {
    const decoded = decodeMessage(encodeMessage(original));
    assert.deepEqual(decoded, { ...original, context: new Uint8Array(original.context) });
  }), { numRuns: 300 });
});

test('frames come out whole and in order however the stream is split', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ type: fc.constantFrom(FRAME_TYPES.RAFT, FRAME_TYPES.RPC_REQUEST, FRAME_TYPES.SNAP_CHUNK), payload: fc.uint8Array({ maxLength: 300 }) }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
    (frames, cuts) => {
      const stream = Buffer.concat(frames.map((frame) => encodeFrame(frame.type, frame.payload)));
      const decoder = new FrameDecoder(1024);
      const out: { type: number; payload: number[] }[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const size = cuts[i % cuts.length]!;
        for (const frame of decoder.push(stream.subarray(at, at + size))) out.push({ type: frame.type, payload: [...frame.payload] });
        at += size;
      }
      assert.deepEqual(out, frames.map((frame) => ({ type: frame.type, payload: [...frame.payload] })));
      assert.equal(decoder.pendingBytes, 0);
    },
  ));
});

test('a length prefix above the limit or an unknown frame type is refused before anything is buffered', () => {
  const huge = new Uint8Array(5);
  new DataView(huge.buffer).setUint32(0, 0xffff_ffff, true);
  huge[4] = FRAME_TYPES.RAFT;
  assert.throws(() => new FrameDecoder(64 * 1024 * 1024).push(huge), (error: Error) => error instanceof ProtocolError && /over the limit/.test(error.message));
  assert.throws(() => new FrameDecoder(1024).push(Uint8Array.of(0, 0, 0, 0, 99)), (error: Error) => error instanceof ProtocolError && /unknown frame type 99/.test(error.message));
});

test('malformed messages are ProtocolErrors: truncation, local types, trailing bytes, impossible counts', () => {
  const good = encodeMessage(message({ type: 'MsgApp', from: 1n, to: 2n, term: 3, entries: [{ term: 3, index: 4, type: 'normal', data: Uint8Array.of(1, 2) }] }));
  for (let cut = 0; cut < good.length; cut++) assert.throws(() => decodeMessage(good.subarray(0, cut)), ProtocolError, `cut at ${cut}`);
  assert.throws(() => decodeMessage(Uint8Array.of(...good, 0)), /trailing/);
  const local = good.slice();
  local[0] = 0; // MsgHup
  assert.throws(() => decodeMessage(local), /local to a member/);
  const unknown = good.slice();
  unknown[0] = 200;
  assert.throws(() => decodeMessage(unknown), /unknown raft message type 200/);
});

test('random bytes never crash the decoders: they decode or fail with a ProtocolError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (noise) => {
    for (const decode of [decodeMessage, decodeHello, (b: Uint8Array) => decodeJsonWithId(b, 'rpc')]) {
      try {
        decode(noise);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, `${decode.name} threw ${(error as Error).name}: ${(error as Error).message}`);
      }
    }
  }), { numRuns: 2000 });
});

test('HELLO round-trips, with the peer URLs of a join request', () => {
  const hello = { protocolVersion: 1, purpose: 'join' as const, clusterId: 0n, fromId: 0n, toId: 0n, peerUrls: ['http://127.0.0.1:2380', 'https://[::1]:2381'] };
  assert.deepEqual(decodeHello(encodeHello(hello)), hello);
});

test('ByteWriter grows past its initial capacity without losing or misplacing bytes (regression)', () => {
  const document = { text: 'x'.repeat(10_000) };
  const decoded = decodeJsonWithId(encodeJsonWithId(7, document), 'rpc');
  assert.deepEqual(decoded, { id: 7, document });
  const writer = new ByteWriter(1);
  for (let i = 0; i < 100; i++) writer.u8(i).u32(i).u64(BigInt(i));
  assert.equal(writer.sizeBytes, 1300);
  assert.equal(writer.finish()[13 * 99], 99);
});
