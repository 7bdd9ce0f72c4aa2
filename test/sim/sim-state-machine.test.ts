// At-most-once execution through client sessions (Raft thesis §6.3), as the simulator's state
// machine applies committed entries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../../src/consensus/types.ts';
import { SimStateMachine, encodeCommand } from '../../src/sim/sim-state-machine.ts';
import type { SimCommand } from '../../src/sim/sim-state-machine.ts';

function entryFor(index: number, command: SimCommand): Entry {
  return { index, term: 1, type: 'normal', data: encodeCommand(command) };
}

test('a command re-proposed after a leader change is applied once and answered from the session', () => {
  const machine = new SimStateMachine();
  const put: SimCommand = { clientId: 'c1', sequence: 1, op: { kind: 'put', key: 'k', value: 'a' } };
  const casAfter: SimCommand = { clientId: 'c2', sequence: 1, op: { kind: 'cas', key: 'k', expected: 'a', value: 'b' } };
  assert.deepEqual(machine.apply(entryFor(1, put)), { clientId: 'c1', sequence: 1, output: { kind: 'put' }, executed: true });
  assert.equal(machine.apply(entryFor(2, casAfter))?.executed, true);
  // The same put, proposed again through another member, lands later in the log: a no-op.
  assert.deepEqual(machine.apply(entryFor(3, put)), { clientId: 'c1', sequence: 1, output: { kind: 'put' }, executed: false });
  assert.equal(machine.read('k'), 'b', 'the duplicate did not overwrite the later compare-and-set');
});

test('a command older than the client\'s latest is ignored', () => {
  const machine = new SimStateMachine();
  machine.apply(entryFor(1, { clientId: 'c1', sequence: 2, op: { kind: 'put', key: 'k', value: 'new' } }));
  const stale = machine.apply(entryFor(2, { clientId: 'c1', sequence: 1, op: { kind: 'put', key: 'k', value: 'old' } }));
  assert.equal(stale?.executed, false);
  assert.equal(stale?.output, undefined);
  assert.equal(machine.read('k'), 'new');
});

test('sessions survive a snapshot and restore, so a retry after a restart is still a no-op', () => {
  const machine = new SimStateMachine();
  const put: SimCommand = { clientId: 'c1', sequence: 5, op: { kind: 'put', key: 'k', value: 'v' } };
  machine.apply(entryFor(1, put));
  const restored = SimStateMachine.restore(machine.snapshot());
  assert.equal(restored.read('k'), 'v');
  assert.equal(restored.apply(entryFor(2, put))?.executed, false);
});
