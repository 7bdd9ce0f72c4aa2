// A snapshot's body waits for the socket to drain before each next chunk: a receiver that reads
// slowly holds the sender to about one chunk beyond its socket buffer, whatever the snapshot size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { message } from '../../src/consensus/types.ts';
import { FRAME_TYPES } from '../../src/transport/frame.ts';
import type { FrameType } from '../../src/transport/frame.ts';
import { SnapshotReceiver, streamSnapshotBody } from '../../src/transport/snapshot-stream.ts';
import type { SnapshotBodySink } from '../../src/transport/snapshot-stream.ts';

/** A connection whose buffer is always over its high-water mark: every write asks to wait, and the test lets each drain happen. */
class FullSocket implements SnapshotBodySink {
  readonly written: { type: FrameType; payload: Uint8Array }[] = [];
  isClosed = false;
  private waiting: (() => void) | undefined;

  write(type: FrameType, payload: Uint8Array): boolean {
    this.written.push({ type, payload: payload.slice() });
    return false;
  }

  drained(): Promise<void> {
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** Lets one drain happen; true when a writer was waiting for it. */
  drain(): boolean {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
    return waiting !== undefined;
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function snapshotMessage(data: Uint8Array) {
  return message({ type: 'MsgSnap', from: 1n, to: 2n, term: 3, snapshot: { metadata: { index: 100, term: 3, confState: { voters: [1n, 2n], learners: [] } }, data } });
}

test('one chunk per drain: nothing more is written until the socket drains', async () => {
  const data = new Uint8Array(16 * 64 * 1024).map((_, i) => i % 251);
  const socket = new FullSocket();
  let finished = false;
  const streaming = streamSnapshotBody(socket, snapshotMessage(data), data, 64 * 1024).then(() => (finished = true));
  await settle();
  assert.deepEqual(socket.written.map((frame) => frame.type), [FRAME_TYPES.SNAP_HEADER, FRAME_TYPES.SNAP_CHUNK], 'the header and one chunk, then a wait');
  for (let chunk = 2; chunk <= 16; chunk++) {
    await settle();
    assert.equal(socket.written.filter((frame) => frame.type === FRAME_TYPES.SNAP_CHUNK).length, chunk - 1, 'still waiting for the drain');
    assert.ok(socket.drain(), 'the sender waits for each drain');
    await settle();
    assert.equal(socket.written.filter((frame) => frame.type === FRAME_TYPES.SNAP_CHUNK).length, chunk);
  }
  assert.ok(socket.drain());
  await streaming;
  assert.ok(finished);
  assert.equal(socket.written.at(-1)!.type, FRAME_TYPES.SNAP_DONE);
  // What was written is a whole snapshot to the receiver.
  const receiver = new SnapshotReceiver(1n, 64 * 1024 * 1024);
  const completed = socket.written.map((frame) => receiver.onFrame({ type: frame.type, payload: frame.payload })).find((result) => result !== undefined);
  assert.deepEqual(completed?.snapshot?.data, data);
});

test('a connection closed while waiting ends the stream without writing the rest', async () => {
  const data = new Uint8Array(8 * 1024);
  const socket = new FullSocket();
  const streaming = streamSnapshotBody(socket, snapshotMessage(data), data, 1024);
  await settle();
  socket.isClosed = true;
  socket.drain();
  await streaming;
  assert.equal(socket.written.filter((frame) => frame.type === FRAME_TYPES.SNAP_CHUNK).length, 1);
  assert.equal(socket.written.some((frame) => frame.type === FRAME_TYPES.SNAP_DONE), false);
});
