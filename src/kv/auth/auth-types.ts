// The vocabulary of etcd's authentication and authorization (api/authpb/auth.proto and the Auth
// messages of etcdserverpb/rpc.proto), as the replicated state machine sees it.
//
// One name per concept: a user's name is `user` and a role's name is `role` in every request here,
// where etcd's messages alternate between `name`, `user` and `role`; the gRPC layer maps them.
// Keys are bytes, names are strings (etcd's are proto strings, so UTF-8 on the wire).

import type { ResponseHeader } from '../types.ts';

/** Who asked for a command: a client of the etcd API, or the member itself. */
export type Requester =
  /**
   * A client. `user` is empty when the client sent no token (or auth was off where it was served);
   * `authRevision` is the auth revision of the member that checked the token, 0 without a user.
   * Permission checks at apply refuse a request whose authRevision is older than the store's
   * (etcd's optimistic check against a role or user that changed in between).
   */
  | { kind: 'client'; user: string; authRevision: number }
  /**
   * The member itself: lease expiry decided by the leader, auto-compaction (etcd runs these with a
   * root token, WithRoot). Never built from a client's request.
   */
  | { kind: 'member' };

export const MEMBER_REQUESTER: Requester = { kind: 'member' };
export const ANONYMOUS_REQUESTER: Requester = { kind: 'client', user: '', authRevision: 0 };

/** authpb.Permission.Type, in proto order (READ = 0, WRITE = 1, READWRITE = 2). */
export type PermissionType = 'read' | 'write' | 'readwrite';
export const PERMISSION_TYPES: readonly PermissionType[] = ['read', 'write', 'readwrite'];

/**
 * A key-range permission of a role, with etcd's (key, rangeEnd) convention: an empty rangeEnd is the
 * single key `key`; a rangeEnd of one zero byte is every key from `key` on; anything else is
 * [key, rangeEnd). etcdctl grants "all keys" as key = rangeEnd = one zero byte.
 */
export interface Permission {
  permType: PermissionType;
  key: Uint8Array;
  rangeEnd: Uint8Array;
}

/** The name etcd reserves for the administrator user and role. */
export const ROOT = 'root';

export interface AuthUser {
  readonly user: string;
  /**
   * Opaque to the state machine: the shell hashes passwords before proposing them (a salted,
   * memory-hard hash; see api/etcd/password-hash.ts) and verifies them before Authenticate.
   * Empty for a user created with no_password.
   */
  readonly passwordHash: Uint8Array;
  /** etcd's UserAddOptions.no_password: the user cannot authenticate with a password at all. */
  readonly noPassword: boolean;
  /** Sorted by name (code point order, which is UTF-8 byte order, as etcd sorts them). */
  readonly roles: readonly string[];
  /**
   * The auth revision at which this user's password was last set (creation included). A token is
   * valid only while it matches: a password change or a delete-and-recreate ends the user's tokens.
   */
  readonly credentialRevision: number;
}

export interface AuthRole {
  readonly role: string;
  /** Sorted by key, then rangeEnd (bytes); no two with the same key and rangeEnd. */
  readonly permissions: readonly Permission[];
}

/** The replicated auth state, as snapshots carry it. Records are never changed in place. */
export interface AuthState {
  enabled: boolean;
  /** etcd's auth revision: 1 in a fresh store, +1 on every change of users, roles or permissions, and on disable. */
  revision: number;
  /** Sorted by name. */
  users: AuthUser[];
  /** Sorted by name. */
  roles: AuthRole[];
}

/** Bounds on the replicated auth state. Like maxTxnOps, they must be the same on every member. */
export interface AuthLimits {
  maxUsers: number;
  maxRoles: number;
  maxPermissionsPerRole: number;
  maxRolesPerUser: number;
  /** UTF-8 bytes of a user or role name. */
  maxNameBytes: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = {
  maxUsers: 10_000,
  maxRoles: 10_000,
  maxPermissionsPerRole: 1_000,
  maxRolesPerUser: 1_000,
  maxNameBytes: 4_096,
};

// --- replicated commands ------------------------------------------------------------------------

export interface UserAddRequest {
  user: string;
  /** Empty when noPassword. */
  passwordHash: Uint8Array;
  noPassword: boolean;
}

export interface AuthenticateRequest {
  user: string;
  /**
   * SHA-256 of the token the proposing member hands to the client. Every member learns which
   * digest stands for which user, so the token works on every member (as etcd replicates its
   * simple tokens), while the token itself never reaches the log or the disk.
   */
  tokenDigest: Uint8Array;
  /** The user's credentialRevision when the proposer verified the password; a change since fails the command. */
  credentialRevision: number;
}

export type AuthCommand =
  | { type: 'authEnable'; request: Record<string, never> }
  | { type: 'authDisable'; request: Record<string, never> }
  | { type: 'authenticate'; request: AuthenticateRequest }
  | { type: 'userAdd'; request: UserAddRequest }
  | { type: 'userDelete'; request: { user: string } }
  | { type: 'userChangePassword'; request: { user: string; passwordHash: Uint8Array } }
  | { type: 'userGrantRole'; request: { user: string; role: string } }
  | { type: 'userRevokeRole'; request: { user: string; role: string } }
  | { type: 'roleAdd'; request: { role: string } }
  | { type: 'roleDelete'; request: { role: string } }
  /** `permission` absent is etcd's "permission not given" (a request without perm). */
  | { type: 'roleGrantPermission'; request: { role: string; permission?: Permission } }
  | { type: 'roleRevokePermission'; request: { role: string; key: Uint8Array; rangeEnd: Uint8Array } };

export type AuthCommandType = AuthCommand['type'];

export interface AuthenticateResponse {
  header: ResponseHeader;
  user: string;
  tokenDigest: Uint8Array;
  credentialRevision: number;
}

export type AuthCommandResponse =
  | { type: 'authenticate'; response: AuthenticateResponse }
  | { type: Exclude<AuthCommandType, 'authenticate'>; response: { header: ResponseHeader } };

/** Code point order, which is the byte order of the names' UTF-8 encodings (how etcd sorts them). */
export function compareNames(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // both are the same surrogate pair
  }
  return a.length - b.length;
}
