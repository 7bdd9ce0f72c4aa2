// etcd's auth store as replicated state: each command's checks, their order and errors (etcd 3.4's
// texts, checked against a real etcd by the compatibility suite), the root rules, the auth
// revision, the reads' own checks, and the limits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthStore, INITIAL_AUTH_REVISION } from '../../src/kv/auth/auth-store.ts';
import type { AuthCommand, Permission, Requester } from '../../src/kv/auth/auth-types.ts';
import { ANONYMOUS_REQUESTER, MEMBER_REQUESTER, compareNames } from '../../src/kv/auth/auth-types.ts';
import type { KvErrorCode } from '../../src/kv/errors.ts';
import { assertKvError, b } from './helpers.ts';

const HEADER = { revision: 7 };
const HASH = new Uint8Array([1, 2, 3]);

function as(store: AuthStore, user: string): Requester {
  return { kind: 'client', user, authRevision: store.revision };
}

function apply(store: AuthStore, command: AuthCommand, requester: Requester = MEMBER_REQUESTER): void {
  store.apply(command, requester, HEADER);
}

function refused(store: AuthStore, command: AuthCommand, code: KvErrorCode, requester: Requester = MEMBER_REQUESTER): void {
  const before = store.exportState();
  assertKvError(() => store.apply(command, requester, HEADER), code);
  assert.deepEqual(store.exportState(), before, `a refused ${command.type} changes nothing`);
}

const addUser = (user: string): AuthCommand => ({ type: 'userAdd', request: { user, passwordHash: HASH, noPassword: false } });
const addRole = (role: string): AuthCommand => ({ type: 'roleAdd', request: { role } });
const grantRole = (user: string, role: string): AuthCommand => ({ type: 'userGrantRole', request: { user, role } });
const grant = (role: string, permission: Permission): AuthCommand => ({ type: 'roleGrantPermission', request: { role, permission } });
const perm = (permType: Permission['permType'], key: string, rangeEnd = ''): Permission => ({
  permType, key: key === '\0' ? new Uint8Array([0]) : b(key), rangeEnd: rangeEnd === '\0' ? new Uint8Array([0]) : b(rangeEnd),
});

/** root (with the root role), alice (role reader: read foo, readwrite [r/1, r/5)), auth enabled. */
function enabledStore(): AuthStore {
  const store = new AuthStore();
  apply(store, addUser('root'));
  apply(store, grantRole('root', 'root'));
  apply(store, addUser('alice'));
  apply(store, addRole('reader'));
  apply(store, grant('reader', perm('read', 'foo')));
  apply(store, grant('reader', perm('readwrite', 'r/1', 'r/5')));
  apply(store, grantRole('alice', 'reader'));
  apply(store, { type: 'authEnable', request: {} });
  return store;
}

test('a fresh store: auth off at revision 1, and with auth off everyone may do anything', () => {
  const store = new AuthStore();
  assert.equal(store.enabled, false);
  assert.equal(store.revision, INITIAL_AUTH_REVISION);
  store.checkRead(ANONYMOUS_REQUESTER, b('any'));
  store.checkWrite(ANONYMOUS_REQUESTER, b('a'), b('z'));
  store.checkAdmin(ANONYMOUS_REQUESTER);
  apply(store, addUser('bob'), ANONYMOUS_REQUESTER);
  assert.deepEqual(store.userNames(ANONYMOUS_REQUESTER), ['bob']);
});

test('auth enable needs the root user, holding the root role (which need not exist as a role)', () => {
  const store = new AuthStore();
  refused(store, { type: 'authEnable', request: {} }, 'CONCORD_E_AUTH_ROOT_USER_NOT_EXIST');
  apply(store, addUser('root'));
  refused(store, { type: 'authEnable', request: {} }, 'CONCORD_E_AUTH_ROOT_ROLE_NOT_EXIST');
  apply(store, grantRole('root', 'root'));
  const revision = store.revision;
  apply(store, { type: 'authEnable', request: {} });
  assert.equal(store.enabled, true);
  assert.equal(store.revision, revision, 'enabling does not move the auth revision (etcd 3.4)');
  apply(store, { type: 'authEnable', request: {} }, as(store, 'root'));
  assert.equal(store.revision, revision, 'enabling again is a no-op');
});

