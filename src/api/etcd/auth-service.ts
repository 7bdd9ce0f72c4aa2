// etcd's Auth service over a Concord member: AuthEnable, AuthDisable, Authenticate, the User* and
// Role* calls. Changes are replicated commands, authorized when applied (the root role once auth is
// on, auth/auth-store.ts); reads (UserGet, UserList, RoleGet, RoleList) are answered from this
// member's state after a read barrier, with the same checks (etcd sends them through Raft; the
// barrier makes the answer just as current without a log entry per read).
//
// Passwords are hashed here, before proposing (password-hash.ts), and checked here on
// Authenticate, after a read barrier (etcd does the same: linearizableReadNotify, CheckPassword).
// Hashing is deliberately slow, so at most MAX_PASSWORD_WORK_IN_FLIGHT hashes run at once; more
// are refused with "too many requests" rather than queued without bound. Passwords and tokens are
// never logged and never put in an error message.

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { KvError } from '../../kv/errors.ts';
import type { AuthCommand, Permission, PermissionType, Requester } from '../../kv/auth/auth-types.ts';
import { ANONYMOUS_REQUESTER } from '../../kv/auth/auth-types.ts';
import type { KvCommandResponse } from '../../kv/types.ts';
import { MemberError } from '../../server/raft-member.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import { newToken, tokenDigest } from './auth-tokens.ts';
import { MAX_PASSWORD_BYTES, hashPassword, verifyAgainstDecoy, verifyPassword } from './password-hash.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { header, WireError } from './wire.ts';
import { unary } from './unary-handler.ts';

/** Password hashes or checks running at once (each takes tens of milliseconds on a worker thread). */
export const MAX_PASSWORD_WORK_IN_FLIGHT = 8;

const PERMISSION_TYPES: Record<string, PermissionType> = { READ: 'read', WRITE: 'write', READWRITE: 'readwrite', 0: 'read', 1: 'write', 2: 'readwrite' };
const PERMISSION_TYPE_NAMES: Record<PermissionType, string> = { read: 'READ', write: 'WRITE', readwrite: 'READWRITE' };

interface WirePermission {
  permType?: string | number;
  key?: Uint8Array;
  range_end?: Uint8Array;
}


/** Bounds the expensive password work: a call beyond the bound is refused at once. */
class PasswordWork {
  private inFlight = 0;

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight >= MAX_PASSWORD_WORK_IN_FLIGHT) {
      throw new MemberError('CONCORD_E_TOO_MANY_PENDING', `more than ${MAX_PASSWORD_WORK_IN_FLIGHT} password hashes or checks in flight; retry with backoff`);
    }
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
    }
  }
}

function checkPasswordLength(password: string): void {
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new KvError('CONCORD_E_AUTH_INPUT_TOO_LONG', `a password may have at most ${MAX_PASSWORD_BYTES} bytes`);
  }
}

