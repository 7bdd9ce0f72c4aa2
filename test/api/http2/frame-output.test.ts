// The connection's output buffer: what it hands out is never written over (it may still be queued
// in the socket), a large answer grows it geometrically, and an idle connection keeps none.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_OUTPUT_BUFFER_BYTES, FrameOutput } from '../../../src/api/http2/frame-output.ts';
import { FRAME_HEADER_BYTES, FrameType } from '../../../src/api/http2/frame.ts';

function filled(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

test('bytes taken are never written over, while the buffer fills, grows and is replaced', () => {
  const output = new FrameOutput();
  const taken: { view: Uint8Array; copy: Uint8Array }[] = [];
  // Sizes that fill a buffer exactly, overflow it, and need a grown one (a large answer).
  const sizes = [100, FRAME_OUTPUT_BUFFER_BYTES - 100 - FRAME_HEADER_BYTES, 1, 5000, 3 * FRAME_OUTPUT_BUFFER_BYTES, 7, 64 * 1024];
  sizes.forEach((size, i) => {
    output.frameHeader(size, FrameType.DATA, 0, 2 * i + 1);
    output.bytes(filled(size, i));
    if (i % 2 === 0) {
      const view = output.take();
      taken.push({ view, copy: view.slice() });
    }
  });
  const last = output.take();
  taken.push({ view: last, copy: last.slice() });
  for (const { view, copy } of taken) assert.deepEqual(view, copy);
  const all = Buffer.concat(taken.map((part) => part.copy));
  let offset = 0;
  sizes.forEach((size, i) => {
    assert.equal(all.readUIntBE(offset, 3), size);
    assert.equal(all.readUInt32BE(offset + 5), 2 * i + 1);
    assert.deepEqual(new Uint8Array(all.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + size)), filled(size, i));
    offset += FRAME_HEADER_BYTES + size;
  });
  assert.equal(offset, all.byteLength);
});

test('a part of a payload is written as asked, and nothing is pending after a take', () => {
  const output = new FrameOutput();
  output.bytes(filled(50, 3), 10, 30);
  assert.equal(output.pendingBytes, 20);
  assert.deepEqual(output.take(), filled(50, 3).subarray(10, 30));
  assert.equal(output.pendingBytes, 0);
  assert.equal(output.take().byteLength, 0);
});

test('release keeps what is pending, and frees the buffer once nothing is', () => {
  const output = new FrameOutput();
  output.bytes(filled(10, 1));
  output.release();
  assert.deepEqual(output.take(), filled(10, 1), 'pending bytes survive a release');
  output.release();
  output.bytes(filled(4, 2));
  assert.deepEqual(output.take(), filled(4, 2));
});
