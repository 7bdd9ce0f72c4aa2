import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMemberSnapshot, encodeMemberSnapshot } from '../../src/server/member-snapshot.ts';
import { AppliedRequests } from '../../src/server/proposal-envelope.ts';

test('a member snapshot round-trips the applied-requests window and the state machine bytes', () => {
  const applied = new AppliedRequests(3);
  applied.firstTime(7n, 100);
  applied.firstTime(7n, 101);
  const machine = Uint8Array.from([0, 1, 2, 255]);
  const decoded = decodeMemberSnapshot(encodeMemberSnapshot(applied, machine));
  assert.deepEqual([...decoded.stateMachine], [...machine]);
  assert.equal(decoded.appliedRequests.firstTime(7n, 101), false, 'request 101 is remembered as applied');
  assert.equal(decoded.appliedRequests.firstTime(7n, 102), true);
});

test('truncated, short or newer-format snapshot data is refused with a clear error', () => {
  const good = encodeMemberSnapshot(new AppliedRequests(3), Uint8Array.of(1));
  assert.throws(() => decodeMemberSnapshot(good.subarray(0, 3)), /too short/);
  assert.throws(() => decodeMemberSnapshot(good.subarray(0, 8)), /truncated/);
  const newer = good.slice();
  newer[0] = 9;
  assert.throws(() => decodeMemberSnapshot(newer), /format 9; this Concord reads format 1: upgrade it/);
});
