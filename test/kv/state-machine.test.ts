// KvStateMachine: applying Raft entries, the space quota and alarms as etcd's appliers handle them
// (etcd op-guide "Maintenance: space quota": "the cluster raises an alarm that puts the cluster
// into a maintenance mode which only accepts key reads and deletes"), and snapshots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import type { ApplyResult } from '../../src/kv/state-machine.ts';
import type { KvCommand } from '../../src/kv/types.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/kv/kv-snapshot.ts';
import { crc32c } from '../../src/kv/crc32c.ts';
import { commandArbitrary } from './arbitraries.ts';
import { assertKvError, b, text } from './helpers.ts';

const ALL = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

function run(machine: KvStateMachine, command: KvCommand): ApplyResult {
  return machine.apply(command, machine.appliedIndex + 1);
}

function failure(result: ApplyResult): string {
  assert.equal(result.status, 'failed', JSON.stringify(result, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
  return result.status === 'failed' ? result.error.message : '';
}

test('apply returns the response, the new revision and its events; an applied index is never applied twice', () => {
  const machine = new KvStateMachine();
  const result = machine.apply({ type: 'put', request: { key: b('a'), value: b('1') } }, 1);
  assert.ok(result.status === 'applied');
  assert.deepEqual(result.response, { type: 'put', response: { header: { revision: 2 } } });
  assert.equal(result.revision, 2);
  assert.deepEqual(result.events.map((event) => [event.type, text(event.kv.key)]), [['put', 'a']]);
  assert.deepEqual(machine.apply({ type: 'put', request: { key: b('a'), value: b('2') } }, 1), { status: 'skipped', index: 1 });
  assert.equal(machine.currentRevision, 2);
  const failed = machine.apply({ type: 'put', request: { key: b('a'), ignoreValue: true, value: b('x') } }, 2);
  assert.deepEqual([failed.status, machine.appliedIndex], ['failed', 2], 'a failed command still consumes its index');
  machine.markApplied(5);
  assert.equal(machine.appliedIndex, 5);
});

test('a write that would reach the quota fails with NOSPACE and raises the alarm', () => {
  const machine = new KvStateMachine({ quotaBackendBytes: 1000 });
  const big = (key: string) => ({ type: 'put' as const, request: { key: b(key), value: new Uint8Array(400) } }); // costs 657 bytes
  assert.equal(run(machine, big('a')).status, 'applied');
  assert.equal(failure(run(machine, big('b'))), 'etcdserver: mvcc: database space exceeded');
  assert.deepEqual(machine.alarms(), [{ memberId: 0n, alarm: 'nospace' }]);
  // While the alarm is active even a small put fails, and so do txns with puts and lease grants.
  assert.equal(failure(run(machine, { type: 'put', request: { key: b('s'), value: b('1') } })), 'etcdserver: mvcc: database space exceeded');
  assert.equal(failure(run(machine, { type: 'txn', request: { success: [{ type: 'put', request: { key: b('s') } }] } })), 'etcdserver: mvcc: database space exceeded');
  assert.equal(failure(run(machine, { type: 'leaseGrant', request: { id: 1n, ttl: 10 } })), 'etcdserver: mvcc: database space exceeded');
  // Reads, deletes, txns without puts and compactions still work.
  assert.equal(machine.range({ key: b('a') }).count, 1);
  assert.equal(run(machine, { type: 'txn', request: { success: [{ type: 'range', request: { key: b('a') } }] } }).status, 'applied');
  assert.equal(run(machine, { type: 'deleteRange', request: { key: b('a') } }).status, 'applied');
  assert.equal(run(machine, { type: 'compact', request: { revision: 3 } }).status, 'applied');
  assert.equal(machine.sizeBytes(), 256 + 1, 'compaction released the space; the tombstone at the compact revision stays');
  // Disarming lets writes in again.
  const disarmed = run(machine, { type: 'alarm', request: { action: 'deactivate', memberId: 0n, alarm: 'nospace' } });
  assert.ok(disarmed.status === 'applied');
  assert.deepEqual(disarmed.response, { type: 'alarm', response: { header: { revision: 3 }, alarms: [{ memberId: 0n, alarm: 'nospace' }] } });
  assert.equal(run(machine, big('b')).status, 'applied');
});

test('lease revokes work while the NOSPACE alarm is active', () => {
  const machine = new KvStateMachine({ quotaBackendBytes: 1000 });
  run(machine, { type: 'leaseGrant', request: { id: 1n, ttl: 10 } });
  run(machine, { type: 'put', request: { key: b('a'), value: new Uint8Array(400), lease: 1n } });
  assert.equal(run(machine, { type: 'put', request: { key: b('b'), value: new Uint8Array(400) } }).status, 'failed');
  const revoked = run(machine, { type: 'leaseRevoke', request: { id: 1n } });
  assert.ok(revoked.status === 'applied');
  assert.equal(machine.range({ key: b('a') }).count, 0);
});

test('alarms: activate, get and deactivate answer as etcd\'s applier', () => {
  const machine = new KvStateMachine();
  const alarm = (action: 'get' | 'activate' | 'deactivate', memberId: bigint, type: 'none' | 'nospace' | 'corrupt') => {
    const result = run(machine, { type: 'alarm', request: { action, memberId, alarm: type } });
    assert.ok(result.status === 'applied' && result.response.type === 'alarm');
    return result.response.response.alarms;
  };
  assert.deepEqual(alarm('activate', 7n, 'nospace'), [{ memberId: 7n, alarm: 'nospace' }]);
  assert.deepEqual(alarm('activate', 7n, 'nospace'), [{ memberId: 7n, alarm: 'nospace' }], 'activating twice returns it again');
  assert.deepEqual(alarm('activate', 3n, 'none'), [], 'NONE cannot be activated');
  assert.deepEqual(alarm('activate', 2n ** 64n - 1n, 'nospace'), [{ memberId: 2n ** 64n - 1n, alarm: 'nospace' }]);
  assert.deepEqual(alarm('get', 0n, 'none').map((member) => member.memberId), [7n, 2n ** 64n - 1n]);
  assert.deepEqual(alarm('deactivate', 7n, 'corrupt'), []);
  assert.deepEqual(alarm('deactivate', 7n, 'nospace'), [{ memberId: 7n, alarm: 'nospace' }]);
  assert.deepEqual(alarm('get', 0n, 'nospace'), [{ memberId: 2n ** 64n - 1n, alarm: 'nospace' }]);
});

test('while CORRUPT is active every key-value request fails with "corrupt cluster"', () => {
  const machine = new KvStateMachine();
  run(machine, { type: 'alarm', request: { action: 'activate', memberId: 1n, alarm: 'corrupt' } });
  const message = 'etcdserver: corrupt cluster';
  assert.equal(failure(run(machine, { type: 'put', request: { key: b('a') } })), message);
  assert.equal(failure(run(machine, { type: 'deleteRange', request: { key: b('a') } })), message);
  assert.equal(failure(run(machine, { type: 'txn', request: {} })), message);
  assert.equal(failure(run(machine, { type: 'compact', request: { revision: 1 } })), message);
  assertKvError(() => machine.range({ key: b('a') }), 'CONCORD_E_KV_CORRUPT', message);
});

test('a negative quota disables the check, as etcd', () => {
  const machine = new KvStateMachine({ quotaBackendBytes: -1 });
  for (let i = 0; i < 5; i++) assert.equal(run(machine, { type: 'put', request: { key: b(`k${i}`), value: new Uint8Array(10_000) } }).status, 'applied');
});

function sameAnswers(a: KvStateMachine, c: KvStateMachine): void {
  assert.equal(c.currentRevision, a.currentRevision);
  assert.equal(c.appliedIndex, a.appliedIndex);
  assert.equal(c.mvcc.compactRevision, a.mvcc.compactRevision);
  assert.deepEqual(c.hashKv(), a.hashKv());
  assert.equal(c.sizeBytes(), a.sizeBytes());
  assert.deepEqual(c.alarms(), a.alarms());
  assert.deepEqual(c.leaseIds().map((id) => c.lease(id)), a.leaseIds().map((id) => a.lease(id)));
  for (let revision = Math.max(1, a.mvcc.compactRevision); revision <= a.currentRevision; revision++) {
    assert.deepEqual(c.mvcc.range({ ...ALL, revision }), a.mvcc.range({ ...ALL, revision }));
    assert.deepEqual(c.mvcc.eventsAt(revision), a.mvcc.eventsAt(revision));
  }
}

test('property: a restored snapshot answers every range identically and continues with the same revisions', () => {
  fc.assert(
    fc.property(fc.array(commandArbitrary, { maxLength: 40 }), fc.array(commandArbitrary, { maxLength: 15 }), (before, after) => {
      const original = new KvStateMachine({ quotaBackendBytes: 20_000 });
      before.forEach((command) => run(original, command));
      const restored = KvStateMachine.restore(original.snapshot(), { quotaBackendBytes: 20_000 });
      sameAnswers(original, restored);
      for (const command of after) assert.deepEqual(run(restored, command), run(original, command));
      sameAnswers(original, restored);
      assert.deepEqual(restored.snapshot(), original.snapshot(), 'snapshots are deterministic');
    }),
    { numRuns: 200 },
  );
});

test('a damaged, foreign or newer snapshot is refused with a clear error', () => {
  const machine = new KvStateMachine();
  run(machine, { type: 'put', request: { key: b('a'), value: b('1') } });
  const good = machine.snapshot();
  const refused = (bytes: Uint8Array, code: 'CONCORD_E_KV_SNAPSHOT_INVALID' | 'CONCORD_E_KV_SNAPSHOT_VERSION', pattern: RegExp) => {
    const error = assertKvError(() => KvStateMachine.restore(bytes), code);
    assert.match(error.message, pattern);
  };
  refused(good.subarray(0, 6), 'CONCORD_E_KV_SNAPSHOT_INVALID', /too short/);
  refused(good.subarray(0, good.length - 1), 'CONCORD_E_KV_SNAPSHOT_INVALID', /checksum mismatch/);
  const flipped = good.slice();
  flipped[10]! ^= 0x01;
  refused(flipped, 'CONCORD_E_KV_SNAPSHOT_INVALID', /checksum mismatch/);
  const foreign = good.slice();
  foreign[0] = 0x7b;
  refused(foreign, 'CONCORD_E_KV_SNAPSHOT_INVALID', /bad magic/);
  const newer = good.slice();
  newer[4] = 3;
  refused(newer, 'CONCORD_E_KV_SNAPSHOT_VERSION', /written by a newer Concord: format version 3, this member reads up to 2/);
});

test('a snapshot with a valid checksum but broken invariants is refused', () => {
  const machine = new KvStateMachine();
  run(machine, { type: 'leaseGrant', request: { id: 4n, ttl: 10 } });
  run(machine, { type: 'put', request: { key: b('b'), value: b('1'), lease: 4n } });
  run(machine, { type: 'put', request: { key: b('a'), value: b('1') } });
  const state = decodeSnapshot(machine.snapshot());
  const unsorted = { ...state, mvcc: { ...state.mvcc, keys: [...state.mvcc.keys].reverse() } };
  assertKvError(() => KvStateMachine.restore(encodeSnapshot(unsorted)), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  const orphanKey = { ...state, leases: [] };
  assertKvError(() => KvStateMachine.restore(encodeSnapshot(orphanKey)), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  const future = { ...state, mvcc: { ...state.mvcc, revision: 2 } };
  assertKvError(() => KvStateMachine.restore(encodeSnapshot(future)), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  // Trailing bytes with a recomputed checksum are still refused.
  const body = machine.snapshot().subarray(0, -4);
  const padded = new Uint8Array(body.length + 1 + 4);
  padded.set(body);
  new DataView(padded.buffer).setUint32(padded.length - 4, crc32c(padded.subarray(0, padded.length - 4)));
  assertKvError(() => KvStateMachine.restore(padded), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  assert.equal(KvStateMachine.restore(encodeSnapshot(state)).lease(4n)!.keys.length, 1);
});

test('a captured snapshot is one buffer grown in place, after a prefix left for the caller, and equals snapshot()', () => {
  const machine = new KvStateMachine();
  for (let i = 0; i < 40; i++) run(machine, { type: 'put', request: { key: b(`key-${i}`), value: new Uint8Array(100 * 1024).fill(i) } });
  run(machine, { type: 'deleteRange', request: { key: b('key-3') } });
  const encoder = machine.captureSnapshot(7);
  let bytes: Uint8Array | undefined;
  while (!(bytes = encoder.step(2)));
  assert.ok(bytes.buffer instanceof ArrayBuffer && bytes.buffer.resizable, 'encoded into a buffer that grows in place');
  assert.deepEqual([...bytes.subarray(0, 7)], [0, 0, 0, 0, 0, 0, 0], 'the prefix is left for the caller');
  assert.deepEqual(bytes.subarray(7), machine.snapshot());
});

test('the quota\'s size estimate bounds the encoded key-value history, so a snapshot grows within its reservation', () => {
  const write = fc.oneof(
    fc.record({ key: fc.uint8Array({ minLength: 1, maxLength: 40 }), value: fc.uint8Array({ maxLength: 300 }) }).map(({ key, value }): KvCommand => ({ type: 'put', request: { key, value } })),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((key): KvCommand => ({ type: 'deleteRange', request: { key } })),
    fc.constant('compact' as const),
  );
  fc.assert(fc.property(fc.array(write, { maxLength: 80 }), (writes) => {
    const machine = new KvStateMachine();
    for (const write of writes) {
      if (write === 'compact') run(machine, { type: 'compact', request: { revision: machine.currentRevision, physical: false } });
      else run(machine, write);
    }
    // What the estimate leaves out of a store without leases, alarms or auth: the header and the
    // empty tail, under 64 bytes.
    assert.ok(machine.snapshot().byteLength <= machine.sizeBytes() + 64, `${machine.snapshot().byteLength} bytes encoded, ${machine.sizeBytes()} estimated`);
  }));
});

test('a captured snapshot encodes, slice by slice, exactly the state at the capture, whatever is applied meanwhile', () => {
  fc.assert(fc.property(
    fc.array(commandArbitrary, { minLength: 10, maxLength: 60 }),
    fc.array(commandArbitrary, { maxLength: 60 }),
    fc.integer({ min: 1, max: 2 }),
    (before, after, keysPerSlice) => {
      const machine = new KvStateMachine();
      for (const command of before) run(machine, command);
      const expected = machine.snapshot();
      const encoder = machine.captureSnapshot();
      let bytes: Uint8Array | undefined;
      // Interleave: a slice, then more commands (compactions among them), until the encoder is done.
      for (let i = 0; !(bytes = encoder.step(keysPerSlice)); i += 3) {
        for (const command of after.slice(i, i + 3)) run(machine, command);
      }
      for (const command of after) run(machine, command);
      run(machine, { type: 'compact', request: { revision: machine.currentRevision, physical: false } });
      assert.deepEqual([...bytes], [...expected]);
    },
  ), { numRuns: 200 });
});
