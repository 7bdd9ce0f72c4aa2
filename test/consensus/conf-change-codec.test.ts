// Tests of the byte layout of membership-change entries: every member must decode the same change
// from the same bytes, and anything malformed is refused rather than misread.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeConfChange, encodeConfChange } from '../../src/consensus/conf-change-codec.ts';
import type { ConfChange, ConfChangeType } from '../../src/consensus/types.ts';
import { RaftError } from '../../src/consensus/types.ts';

const TYPES: ConfChangeType[] = ['addNode', 'addLearner', 'removeNode'];
const MAX_ID = (1n << 64n) - 1n;

function invalidConfig(error: unknown): boolean {
  return error instanceof RaftError && error.code === 'CONCORD_E_CONFIG_INVALID';
}

describe('conf change codec', () => {
  test('round-trips every change type, with and without context', () => {
    for (const type of TYPES) {
      for (const context of [new Uint8Array(0), new TextEncoder().encode('10.0.0.4:2380')]) {
        const change: ConfChange = { type, nodeId: 4n, context };
        assert.deepEqual(decodeConfChange(encodeConfChange(change)), change);
      }
    }
  });

  test('round-trips any 64-bit node id and context (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TYPES),
        fc.bigInt({ min: 1n, max: MAX_ID }),
        fc.uint8Array({ maxLength: 64 }),
        (type, nodeId, context) => {
          assert.deepEqual(decodeConfChange(encodeConfChange({ type, nodeId, context })), { type, nodeId, context });
        },
      ),
    );
  });

  test('has a fixed layout: version 1, type code, big-endian id, then the context', () => {
    const bytes = encodeConfChange({ type: 'removeNode', nodeId: 0x0102n, context: new Uint8Array([9]) });
    assert.deepEqual([...bytes], [1, 3, 0, 0, 0, 0, 0, 0, 1, 2, 9]);
  });

  test('refuses node ids that are not non-zero unsigned 64-bit integers', () => {
    for (const nodeId of [0n, -1n, 1n << 64n]) {
      assert.throws(() => encodeConfChange({ type: 'addNode', nodeId, context: new Uint8Array(0) }), invalidConfig, String(nodeId));
    }
  });

  test('refuses short, unknown-version and unknown-type entries', () => {
    const valid = encodeConfChange({ type: 'addNode', nodeId: 7n, context: new Uint8Array(0) });
    assert.throws(() => decodeConfChange(valid.slice(0, 9)), invalidConfig, 'too short');
    assert.throws(() => decodeConfChange(new Uint8Array(0)), invalidConfig, 'empty');
    const badVersion = valid.slice();
    badVersion[0] = 2;
    assert.throws(() => decodeConfChange(badVersion), invalidConfig, 'version 2');
    const badType = valid.slice();
    badType[1] = 9;
    assert.throws(() => decodeConfChange(badType), invalidConfig, 'type code 9');
  });

  test('decodes from a view into a larger buffer, and the context is a copy', () => {
    const encoded = encodeConfChange({ type: 'addLearner', nodeId: 5n, context: new Uint8Array([1, 2, 3]) });
    const buffer = new Uint8Array(encoded.byteLength + 8);
    buffer.set(encoded, 4);
    const view = buffer.subarray(4, 4 + encoded.byteLength);
    const decoded = decodeConfChange(view);
    assert.deepEqual(decoded, { type: 'addLearner', nodeId: 5n, context: new Uint8Array([1, 2, 3]) });
    decoded.context[0] = 99;
    assert.equal(view[10], 1, 'changing the decoded context does not change the log entry');
  });
});
