// Auth in the replicated state machine: each key-value command authorized for its requester when it
// is applied (etcd's authApplierV3), the same way on every member; auth commands through the Raft
// codec; and the auth state in snapshots, with the previous formats still read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import type { ApplyResult } from '../../src/kv/state-machine.ts';
import type { KvCommand } from '../../src/kv/types.ts';
import type { AuthCommand, Requester } from '../../src/kv/auth/auth-types.ts';
import { ANONYMOUS_REQUESTER } from '../../src/kv/auth/auth-types.ts';
import { decodeCommand, encodeCommand } from '../../src/kv/command-codec.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/kv/kv-snapshot.ts';
import { crc32c } from '../../src/kv/crc32c.ts';
import { commandArbitrary } from './arbitraries.ts';
import { assertKvError, b } from './helpers.ts';

function run(machine: KvStateMachine, command: KvCommand, requester?: Requester): ApplyResult {
  return machine.apply(requester === undefined ? command : { ...command, requester }, machine.appliedIndex + 1);
}

function applied(machine: KvStateMachine, command: KvCommand, requester?: Requester): ApplyResult {
  const result = run(machine, command, requester);
  assert.equal(result.status, 'applied', result.status === 'failed' ? result.error.message : '');
  return result;
}

function refusedWith(machine: KvStateMachine, command: KvCommand, requester: Requester, message: string): void {
  const revision = machine.currentRevision;
  const result = run(machine, command, requester);
  assert.equal(result.status, 'failed', `${command.type} should be refused`);
  if (result.status === 'failed') assert.equal(result.error.message, message);
  assert.equal(machine.currentRevision, revision, 'a refused command writes nothing');
}

const DENIED = 'etcdserver: permission denied';
const USER_EMPTY = 'etcdserver: user name is empty';

/** root; alice with read foo and readwrite [r/1, r/5); auth enabled. */
function enabledMachine(): KvStateMachine {
  const machine = new KvStateMachine();
  const steps: AuthCommand[] = [
    { type: 'userAdd', request: { user: 'root', passwordHash: b('h'), noPassword: false } },
    { type: 'userGrantRole', request: { user: 'root', role: 'root' } },
    { type: 'userAdd', request: { user: 'alice', passwordHash: b('h'), noPassword: false } },
    { type: 'roleAdd', request: { role: 'reader' } },
    { type: 'roleGrantPermission', request: { role: 'reader', permission: { permType: 'read', key: b('foo'), rangeEnd: new Uint8Array(0) } } },
    { type: 'roleGrantPermission', request: { role: 'reader', permission: { permType: 'readwrite', key: b('r/1'), rangeEnd: b('r/5') } } },
    { type: 'userGrantRole', request: { user: 'alice', role: 'reader' } },
    { type: 'authEnable', request: {} },
  ];
  for (const step of steps) applied(machine, step);
  return machine;
}

function as(machine: KvStateMachine, user: string): Requester {
  return { kind: 'client', user, authRevision: machine.auth.revision };
}

test('puts, deletes and txns are authorized at apply, for the requester the command carries', () => {
  const machine = enabledMachine();
  const alice = as(machine, 'alice');
  refusedWith(machine, { type: 'put', request: { key: b('foo'), value: b('x') } }, alice, DENIED);
  applied(machine, { type: 'put', request: { key: b('r/2'), value: b('x') } }, alice);
  refusedWith(machine, { type: 'put', request: { key: b('r/2'), value: b('x') } }, ANONYMOUS_REQUESTER, USER_EMPTY);
  refusedWith(machine, { type: 'deleteRange', request: { key: b('r/'), rangeEnd: b('r0') } }, alice, DENIED);
  applied(machine, { type: 'deleteRange', request: { key: b('r/1'), rangeEnd: b('r/5'), prevKv: true } }, alice);
  // A txn needs read on every compared key and each branch's operations, nested ones too.
  const txn = (compareKey: string, put: string): KvCommand => ({
    type: 'txn',
    request: {
      compare: [{ target: 'version', result: 'equal', key: b(compareKey), version: 0 }],
      success: [{ type: 'range', request: { key: b('foo') } }],
      failure: [{ type: 'txn', request: { success: [{ type: 'put', request: { key: b(put), value: b('v') } }] } }],
    },
  });
  refusedWith(machine, txn('secret', 'r/3'), alice, DENIED);
  refusedWith(machine, txn('foo', 'secret'), alice, DENIED);
  applied(machine, txn('foo', 'r/3'), alice);
  applied(machine, { type: 'put', request: { key: b('secret'), value: b('x') } }, as(machine, 'root'));
  applied(machine, { type: 'put', request: { key: b('secret'), value: b('y') } }, { kind: 'member' });
});

