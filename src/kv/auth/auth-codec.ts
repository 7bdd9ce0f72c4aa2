// The binary form of everything auth puts in the Raft log and in snapshots, in the encoding of
// binary.ts: who asked for a command, the auth commands' requests, and the auth state. Names are
// UTF-8; a name that is not valid UTF-8 is refused on the way in (it cannot have been written by us).

import type { AuthCommand, AuthRole, AuthState, AuthUser, Permission, Requester } from './auth-types.ts';
import { PERMISSION_TYPES } from './auth-types.ts';
import type { ByteReader, ByteWriter } from '../binary.ts';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

const REQUESTER_MEMBER = 0;
const REQUESTER_CLIENT = 1;

export function writeName(writer: ByteWriter, name: string): void {
  writer.bytes(utf8Encoder.encode(name));
}

export function readName(reader: ByteReader, what: string, fail: (detail: string) => Error): string {
  const bytes = reader.bytes(what);
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw fail(`${what} is not valid UTF-8`);
  }
}

export function writeRequester(writer: ByteWriter, requester: Requester): void {
  if (requester.kind === 'member') {
    writer.u8(REQUESTER_MEMBER);
    return;
  }
  writer.u8(REQUESTER_CLIENT);
  writeName(writer, requester.user);
  writer.uvarint(requester.authRevision);
}

export function readRequester(reader: ByteReader, fail: (detail: string) => Error): Requester {
  const kind = reader.u8('requester kind');
  if (kind === REQUESTER_MEMBER) return { kind: 'member' };
  if (kind !== REQUESTER_CLIENT) throw fail(`unknown requester kind ${kind}`);
  return { kind: 'client', user: readName(reader, 'requester user', fail), authRevision: reader.uvarint('requester auth revision') };
}

function writePermission(writer: ByteWriter, permission: Permission): void {
  writer.u8(PERMISSION_TYPES.indexOf(permission.permType));
  writer.bytes(permission.key);
  writer.bytes(permission.rangeEnd);
}

function readPermission(reader: ByteReader, fail: (detail: string) => Error): Permission {
  const code = reader.u8('permission type');
  const permType = PERMISSION_TYPES[code];
  if (permType === undefined) throw fail(`unknown permission type ${code}`);
  return { permType, key: reader.bytes('permission key'), rangeEnd: reader.bytes('permission range end') };
}

/** The request of an auth command, in a fixed field order per type. */
export function writeAuthRequest(writer: ByteWriter, command: AuthCommand): void {
  switch (command.type) {
    case 'authEnable':
    case 'authDisable':
      return;
    case 'authenticate':
      writeName(writer, command.request.user);
      writer.bytes(command.request.tokenDigest);
      writer.uvarint(command.request.credentialRevision);
      return;
    case 'userAdd':
      writeName(writer, command.request.user);
      writer.bytes(command.request.passwordHash);
      writer.bool(command.request.noPassword);
      return;
    case 'userDelete':
      return writeName(writer, command.request.user);
    case 'userChangePassword':
      writeName(writer, command.request.user);
      writer.bytes(command.request.passwordHash);
      return;
    case 'userGrantRole':
    case 'userRevokeRole':
      writeName(writer, command.request.user);
      writeName(writer, command.request.role);
      return;
    case 'roleAdd':
    case 'roleDelete':
      return writeName(writer, command.request.role);
    case 'roleGrantPermission':
      writeName(writer, command.request.role);
      writer.bool(command.request.permission !== undefined);
      if (command.request.permission !== undefined) writePermission(writer, command.request.permission);
      return;
    case 'roleRevokePermission':
      writeName(writer, command.request.role);
      writer.bytes(command.request.key);
      writer.bytes(command.request.rangeEnd);
      return;
  }
}

export function readAuthRequest(reader: ByteReader, type: AuthCommand['type'], fail: (detail: string) => Error): AuthCommand {
  const name = (what: string) => readName(reader, what, fail);
  switch (type) {
    case 'authEnable':
    case 'authDisable':
      return { type, request: {} };
    case 'authenticate':
      return { type, request: { user: name('user'), tokenDigest: reader.bytes('token digest'), credentialRevision: reader.uvarint('credential revision') } };
    case 'userAdd':
      return { type, request: { user: name('user'), passwordHash: reader.bytes('password hash'), noPassword: reader.bool('no password') } };
    case 'userDelete':
      return { type, request: { user: name('user') } };
    case 'userChangePassword':
      return { type, request: { user: name('user'), passwordHash: reader.bytes('password hash') } };
    case 'userGrantRole':
    case 'userRevokeRole':
      return { type, request: { user: name('user'), role: name('role') } };
    case 'roleAdd':
    case 'roleDelete':
      return { type, request: { role: name('role') } };
    case 'roleGrantPermission': {
      const role = name('role');
      return reader.bool('permission given') ? { type, request: { role, permission: readPermission(reader, fail) } } : { type, request: { role } };
    }
    case 'roleRevokePermission':
      return { type, request: { role: name('role'), key: reader.bytes('key'), rangeEnd: reader.bytes('range end') } };
  }
}

// --- the auth state in snapshots ----------------------------------------------------------------

export function writeAuthState(writer: ByteWriter, state: AuthState): void {
  writer.bool(state.enabled);
  writer.uvarint(state.revision);
  writer.uvarint(state.users.length);
  for (const user of state.users) {
    writeName(writer, user.user);
    writer.bytes(user.passwordHash);
    writer.bool(user.noPassword);
    writer.uvarint(user.credentialRevision);
    writer.uvarint(user.roles.length);
    for (const role of user.roles) writeName(writer, role);
  }
  writer.uvarint(state.roles.length);
  for (const role of state.roles) {
    writeName(writer, role.role);
    writer.uvarint(role.permissions.length);
    for (const permission of role.permissions) writePermission(writer, permission);
  }
}

export function readAuthState(reader: ByteReader, fail: (detail: string) => Error): AuthState {
  const enabled = reader.bool('auth enabled');
  const revision = reader.uvarint('auth revision');
  const users = readCounted(reader, 'user count', fail, (): AuthUser => {
    const user = readName(reader, 'user', fail);
    const passwordHash = reader.bytes('password hash');
    const noPassword = reader.bool('no password');
    const credentialRevision = reader.uvarint('credential revision');
    const roles = readCounted(reader, 'user role count', fail, () => readName(reader, 'user role', fail));
    return { user, passwordHash, noPassword, credentialRevision, roles };
  });
  const roles = readCounted(reader, 'role count', fail, (): AuthRole => {
    const role = readName(reader, 'role', fail);
    const permissions = readCounted(reader, 'permission count', fail, () => readPermission(reader, fail));
    return { role, permissions };
  });
  return { enabled, revision, users, roles };
}

/** A count larger than the bytes left cannot be honest; refuse it before allocating. */
function readCounted<T>(reader: ByteReader, what: string, fail: (detail: string) => Error, readItem: () => T): T[] {
  const count = reader.uvarint(what);
  if (count > reader.remainingBytes) throw fail(`${what} ${count} exceeds the ${reader.remainingBytes} bytes left`);
  const items: T[] = [];
  for (let i = 0; i < count; i++) items.push(readItem());
  return items;
}