export function authService(context: EtcdServiceContext, gate: AuthGate): UntypedServiceImplementation {
  const { backend, headers } = context;
  const passwords = new PasswordWork();

  const propose = async (command: AuthCommand, requester: Requester): Promise<KvCommandResponse> => {
    const response = await backend.write(command, requester);
    if (response.type !== command.type) throw new Error(`bug: a ${command.type} command answered with a ${response.type} response`);
    return response;
  };
  /** A change answered with just a header. */
  const change = async (command: AuthCommand, caller: CallIdentity) => {
    const { response } = await propose(command, gate.requester(caller));
    return { header: header(headers, response.header.revision) };
  };
  /** A read answered from this member once it has applied everything committed before the call. */
  const read = async <T>(caller: CallIdentity, answer: (requester: Requester) => T) => {
    await backend.readBarrier();
    const body = answer(gate.requester(caller));
    return { header: header(headers, context.stateMachine().currentRevision), ...body };
  };
  /** Hashes a new password, once the caller is known to be allowed to set it (hashing is costly). */
  const hashFor = async (requester: Requester, password: string): Promise<Uint8Array> => {
    gate.store.checkAdmin(requester);
    checkPasswordLength(password);
    return passwords.run(() => hashPassword(password));
  };

  return {
    AuthEnable: unary(async (_wire: object, caller) => change({ type: 'authEnable', request: {} }, caller)),
    AuthDisable: unary(async (_wire: object, caller) => change({ type: 'authDisable', request: {} }, caller)),

    Authenticate: unary(async (wire: { name?: string; password?: string }) => {
      const user = wire.name ?? '';
      const password = wire.password ?? '';
      await backend.readBarrier();
      const credentialRevision = await passwords.run(() => checkPassword(gate, user, password));
      const token = newToken();
      const command: AuthCommand = { type: 'authenticate', request: { user, tokenDigest: tokenDigest(token), credentialRevision } };
      const { response } = await propose(command, ANONYMOUS_REQUESTER);
      return { header: header(headers, response.header.revision), token };
    }),

    UserAdd: unary(async (wire: { name?: string; password?: string; options?: { no_password?: boolean } | null }, caller) => {
      const requester = gate.requester(caller);
      const noPassword = wire.options?.no_password ?? false;
      const passwordHash = noPassword ? new Uint8Array(0) : await hashFor(requester, wire.password ?? '');
      const { response } = await propose({ type: 'userAdd', request: { user: wire.name ?? '', passwordHash, noPassword } }, requester);
      return { header: header(headers, response.header.revision) };
    }),
    UserGet: unary(async (wire: { name?: string }, caller) => read(caller, (requester) => ({ roles: [...gate.store.userRoles(requester, wire.name ?? '')] }))),
    UserList: unary(async (_wire: object, caller) => read(caller, (requester) => ({ users: gate.store.userNames(requester) }))),
    UserDelete: unary(async (wire: { name?: string }, caller) => change({ type: 'userDelete', request: { user: wire.name ?? '' } }, caller)),
    UserChangePassword: unary(async (wire: { name?: string; password?: string }, caller) => {
      const requester = gate.requester(caller);
      const passwordHash = await hashFor(requester, wire.password ?? '');
      const { response } = await propose({ type: 'userChangePassword', request: { user: wire.name ?? '', passwordHash } }, requester);
      return { header: header(headers, response.header.revision) };
    }),
    UserGrantRole: unary(async (wire: { user?: string; role?: string }, caller) =>
      change({ type: 'userGrantRole', request: { user: wire.user ?? '', role: wire.role ?? '' } }, caller)),
    UserRevokeRole: unary(async (wire: { name?: string; role?: string }, caller) =>
      change({ type: 'userRevokeRole', request: { user: wire.name ?? '', role: wire.role ?? '' } }, caller)),

    RoleAdd: unary(async (wire: { name?: string }, caller) => change({ type: 'roleAdd', request: { role: wire.name ?? '' } }, caller)),
    RoleGet: unary(async (wire: { role?: string }, caller) =>
      read(caller, (requester) => ({ perm: gate.store.rolePermissions(requester, wire.role ?? '').map(permissionToWire) }))),
    RoleList: unary(async (_wire: object, caller) => read(caller, (requester) => ({ roles: gate.store.roleNames(requester) }))),
    RoleDelete: unary(async (wire: { role?: string }, caller) => change({ type: 'roleDelete', request: { role: wire.role ?? '' } }, caller)),
    RoleGrantPermission: unary(async (wire: { name?: string; perm?: WirePermission | null }, caller) => {
      const permission = wire.perm === null || wire.perm === undefined ? undefined : permissionFromWire(wire.perm);
      return change({ type: 'roleGrantPermission', request: { role: wire.name ?? '', ...(permission ? { permission } : {}) } }, caller);
    }),
    RoleRevokePermission: unary(async (wire: { role?: string; key?: Uint8Array; range_end?: Uint8Array }, caller) =>
      change({ type: 'roleRevokePermission', request: { role: wire.role ?? '', key: wire.key ?? new Uint8Array(0), rangeEnd: wire.range_end ?? new Uint8Array(0) } }, caller)),
  };
}

/**
 * etcd's CheckPassword, in its order: auth must be on; an unknown user fails (after the same work
 * as a wrong password); a no-password user is refused with its own error; then the password.
 * Returns the credential revision that was checked, which the Authenticate command carries.
 */
async function checkPassword(gate: AuthGate, name: string, password: string): Promise<number> {
  const store = gate.store;
  if (!store.enabled) throw new KvError('CONCORD_E_AUTH_NOT_ENABLED');
  const user = store.user(name);
  if (user?.noPassword === true) throw new KvError('CONCORD_E_AUTH_NO_PASSWORD_USER');
  const tooLong = Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES;
  const matches = user === undefined || tooLong ? await verifyAgainstDecoy(password.slice(0, MAX_PASSWORD_BYTES)) : await verifyPassword(password, user.passwordHash);
  if (!matches) throw new KvError('CONCORD_E_AUTH_FAILED');
  return user!.credentialRevision;
}

function permissionFromWire(wire: WirePermission): Permission {
  const permType = PERMISSION_TYPES[String(wire.permType ?? 'READ')];
  if (permType === undefined) throw new WireError(`perm.permType '${String(wire.permType)}' is not one of READ, WRITE, READWRITE`);
  return { permType, key: wire.key ?? new Uint8Array(0), rangeEnd: wire.range_end ?? new Uint8Array(0) };
}

function permissionToWire(permission: Permission) {
  return { permType: PERMISSION_TYPE_NAMES[permission.permType], key: Buffer.from(permission.key), range_end: Buffer.from(permission.rangeEnd) };
}