test('every change needs the root role once auth is on; anonymous callers get "user name is empty"', () => {
  const store = enabledStore();
  refused(store, addUser('eve'), 'CONCORD_E_AUTH_USER_EMPTY', ANONYMOUS_REQUESTER);
  refused(store, addUser('eve'), 'CONCORD_E_AUTH_PERMISSION_DENIED', as(store, 'alice'));
  refused(store, addUser('eve'), 'CONCORD_E_AUTH_USER_NOT_FOUND', as(store, 'ghost'));
  refused(store, { type: 'authEnable', request: {} }, 'CONCORD_E_AUTH_PERMISSION_DENIED', as(store, 'alice'));
  refused(store, { type: 'authDisable', request: {} }, 'CONCORD_E_AUTH_USER_EMPTY', ANONYMOUS_REQUESTER);
  apply(store, addUser('eve'), as(store, 'root'));
  assert.ok(store.user('eve'));
});

test('users: add, delete, change password, with etcd\'s errors; every change moves the auth revision', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  let revision = store.revision;
  const moved = () => {
    assert.equal(store.revision, revision + 1);
    revision = store.revision;
  };
  refused(store, addUser(''), 'CONCORD_E_AUTH_USER_EMPTY', root);
  refused(store, addUser('alice'), 'CONCORD_E_AUTH_USER_EXISTS', root);
  apply(store, { type: 'userAdd', request: { user: 'cn-user', passwordHash: HASH, noPassword: true } }, root);
  moved();
  assert.deepEqual(store.user('cn-user')!.passwordHash, new Uint8Array(0), 'a no-password user keeps no hash');
  const aliceBefore = store.user('alice')!;
  apply(store, { type: 'userChangePassword', request: { user: 'alice', passwordHash: new Uint8Array([9]) } }, root);
  moved();
  assert.deepEqual(store.user('alice')!.passwordHash, new Uint8Array([9]));
  assert.ok(store.user('alice')!.credentialRevision > aliceBefore.credentialRevision, 'a new password ends the old tokens');
  assert.deepEqual(store.user('alice')!.roles, aliceBefore.roles);
  refused(store, { type: 'userChangePassword', request: { user: 'ghost', passwordHash: HASH } }, 'CONCORD_E_AUTH_USER_NOT_FOUND', root);
  refused(store, { type: 'userDelete', request: { user: 'ghost' } }, 'CONCORD_E_AUTH_USER_NOT_FOUND', root);
  apply(store, { type: 'userDelete', request: { user: 'cn-user' } }, root);
  moved();
  assert.equal(store.user('cn-user'), undefined);
});

test('roles: add, grant to users (sorted, idempotent), revoke, delete (taken from every user)', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  refused(store, addRole(''), 'CONCORD_E_AUTH_ROLE_EMPTY', root);
  refused(store, addRole('reader'), 'CONCORD_E_AUTH_ROLE_EXISTS', root);
  apply(store, addRole('b-role'), root);
  apply(store, addRole('a-role'), root);
  apply(store, grantRole('alice', 'b-role'), root);
  apply(store, grantRole('alice', 'a-role'), root);
  assert.deepEqual(store.user('alice')!.roles, ['a-role', 'b-role', 'reader']);
  const revision = store.revision;
  apply(store, grantRole('alice', 'a-role'), root);
  assert.equal(store.revision, revision, 'granting a role again changes nothing');
  refused(store, grantRole('ghost', 'a-role'), 'CONCORD_E_AUTH_USER_NOT_FOUND', root);
  refused(store, grantRole('alice', 'ghost-role'), 'CONCORD_E_AUTH_ROLE_NOT_FOUND', root);
  refused(store, { type: 'userRevokeRole', request: { user: 'root', role: 'reader' } }, 'CONCORD_E_AUTH_ROLE_NOT_GRANTED', root);
  refused(store, { type: 'userRevokeRole', request: { user: 'ghost', role: 'reader' } }, 'CONCORD_E_AUTH_USER_NOT_FOUND', root);
  apply(store, { type: 'userRevokeRole', request: { user: 'alice', role: 'b-role' } }, root);
  assert.deepEqual(store.user('alice')!.roles, ['a-role', 'reader']);
  apply(store, { type: 'roleDelete', request: { role: 'a-role' } }, root);
  assert.deepEqual(store.user('alice')!.roles, ['reader'], 'a deleted role is taken from its users (etcd 3.4.23)');
  refused(store, { type: 'roleDelete', request: { role: 'a-role' } }, 'CONCORD_E_AUTH_ROLE_NOT_FOUND', root);
  assert.deepEqual(store.roleNames(root), ['b-role', 'reader']);
});

