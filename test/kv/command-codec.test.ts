// The Raft log codec: lossless for bytes and 64-bit IDs, deterministic, versioned, and refusing
// garbage with a clear error rather than decoding it into a wrong command.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { COMMAND_FORMAT_VERSION, decodeCommand, encodeCommand } from '../../src/kv/command-codec.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { KvError } from '../../src/kv/errors.ts';
import type { KvCommand, TxnRequest } from '../../src/kv/types.ts';
import { commandArbitrary } from './arbitraries.ts';
import { assertKvError, b } from './helpers.ts';

test('property: decoding an encoded command gives a command that encodes to the same bytes and applies the same', () => {
  fc.assert(
    fc.property(fc.array(commandArbitrary, { maxLength: 25 }), (commands) => {
      const direct = new KvStateMachine();
      const viaLog = new KvStateMachine();
      commands.forEach((command, i) => {
        const bytes = encodeCommand(command);
        const decoded = decodeCommand(bytes);
        assert.deepEqual(encodeCommand(decoded), bytes);
        assert.deepEqual(viaLog.apply(decoded, i + 1), direct.apply(command, i + 1));
      });
      assert.deepEqual(viaLog.snapshot(), direct.snapshot());
    }),
    { numRuns: 200 },
  );
});

test('every field survives a round trip, including extreme 64-bit IDs and raw bytes', () => {
  const txn: TxnRequest = {
    compare: [
      { result: 'notEqual', target: 'lease', key: new Uint8Array([0, 255]), rangeEnd: new Uint8Array([0]), lease: -(2n ** 63n) },
      { result: 'less', target: 'mod', key: b('k'), rangeEnd: new Uint8Array(0), modRevision: Number.MAX_SAFE_INTEGER },
    ],
    success: [
      {
        type: 'range',
        request: {
          key: b('a'), rangeEnd: b('b'), limit: -1, revision: 7, sortOrder: 'descend', sortTarget: 'value', serializable: true,
          keysOnly: false, countOnly: true, minModRevision: 1, maxModRevision: 2, minCreateRevision: 3, maxCreateRevision: 4,
        },
      },
      { type: 'put', request: { key: b('p'), value: new Uint8Array([0, 1, 2, 255]), lease: 2n ** 63n - 1n, prevKv: true, ignoreValue: false, ignoreLease: false } },
    ],
    failure: [{ type: 'txn', request: { compare: [], success: [{ type: 'deleteRange', request: { key: b('d'), rangeEnd: new Uint8Array(0), prevKv: true } }], failure: [] } }],
  };
  const commands: KvCommand[] = [
    { type: 'txn', request: txn },
    { type: 'compact', request: { revision: 12, physical: true } },
    { type: 'leaseGrant', request: { ttl: -3, id: 2n ** 63n - 1n } },
    { type: 'leaseRevoke', request: { id: -5n } },
    { type: 'alarm', request: { action: 'deactivate', memberId: 2n ** 64n - 1n, alarm: 'corrupt' } },
  ];
  for (const command of commands) assert.deepEqual(decodeCommand(encodeCommand(command)), command);
  assert.equal(encodeCommand(commands[1]!)[0], COMMAND_FORMAT_VERSION);
});

test('a command larger than maxRequestBytes is refused with "request is too large"', () => {
  const command: KvCommand = { type: 'put', request: { key: b('k'), value: new Uint8Array(1.5 * 1024 * 1024) } };
  assertKvError(() => encodeCommand(command), 'CONCORD_E_KV_REQUEST_TOO_LARGE', 'etcdserver: request is too large');
  assert.ok(encodeCommand(command, { maxRequestBytes: 2 * 1024 * 1024 }).length > 1.5 * 1024 * 1024);
  assertKvError(() => encodeCommand({ type: 'put', request: { key: b('k'), value: b('12345') } }, { maxRequestBytes: 8 }), 'CONCORD_E_KV_REQUEST_TOO_LARGE');
});

test('an unknown version, an unknown type, truncation and trailing bytes are refused', () => {
  const good = encodeCommand({ type: 'put', request: { key: b('k'), value: b('v') } });
  const refuse = (bytes: Uint8Array, pattern: RegExp) => {
    const error = assertKvError(() => decodeCommand(bytes), 'CONCORD_E_KV_COMMAND_INVALID');
    assert.match(error.message, pattern);
  };
  refuse(new Uint8Array(0), /truncated/);
  refuse(Uint8Array.of(3, ...good.subarray(1)), /format version 3/);
  refuse(Uint8Array.of(2, 99), /unknown command type 99/);
  refuse(good.subarray(0, good.length - 1), /truncated/);
  refuse(Uint8Array.of(...good, 0), /unexpected bytes/);
  refuse(Uint8Array.of(1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), /varint longer than 8 bytes/);
});

test('txns nested deeper than the ops budget allows are refused when decoded', () => {
  let txn: TxnRequest = {};
  for (let depth = 0; depth < 200; depth++) txn = { success: [{ type: 'txn', request: txn }] };
  assertKvError(() => decodeCommand(encodeCommand({ type: 'txn', request: txn })), 'CONCORD_E_KV_COMMAND_INVALID');
});

test('property: random bytes decode to a command or to COMMAND_INVALID, never to anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, withHeader) => {
      const input = withHeader ? Uint8Array.of(COMMAND_FORMAT_VERSION, (bytes[0] ?? 0) % 7, ...bytes) : bytes;
      try {
        const command = decodeCommand(input);
        assert.deepEqual(encodeCommand(command, { maxRequestBytes: Infinity }), input, 'whatever decodes is the canonical encoding');
      } catch (error) {
        assert.ok(error instanceof KvError && error.code === 'CONCORD_E_KV_COMMAND_INVALID', String(error));
      }
    }),
    { numRuns: 2000 },
  );
});
