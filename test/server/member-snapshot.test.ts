import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMemberSnapshot, encodeMemberSnapshot, encodeMemberSnapshotEnvelope } from '../../src/server/member-snapshot.ts';
import { MemberRegistry } from '../../src/server/member-registry.ts';
import { AppliedRequests } from '../../src/server/proposal-envelope.ts';

test('a member snapshot round-trips the applied-requests window, the member list and the state machine bytes', () => {
  const applied = new AppliedRequests(3);
  applied.firstTime(7n, 100);
  applied.firstTime(7n, 101);
  const members = MemberRegistry.bootstrap([{ id: 2n ** 63n + 5n, name: 'm1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: [] }]);
  members.applyConfChange({ type: 'removeNode', nodeId: 9n, context: new Uint8Array(0) }, { voters: [2n ** 63n + 5n], learners: [] });
  const machine = Uint8Array.from([0, 1, 2, 255]);
  const decoded = decodeMemberSnapshot(encodeMemberSnapshot({ appliedRequests: applied, members, stateMachine: machine }));
  assert.deepEqual([...decoded.stateMachine], [...machine]);
  assert.equal(decoded.appliedRequests.firstTime(7n, 101), false, 'request 101 is remembered as applied');
  assert.equal(decoded.appliedRequests.firstTime(7n, 102), true);
  assert.deepEqual(decoded.members.list(), members.list(), 'the member list, with 64-bit ids intact');
  assert.equal(decoded.members.isRemoved(9n), true, 'removed members stay removed');
});

test('a member snapshot is its envelope followed by the state machine bytes, so a state machine can encode its part right after the envelope', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 0, max: 3 }), (stateMachine, appliedCount) => {
    const appliedRequests = new AppliedRequests(3);
    for (let i = 0; i < appliedCount; i++) appliedRequests.firstTime(7n, 100 + i);
    const envelope = encodeMemberSnapshotEnvelope({ appliedRequests, members: new MemberRegistry() });
    // What a member builds: the state machine's bytes encoded after room for the envelope, then the envelope put in.
    const built = new Uint8Array(envelope.byteLength + stateMachine.byteLength);
    built.set(stateMachine, envelope.byteLength);
    built.set(envelope);
    assert.deepEqual(built, encodeMemberSnapshot({ appliedRequests, members: new MemberRegistry(), stateMachine }));
    const decoded = decodeMemberSnapshot(built);
    assert.deepEqual(decoded.stateMachine, stateMachine);
    assert.equal(decoded.appliedRequests.firstTime(7n, 100), appliedCount === 0, 'the applied requests come back');
  }));
});

test('format 1 snapshots (before clustering) still read, with an empty member list', () => {
  const json = new TextEncoder().encode(JSON.stringify(new AppliedRequests(3).toJSON()));
  const bytes = new Uint8Array(5 + json.byteLength + 1);
  new DataView(bytes.buffer).setUint8(0, 1);
  new DataView(bytes.buffer).setUint32(1, json.byteLength);
  bytes.set(json, 5);
  bytes[bytes.length - 1] = 42;
  const decoded = decodeMemberSnapshot(bytes);
  assert.deepEqual([...decoded.stateMachine], [42]);
  assert.equal(decoded.members.size, 0);
});

test('truncated, short, unreadable or newer-format snapshot data is refused with a clear error', () => {
  const good = encodeMemberSnapshot({ appliedRequests: new AppliedRequests(3), members: new MemberRegistry(), stateMachine: Uint8Array.of(1) });
  assert.throws(() => decodeMemberSnapshot(good.subarray(0, 3)), /too short/);
  assert.throws(() => decodeMemberSnapshot(good.subarray(0, 8)), /truncated/);
  const newer = good.slice();
  newer[0] = 9;
  assert.throws(() => decodeMemberSnapshot(newer), /format 9; this Concord reads formats 1 to 2: upgrade it/);
  const garbled = good.slice();
  garbled[6] = 0x7b;
  assert.throws(() => decodeMemberSnapshot(garbled), /unreadable header/);
});

test('the applied-requests window forgets the oldest request of a member first, and only beyond the window', () => {
  const applied = new AppliedRequests(3);
  for (const id of [1, 2, 3]) assert.equal(applied.firstTime(5n, id), true);
  assert.equal(applied.firstTime(6n, 1), true, 'windows are per member');
  assert.equal(applied.firstTime(5n, 4), true);
  assert.equal(applied.firstTime(5n, 2), false, 'still inside the window');
  assert.equal(applied.firstTime(5n, 1), true, 'the oldest fell out of the window');
  assert.deepEqual(applied.toJSON().members, [['5', [3, 4, 1]], ['6', [1]]]);
});

test('property: the applied-requests window answers as a plain list of the last N per member would, across snapshot round trips', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.record({ member: fc.constantFrom(1n, 2n, 2n ** 64n - 1n), id: fc.nat(12), roundTrip: fc.boolean() }), { maxLength: 120 }),
      (window, steps) => {
        let applied = new AppliedRequests(window);
        const model = new Map<bigint, number[]>();
        for (const { member, id, roundTrip } of steps) {
          const recent = model.get(member) ?? [];
          const expected = !recent.includes(id);
          if (expected) {
            recent.push(id);
            if (recent.length > window) recent.shift();
          }
          model.set(member, recent);
          assert.equal(applied.firstTime(member, id), expected);
          if (roundTrip) applied = AppliedRequests.fromJSON(JSON.parse(JSON.stringify(applied.toJSON())) as ReturnType<AppliedRequests['toJSON']>);
        }
        assert.deepEqual(applied.toJSON().members, [...model].map(([member, ids]) => [member.toString(), ids]));
      },
    ),
    { numRuns: 300 },
  );
});