test('prev_kv needs read as well as write; a lease already on keys the user may not write cannot be extended or revoked', () => {
  const machine = enabledMachine();
  const byRoot = (command: AuthCommand) => applied(machine, command, as(machine, 'root'));
  byRoot({ type: 'roleAdd', request: { role: 'writer' } });
  byRoot({ type: 'roleGrantPermission', request: { role: 'writer', permission: { permType: 'write', key: b('w'), rangeEnd: new Uint8Array([0]) } } });
  byRoot({ type: 'userGrantRole', request: { user: 'alice', role: 'writer' } });
  const alice = as(machine, 'alice');
  const root = as(machine, 'root');
  applied(machine, { type: 'put', request: { key: b('w1'), value: b('x') } }, alice);
  refusedWith(machine, { type: 'put', request: { key: b('w1'), value: b('x'), prevKv: true } }, alice, DENIED);
  refusedWith(machine, { type: 'deleteRange', request: { key: b('w1'), prevKv: true } }, alice, DENIED);
  applied(machine, { type: 'leaseGrant', request: { id: 5n, ttl: 100 } }, alice);
  applied(machine, { type: 'put', request: { key: b('a-secret'), value: b('x'), lease: 5n } }, root);
  refusedWith(machine, { type: 'put', request: { key: b('w2'), value: b('x'), lease: 5n } }, alice, DENIED);
  refusedWith(machine, { type: 'leaseRevoke', request: { id: 5n } }, alice, DENIED);
  refusedWith(machine, { type: 'leaseRevoke', request: { id: 5n } }, ANONYMOUS_REQUESTER, USER_EMPTY);
  applied(machine, { type: 'leaseGrant', request: { id: 6n, ttl: 100 } }, ANONYMOUS_REQUESTER);
  applied(machine, { type: 'leaseRevoke', request: { id: 6n } }, ANONYMOUS_REQUESTER); // no keys: nothing to protect, as in etcd
  applied(machine, { type: 'leaseRevoke', request: { id: 5n } }, root);
});

test('compaction and arming or disarming alarms need the root role (etcd 3.4 lets anyone); alarm GET does not', () => {
  const machine = enabledMachine();
  applied(machine, { type: 'put', request: { key: b('r/1'), value: b('x') } }, as(machine, 'alice'));
  refusedWith(machine, { type: 'compact', request: { revision: 2 } }, as(machine, 'alice'), DENIED);
  refusedWith(machine, { type: 'compact', request: { revision: 2 } }, ANONYMOUS_REQUESTER, USER_EMPTY);
  refusedWith(machine, { type: 'alarm', request: { action: 'deactivate', memberId: 0n, alarm: 'nospace' } }, as(machine, 'alice'), DENIED);
  applied(machine, { type: 'alarm', request: { action: 'get', memberId: 0n, alarm: 'none' } }, ANONYMOUS_REQUESTER);
  applied(machine, { type: 'compact', request: { revision: 2 } }, as(machine, 'root'));
  applied(machine, { type: 'put', request: { key: b('r/1'), value: b('y') } }, as(machine, 'alice'));
  applied(machine, { type: 'compact', request: { revision: 3 } }, { kind: 'member' });
});

test('a request checked before the auth state changed is refused as old, so the client retries (etcd\'s optimistic check)', () => {
  const machine = enabledMachine();
  const checkedEarlier = as(machine, 'alice');
  applied(machine, { type: 'roleAdd', request: { role: 'unrelated' } }, as(machine, 'root'));
  refusedWith(machine, { type: 'put', request: { key: b('r/1'), value: b('x') } }, checkedEarlier, 'etcdserver: revision of auth store is old');
  applied(machine, { type: 'put', request: { key: b('r/1'), value: b('x') } }, as(machine, 'alice'));
});

test('a malformed request is refused as malformed before permissions are looked at', () => {
  const machine = enabledMachine();
  refusedWith(machine, { type: 'put', request: { key: new Uint8Array(0), value: b('x') } }, ANONYMOUS_REQUESTER, 'etcdserver: key is not provided');
  refusedWith(machine, { type: 'deleteRange', request: { key: new Uint8Array(0) } }, as(machine, 'alice'), 'etcdserver: key is not provided');
});

