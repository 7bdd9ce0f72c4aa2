// A put value applied from a log entry is kept as a view of the entry's bytes instead of a second
// copy, but only where that holds no much larger buffer alive; values from any other caller are
// copied, since the caller may change its array afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { MvccStore } from '../../src/kv/mvcc.ts';
import { decodeCommand, encodeCommand } from '../../src/kv/command-codec.ts';
import type { KvCommand } from '../../src/kv/types.ts';
import { commandArbitrary } from './arbitraries.ts';
import { b, text } from './helpers.ts';

const ALL = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

function putCommand(value: Uint8Array): Uint8Array {
  return encodeCommand({ type: 'put', request: { key: b('k'), value } });
}

test('a value applied from a log entry shares the entry\'s buffer', () => {
  const machine = new KvStateMachine();
  const payload = putCommand(new Uint8Array(256).fill(7));
  machine.applyEncoded(payload, 1);
  const kept = machine.mvcc.get(b('k'))!.value;
  assert.equal(kept.buffer, payload.buffer, 'no second copy of the value');
  assert.deepEqual(kept, new Uint8Array(256).fill(7));
});

test('a value whose entry sits in a much larger buffer (a frame, a segment) is copied', () => {
  const machine = new KvStateMachine();
  const payload = putCommand(b('v'));
  const frame = new Uint8Array(64 * 1024);
  frame.set(payload, 1000);
  machine.applyEncoded(frame.subarray(1000, 1000 + payload.byteLength), 1);
  const kept = machine.mvcc.get(b('k'))!.value;
  assert.notEqual(kept.buffer, frame.buffer, 'a one-byte value must not keep 64 KiB alive');
  assert.equal(kept.buffer.byteLength, 1);
  frame.fill(0);
  assert.equal(text(machine.mvcc.get(b('k'))!.value), 'v');
});

test('the key of a new key is always copied, so a later overwrite frees the first entry', () => {
  const machine = new KvStateMachine();
  const payload = putCommand(new Uint8Array(300));
  machine.applyEncoded(payload, 1);
  assert.notEqual(machine.mvcc.get(b('k'))!.key.buffer, payload.buffer);
});

test('direct puts keep copies, whatever the buffer', () => {
  const store = new MvccStore();
  const value = b('v');
  store.put({ key: b('k'), value });
  value[0] = 0x78;
  assert.equal(text(store.get(b('k'))!.value), 'v');
});

test('property: applying entries with shared bytes gives the same state as applying decoded copies', () => {
  fc.assert(
    fc.property(fc.array(commandArbitrary, { maxLength: 40 }), (commands: KvCommand[]) => {
      const shared = new KvStateMachine({ quotaBackendBytes: 50_000 });
      const copied = new KvStateMachine({ quotaBackendBytes: 50_000 });
      for (const command of commands) {
        const payload = encodeCommand(command);
        const a = shared.applyEncoded(payload, shared.appliedIndex + 1);
        const c = copied.apply(decodeCommand(payload), copied.appliedIndex + 1);
        assert.deepEqual(a, c);
      }
      assert.deepEqual(shared.hashKv(), copied.hashKv());
      for (let revision = Math.max(1, copied.mvcc.compactRevision); revision <= copied.currentRevision; revision++) {
        assert.deepEqual(shared.mvcc.range({ ...ALL, revision }), copied.mvcc.range({ ...ALL, revision }));
      }
    }),
    { numRuns: 200 },
  );
});