test('the root user and role cannot be removed while auth is on, and can once it is off', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  apply(store, addRole('root'), root);
  refused(store, { type: 'userDelete', request: { user: 'root' } }, 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  refused(store, { type: 'userRevokeRole', request: { user: 'root', role: 'root' } }, 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  refused(store, { type: 'roleDelete', request: { role: 'root' } }, 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  const revision = store.revision;
  apply(store, { type: 'authDisable', request: {} }, root);
  assert.equal(store.enabled, false);
  assert.equal(store.revision, revision + 1, 'disabling moves the auth revision');
  apply(store, { type: 'authDisable', request: {} });
  assert.equal(store.revision, revision + 1, 'disabling again is a no-op');
  apply(store, { type: 'userRevokeRole', request: { user: 'root', role: 'root' } });
  apply(store, { type: 'roleDelete', request: { role: 'root' } });
  apply(store, { type: 'userDelete', request: { user: 'root' } });
  assert.equal(store.user('root'), undefined);
});

test('permissions: sorted by key, a repeated range updates its type, revoke needs the exact range', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  apply(store, addRole('p'), root);
  apply(store, grant('p', perm('write', 'z')), root);
  apply(store, grant('p', perm('read', 'a/', 'a0')), root);
  apply(store, grant('p', perm('read', 'm', '\0')), root);
  apply(store, grant('p', perm('readwrite', 'a/', 'a0')), root);
  assert.deepEqual(store.rolePermissions(root, 'p'), [perm('readwrite', 'a/', 'a0'), perm('read', 'm', '\0'), perm('write', 'z')]);
  refused(store, { type: 'roleRevokePermission', request: { role: 'p', key: b('a/'), rangeEnd: new Uint8Array(0) } }, 'CONCORD_E_AUTH_PERMISSION_NOT_GRANTED', root);
  refused(store, { type: 'roleRevokePermission', request: { role: 'ghost', key: b('z'), rangeEnd: new Uint8Array(0) } }, 'CONCORD_E_AUTH_ROLE_NOT_FOUND', root);
  apply(store, { type: 'roleRevokePermission', request: { role: 'p', key: b('a/'), rangeEnd: b('a0') } }, root);
  assert.deepEqual(store.rolePermissions(root, 'p'), [perm('read', 'm', '\0'), perm('write', 'z')]);
});

test('a grant without a permission, with an empty key or an inverted range is refused (etcd 3.5 rules; 3.4 crashed or stored it)', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  refused(store, { type: 'roleGrantPermission', request: { role: 'reader' } }, 'CONCORD_E_AUTH_PERMISSION_NOT_GIVEN', root);
  refused(store, grant('reader', perm('read', '')), 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  refused(store, grant('reader', perm('read', 'z', 'a')), 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  refused(store, grant('reader', perm('read', 'a', 'a')), 'CONCORD_E_AUTH_INVALID_MANAGEMENT', root);
  refused(store, grant('ghost', perm('read', 'a')), 'CONCORD_E_AUTH_ROLE_NOT_FOUND', root);
});

test('key permissions: a single key, a range, a prefix, "from key" and "all keys", read and write apart', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  apply(store, addUser('bob'), root);
  apply(store, addRole('mixed'), root);
  apply(store, grantRole('bob', 'mixed'), root);
  apply(store, grant('mixed', perm('read', 'k')), root);
  apply(store, grant('mixed', perm('read', 'p/', 'p0')), root);
  apply(store, grant('mixed', perm('write', 'w', '\0')), root);
  const bob = as(store, 'bob');
  const denied = (check: () => void) => assertKvError(check, 'CONCORD_E_AUTH_PERMISSION_DENIED', 'etcdserver: permission denied');
  store.checkRead(bob, b('k'));
  denied(() => store.checkRead(bob, b('k2')));
  denied(() => store.checkRead(bob, b('k'), b('l')));
  denied(() => store.checkWrite(bob, b('k')));
  store.checkRead(bob, b('p/x'));
  store.checkRead(bob, b('p/'), b('p0'));
  store.checkRead(bob, b('p/a'), b('p/b'));
  denied(() => store.checkRead(bob, b('p'), b('p0')));
  denied(() => store.checkRead(bob, b('p/'), new Uint8Array([0])));
  store.checkWrite(bob, b('zzz'));
  store.checkWrite(bob, b('w'), new Uint8Array([0]));
  denied(() => store.checkWrite(bob, b('v'), new Uint8Array([0])));
  denied(() => store.checkRead(bob, b('w')));
  apply(store, grant('mixed', perm('readwrite', '\0', '\0')), root);
  const bobNow = as(store, 'bob');
  store.checkRead(bobNow, new Uint8Array([0]), new Uint8Array([0]));
  store.checkWrite(bobNow, b('anything'));
});

test('permission checks follow etcd\'s order: no user, an old auth revision, an unknown user, the root role', () => {
  const store = enabledStore();
  assertKvError(() => store.checkRead(ANONYMOUS_REQUESTER, b('foo')), 'CONCORD_E_AUTH_USER_EMPTY', 'etcdserver: user name is empty');
  const stale = as(store, 'alice');
  apply(store, addRole('later'), as(store, 'root'));
  assertKvError(() => store.checkRead(stale, b('foo')), 'CONCORD_E_AUTH_OLD_REVISION', 'etcdserver: revision of auth store is old');
  assertKvError(() => store.checkRead(as(store, 'ghost'), b('foo')), 'CONCORD_E_AUTH_PERMISSION_DENIED');
  store.checkWrite(as(store, 'root'), b('anything'), new Uint8Array([0]));
  store.checkWrite(MEMBER_REQUESTER, b('anything'));
});

test('a grant or revoke takes effect on the next check (the merged permissions are not stale)', () => {
  const store = enabledStore();
  const root = as(store, 'root');
  assertKvError(() => store.checkRead(as(store, 'alice'), b('new')), 'CONCORD_E_AUTH_PERMISSION_DENIED');
  apply(store, grant('reader', perm('read', 'new')), root);
  store.checkRead(as(store, 'alice'), b('new'));
  apply(store, { type: 'userRevokeRole', request: { user: 'alice', role: 'reader' } }, root);
  assertKvError(() => store.checkRead(as(store, 'alice'), b('new')), 'CONCORD_E_AUTH_PERMISSION_DENIED');
});

test('reads: a user may get itself and the roles it holds; lists need the root role', () => {
  const store = enabledStore();
  const alice = as(store, 'alice');
  assert.deepEqual(store.userRoles(alice, 'alice'), ['reader']);
  assertKvError(() => store.userRoles(alice, 'root'), 'CONCORD_E_AUTH_PERMISSION_DENIED');
  assert.deepEqual(store.rolePermissions(alice, 'reader').length, 2);
  apply(store, addRole('other'), as(store, 'root'));
  assertKvError(() => store.rolePermissions(as(store, 'alice'), 'other'), 'CONCORD_E_AUTH_PERMISSION_DENIED');
  assertKvError(() => store.userNames(as(store, 'alice')), 'CONCORD_E_AUTH_PERMISSION_DENIED');
  assertKvError(() => store.roleNames(ANONYMOUS_REQUESTER), 'CONCORD_E_AUTH_USER_EMPTY');
  assertKvError(() => store.userRoles(as(store, 'root'), 'ghost'), 'CONCORD_E_AUTH_USER_NOT_FOUND', 'etcdserver: user name not found');
  assertKvError(() => store.rolePermissions(as(store, 'root'), 'ghost'), 'CONCORD_E_AUTH_ROLE_NOT_FOUND', 'etcdserver: role name not found');
  assert.deepEqual(store.userNames(as(store, 'root')), ['alice', 'root']);
});

test('authenticate: auth must be on, the user must exist with a password, and its password unchanged since it was checked', () => {
  const store = new AuthStore();
  apply(store, addUser('root'));
  apply(store, grantRole('root', 'root'));
  const digest = new Uint8Array(32).fill(7);
  const authenticate = (user: string, credentialRevision: number): AuthCommand => ({ type: 'authenticate', request: { user, tokenDigest: digest, credentialRevision } });
  refused(store, authenticate('root', store.user('root')!.credentialRevision), 'CONCORD_E_AUTH_NOT_ENABLED', ANONYMOUS_REQUESTER);
  apply(store, { type: 'userAdd', request: { user: 'cn', passwordHash: new Uint8Array(0), noPassword: true } });
  apply(store, { type: 'authEnable', request: {} });
  refused(store, authenticate('ghost', 1), 'CONCORD_E_AUTH_FAILED', ANONYMOUS_REQUESTER);
  refused(store, authenticate('cn', store.user('cn')!.credentialRevision), 'CONCORD_E_AUTH_FAILED', ANONYMOUS_REQUESTER);
  refused(store, authenticate('root', store.user('root')!.credentialRevision - 1), 'CONCORD_E_AUTH_FAILED', ANONYMOUS_REQUESTER);
  const revision = store.revision;
  const answer = store.apply(authenticate('root', store.user('root')!.credentialRevision), ANONYMOUS_REQUESTER, HEADER);
  assert.deepEqual(answer, { type: 'authenticate', response: { header: HEADER, user: 'root', tokenDigest: digest, credentialRevision: store.user('root')!.credentialRevision } });
  assert.equal(store.revision, revision, 'authenticating changes no auth state');
});

test('limits: users, roles, permissions per role, roles per user and name length, each named in its error', () => {
  const store = new AuthStore({ maxUsers: 2, maxRoles: 2, maxPermissionsPerRole: 2, maxRolesPerUser: 1, maxNameBytes: 8 });
  apply(store, addUser('u1'));
  apply(store, addUser('u2'));
  assert.match(assertKvError(() => store.apply(addUser('u3'), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_LIMIT').message, /maxUsers 2/);
  apply(store, addRole('r1'));
  apply(store, addRole('r2'));
  assert.match(assertKvError(() => store.apply(addRole('r3'), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_LIMIT').message, /maxRoles 2/);
  apply(store, grant('r1', perm('read', 'a')));
  apply(store, grant('r1', perm('read', 'b')));
  apply(store, grant('r1', perm('write', 'b')), MEMBER_REQUESTER);
  assert.match(assertKvError(() => store.apply(grant('r1', perm('read', 'c')), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_LIMIT').message, /maxPermissionsPerRole 2/);
  apply(store, grantRole('u1', 'r1'));
  assert.match(assertKvError(() => store.apply(grantRole('u1', 'r2'), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_LIMIT').message, /maxRolesPerUser 1/);
  apply(store, { type: 'userDelete', request: { user: 'u2' } });
  assert.match(assertKvError(() => store.apply(addUser('ÿÿÿÿÿ'), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_INPUT_TOO_LONG').message, /10 bytes, at most maxNameBytes 8/);
  assert.match(assertKvError(() => store.apply(addRole('r'.repeat(9)), MEMBER_REQUESTER, HEADER), 'CONCORD_E_AUTH_INPUT_TOO_LONG').message, /role name of 9 bytes/);
});

test('names sort by code point, as etcd sorts their UTF-8 bytes (not by UTF-16 units)', () => {
  const names = ['b', 'a', '\u{1F600}', '\uFFFD', 'ab', ''];
  assert.deepEqual([...names].sort(compareNames), ['', 'a', 'ab', 'b', '\uFFFD', '\u{1F600}']);
  const bytes = (name: string) => Buffer.from(name, 'utf8');
  assert.deepEqual([...names].sort(compareNames), [...names].sort((x, y) => Buffer.compare(bytes(x), bytes(y))));
});

test('state round trip: a store rebuilt from its exported state answers the same, and damaged state is refused', () => {
  const store = enabledStore();
  const copy = AuthStore.fromState(store.exportState());
  assert.deepEqual(copy.exportState(), store.exportState());
  copy.checkRead(as(copy, 'alice'), b('foo'));
  const state = store.exportState();
  assertKvError(() => AuthStore.fromState({ ...state, users: [...state.users].reverse() }), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  assertKvError(() => AuthStore.fromState({ ...state, revision: 0 }), 'CONCORD_E_KV_SNAPSHOT_INVALID');
  assertKvError(() => AuthStore.fromState({ ...state, users: state.users.filter((user) => user.user !== 'root') }), 'CONCORD_E_KV_SNAPSHOT_INVALID');
});