test('auth commands are applied through the state machine, change no key, and answer with the current revision', () => {
  const machine = enabledMachine();
  applied(machine, { type: 'put', request: { key: b('r/1'), value: b('x') } }, as(machine, 'alice'));
  const result = applied(machine, { type: 'roleAdd', request: { role: 'new' } }, as(machine, 'root'));
  assert.ok(result.status === 'applied');
  assert.deepEqual(result.response, { type: 'roleAdd', response: { header: { revision: 2 } } });
  assert.equal(result.revision, 2);
  assert.deepEqual(result.events, []);
  refusedWith(machine, { type: 'roleAdd', request: { role: 'other' } }, as(machine, 'alice'), DENIED);
});

test('the same commands give every member the same answers, through the Raft codec', () => {
  const leader = enabledMachine();
  const follower = KvStateMachine.restore(leader.snapshot());
  const commands: KvCommand[] = [
    { type: 'put', request: { key: b('r/2'), value: b('1') }, requester: as(leader, 'alice') },
    { type: 'put', request: { key: b('foo'), value: b('1') }, requester: as(leader, 'alice') },
    { type: 'userRevokeRole', request: { user: 'alice', role: 'reader' }, requester: as(leader, 'root') },
    { type: 'put', request: { key: b('r/3'), value: b('1') }, requester: { kind: 'client', user: 'alice', authRevision: leader.auth.revision + 1 } },
  ];
  for (const command of commands) {
    const index = leader.appliedIndex + 1;
    const a = leader.apply(decodeCommand(encodeCommand(command)), index);
    const c = follower.apply(decodeCommand(encodeCommand(command)), index);
    assert.deepEqual(a, c);
  }
  assert.deepEqual(leader.snapshot(), follower.snapshot());
});

// --- codec and snapshots -------------------------------------------------------------------------

const name = fc.oneof(fc.constantFrom('', 'root', 'alice', 'r\u00e9le', '\u{1F600}'), fc.string({ maxLength: 5 }).filter((s) => s.isWellFormed()));
const bytes = fc.uint8Array({ maxLength: 6 });
const authCommandArbitrary: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.constant<KvCommand>({ type: 'authEnable', request: {} }),
  fc.constant<KvCommand>({ type: 'authDisable', request: {} }),
  fc.record({ user: name, tokenDigest: bytes, credentialRevision: fc.nat() }).map((request): KvCommand => ({ type: 'authenticate', request })),
  fc.record({ user: name, passwordHash: bytes, noPassword: fc.boolean() }).map((request): KvCommand => ({ type: 'userAdd', request })),
  name.map((user): KvCommand => ({ type: 'userDelete', request: { user } })),
  fc.record({ user: name, passwordHash: bytes }).map((request): KvCommand => ({ type: 'userChangePassword', request })),
  fc.record({ user: name, role: name }).map((request): KvCommand => ({ type: 'userGrantRole', request })),
  fc.record({ user: name, role: name }).map((request): KvCommand => ({ type: 'userRevokeRole', request })),
  name.map((role): KvCommand => ({ type: 'roleAdd', request: { role } })),
  name.map((role): KvCommand => ({ type: 'roleDelete', request: { role } })),
  fc.record({ role: name, permission: fc.option(fc.record({ permType: fc.constantFrom('read' as const, 'write' as const, 'readwrite' as const), key: bytes, rangeEnd: bytes }), { nil: undefined }) })
    .map(({ role, permission }): KvCommand => ({ type: 'roleGrantPermission', request: permission === undefined ? { role } : { role, permission } })),
  fc.record({ role: name, key: bytes, rangeEnd: bytes }).map((request): KvCommand => ({ type: 'roleRevokePermission', request })),
);
const requesterArbitrary: fc.Arbitrary<Requester | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.record({ user: name, authRevision: fc.nat() }).map(({ user, authRevision }): Requester => ({ kind: 'client', user, authRevision })),
);

test('property: every command, auth ones included, with or without a requester, survives the codec', () => {
  fc.assert(
    fc.property(fc.oneof(authCommandArbitrary, commandArbitrary), requesterArbitrary, (command, requester) => {
      const withRequester = requester === undefined ? command : { ...command, requester };
      const encoded = encodeCommand(withRequester);
      const decoded = decodeCommand(encoded);
      assert.deepEqual(encodeCommand(decoded), encoded);
      assert.deepEqual(decoded.requester, requester);
      // Auth requests have no optional fields: they come back exactly as they went in (structuredClone
      // only gives fast-check's prototype-less records the ordinary prototype that decoded objects have).
      if (command.type.startsWith('user') || command.type.startsWith('role') || command.type.startsWith('auth')) assert.deepEqual(decoded, structuredClone(withRequester));
    }),
    { numRuns: 400 },
  );
});

