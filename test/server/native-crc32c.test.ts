// The native CRC-32C the server gives its state machine computes the same function as the core's
// plain TypeScript one: the same snapshot bytes, readable by either, and damage still refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nativeCrc32cUpdate } from '../../src/server/native-crc32c.ts';
import { crc32cUpdate } from '../../src/kv/crc32c.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { KvError } from '../../src/kv/errors.ts';

test('the native CRC-32C continues a running checksum exactly as the core one does', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), fc.boolean(), (chunks, nativeFirst) => {
    let core = 0;
    let mixed = 0;
    for (const [i, chunk] of chunks.entries()) {
      core = crc32cUpdate(core, chunk);
      mixed = (i % 2 === 0) === nativeFirst ? nativeCrc32cUpdate(mixed, chunk) : crc32cUpdate(mixed, chunk);
    }
    assert.equal(mixed, core);
  }), { numRuns: 300 });
  // CRC-32C's check value (RFC 3720, B.4): 32 bytes of zeros.
  assert.equal(nativeCrc32cUpdate(0, new Uint8Array(32)), 0x8a9136aa);
});

test('a state machine with the native checksum writes the same snapshot, and each reads the other\'s', () => {
  const withNative = new KvStateMachine({ checksum: nativeCrc32cUpdate });
  const withCore = new KvStateMachine();
  const encoder = new TextEncoder();
  for (let i = 1; i <= 50; i++) {
    for (const machine of [withNative, withCore]) {
      machine.apply({ type: 'put', request: { key: encoder.encode(`key-${i % 20}`), value: encoder.encode(`value-${i}`) } }, i);
    }
  }
  const capture = withNative.captureSnapshot();
  let bytes: Uint8Array | undefined;
  while (!(bytes = capture.step(3)));
  assert.deepEqual([...bytes], [...withCore.snapshot()]);
  assert.deepEqual([...withNative.snapshot()], [...bytes]);
  const restored = KvStateMachine.restore(withCore.snapshot(), { checksum: nativeCrc32cUpdate });
  assert.equal(restored.hashKv().hash, withCore.hashKv().hash);
  const damaged = bytes.slice();
  damaged[damaged.length >> 1]! ^= 0x01;
  assert.throws(() => KvStateMachine.restore(damaged, { checksum: nativeCrc32cUpdate }), (error) => error instanceof KvError && /checksum mismatch/.test(error.message));
});