test('log entries written before auth existed (format 1) are still read, as the member\'s own commands', () => {
  const current = encodeCommand({ type: 'put', request: { key: b('k'), value: b('v') } });
  // Format 1: the same, without the requester byte that follows the type.
  const formatOne = Uint8Array.of(1, current[1]!, ...current.subarray(3));
  assert.deepEqual(decodeCommand(formatOne), { type: 'put', request: { key: b('k'), value: b('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
  const authInFormatOne = Uint8Array.of(1, encodeCommand({ type: 'authEnable', request: {} })[1]!);
  assertKvError(() => decodeCommand(authInFormatOne), 'CONCORD_E_KV_COMMAND_INVALID');
});

test('damaged requesters and auth requests are refused as invalid commands', () => {
  const good = encodeCommand({ type: 'roleAdd', request: { role: 'x' }, requester: { kind: 'client', user: 'u', authRevision: 3 } });
  const refuse = (bytes: Uint8Array, pattern: RegExp) => assert.match(assertKvError(() => decodeCommand(bytes), 'CONCORD_E_KV_COMMAND_INVALID').message, pattern);
  refuse(Uint8Array.of(good[0]!, good[1]!, 9, ...good.subarray(3)), /unknown requester kind 9/);
  refuse(Uint8Array.of(...good.subarray(0, 4), 0xff, ...good.subarray(5)), /not valid UTF-8/);
  refuse(good.subarray(0, good.length - 1), /truncated/);
  const grant = encodeCommand({ type: 'roleGrantPermission', request: { role: 'x', permission: { permType: 'read', key: b('k'), rangeEnd: new Uint8Array(0) } } });
  const badType = grant.slice();
  badType[6] = 7; // type(1) version(1) requester(1) role(2) flag(1), then the permission type
  refuse(badType, /unknown permission type 7/);
});

test('snapshots carry the auth state: a restored member authorizes exactly as the one it came from', () => {
  const machine = enabledMachine();
  const restored = KvStateMachine.restore(machine.snapshot());
  assert.deepEqual(restored.auth.exportState(), machine.auth.exportState());
  assert.equal(restored.auth.enabled, true);
  refusedWith(restored, { type: 'put', request: { key: b('foo'), value: b('x') } }, as(restored, 'alice'), DENIED);
  assert.deepEqual(restored.captureSnapshot().finish(), restored.snapshot());
});

test('snapshots written before auth existed (format 1) are still read, with auth off and no users', () => {
  const machine = new KvStateMachine();
  machine.apply({ type: 'put', request: { key: b('a'), value: b('1') } }, 1);
  const current = machine.snapshot();
  // Format 1 is format 2 without the auth state, whose fresh encoding is 4 bytes: off, revision 1, no users, no roles.
  const body = current.subarray(0, current.length - 4);
  assert.deepEqual([...body.subarray(body.length - 4)], [0, 1, 0, 0]);
  const formatOneBody = body.slice(0, body.length - 4);
  formatOneBody[4] = 1;
  const formatOne = new Uint8Array(formatOneBody.length + 4);
  formatOne.set(formatOneBody);
  new DataView(formatOne.buffer).setUint32(formatOneBody.length, crc32c(formatOneBody));
  const state = decodeSnapshot(formatOne);
  assert.deepEqual(state.auth, { enabled: false, revision: 1, users: [], roles: [] });
  const restored = KvStateMachine.restore(formatOne);
  assert.equal(restored.range({ key: b('a') }).kvs.length, 1);
  assert.deepEqual(restored.snapshot(), current, 'the next snapshot is written in the current format');
});

test('a snapshot whose auth state breaks its invariants is refused', () => {
  const machine = enabledMachine();
  const bytes = machine.snapshot();
  const state = decodeSnapshot(bytes);
  const withoutRoot = { ...state, auth: { ...state.auth, users: state.auth.users.filter((user) => user.user !== 'root') } };
  assertKvError(() => KvStateMachine.restore(encodeSnapshot(withoutRoot)), 'CONCORD_E_KV_SNAPSHOT_INVALID');
});
