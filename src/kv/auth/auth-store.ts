// etcd's auth store (auth/store.go, v3.4) as part of the replicated state machine: users, roles and
// their key-range permissions, the root user and role, the enabled flag and the auth revision.
// Every member applies the same auth commands in log order, so every member answers every
// permission question the same way at the same log position.
//
// What is etcd's and what is Concord's:
// * Every check, its order and its error follow etcd 3.4 (store.go and apply_auth.go), with these
//   deliberate differences (docs/store.md, "Authentication"): a permission whose range ends before
//   it starts, or with an empty key, is refused with "invalid auth management" (etcd 3.5's rule;
//   3.4 stores it, and it grants nothing); a grant without a permission is "permission not given"
//   (etcd 3.4 crashes on it); and the limits in AuthLimits bound what etcd leaves unbounded.
// * Passwords arrive hashed (the shell hashes them before proposing); tokens arrive as digests.
// * Records are replaced, never changed in place, so a snapshot can capture the state by reference.

import type {
  AuthCommand,
  AuthCommandResponse,
  AuthLimits,
  AuthRole,
  AuthState,
  AuthUser,
  Permission,
  Requester,
  UserAddRequest,
} from './auth-types.ts';
import { DEFAULT_AUTH_LIMITS, PERMISSION_TYPES, ROOT, compareNames } from './auth-types.ts';
import { UserPermissions } from './permission-ranges.ts';
import { compareBytes, bytesEqual } from '../key-range.ts';
import { KvError } from '../errors.ts';

/** A fresh etcd auth store starts at auth revision 1 (0 would mean "no user" in request headers). */
export const INITIAL_AUTH_REVISION = 1;

const utf8 = new TextEncoder();

export class AuthStore {
  private enabledFlag = false;
  private authRevision = INITIAL_AUTH_REVISION;
  private readonly users = new Map<string, AuthUser>();
  private readonly roles = new Map<string, AuthRole>();
  /** Merged permissions by user name, rebuilt on demand; cleared whenever users or roles change. */
  private readonly permissionCache = new Map<string, UserPermissions>();
  readonly limits: AuthLimits;

  constructor(limits: Partial<AuthLimits> = {}) {
    this.limits = { ...DEFAULT_AUTH_LIMITS, ...limits };
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.authRevision;
  }

  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  role(name: string): AuthRole | undefined {
    return this.roles.get(name);
  }

  // --- permission checks (etcd's IsRangePermitted, IsPutPermitted, IsDeleteRangePermitted, IsAdminPermitted) ---

  /** Read permission on [key, rangeEnd) (a single key when rangeEnd is empty). Throws etcd's error. */
  checkRead(requester: Requester, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkOperation(requester, (permissions) => permissions.mayRead(key, rangeEnd));
  }

  /** Write permission on [key, rangeEnd), as puts (one key) and deletes need. */
  checkWrite(requester: Requester, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkOperation(requester, (permissions) => permissions.mayWrite(key, rangeEnd));
  }

  /** etcd's IsAdminPermitted: the requester must hold the root role (anyone may while auth is off). */
  checkAdmin(requester: Requester): void {
    if (!this.enabledFlag || requester.kind === 'member') return;
    if (requester.user === '') throw new KvError('CONCORD_E_AUTH_USER_EMPTY');
    const user = this.users.get(requester.user);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    if (!hasRootRole(user)) throw new KvError('CONCORD_E_AUTH_PERMISSION_DENIED');
  }

  isAdmin(requester: Requester): boolean {
    try {
      this.checkAdmin(requester);
      return true;
    } catch {
      return false;
    }
  }

  /** etcd's isOpPermitted: the order of its checks decides which error a client sees. */
  private checkOperation(requester: Requester, permitted: (permissions: UserPermissions) => boolean): void {
    if (!this.enabledFlag || requester.kind === 'member') return;
    if (requester.authRevision === 0) throw new KvError('CONCORD_E_AUTH_USER_EMPTY');
    if (requester.authRevision < this.authRevision) {
      throw new KvError('CONCORD_E_AUTH_OLD_REVISION', `request checked at auth revision ${requester.authRevision}, now ${this.authRevision}`);
    }
    const user = this.users.get(requester.user);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_PERMISSION_DENIED', `user ${JSON.stringify(requester.user)} does not exist`);
    if (hasRootRole(user)) return;
    if (!permitted(this.permissionsOf(user))) throw new KvError('CONCORD_E_AUTH_PERMISSION_DENIED');
  }

  private permissionsOf(user: AuthUser): UserPermissions {
    let permissions = this.permissionCache.get(user.user);
    if (permissions === undefined) {
      const granted = user.roles.flatMap((name) => this.roles.get(name)?.permissions ?? []);
      permissions = new UserPermissions(granted);
      this.permissionCache.set(user.user, permissions);
    }
    return permissions;
  }

  // --- reads (etcd routes them through Raft; Concord serves them after a read barrier) ----------

  /** UserGet: the root role, or the user asking about itself (apply_auth.go). */
  userRoles(requester: Requester, name: string): readonly string[] {
    if (!this.isAdmin(requester) && !(requester.kind === 'client' && requester.user === name)) this.checkAdmin(requester);
    const user = this.users.get(name);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    return user.roles;
  }

  /** RoleGet: the root role, or a user that holds the role. */
  rolePermissions(requester: Requester, name: string): readonly Permission[] {
    const holdsRole = requester.kind === 'client' && (this.users.get(requester.user)?.roles.includes(name) ?? false);
    if (!this.isAdmin(requester) && !holdsRole) this.checkAdmin(requester);
    const role = this.roles.get(name);
    if (role === undefined) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_FOUND');
    return role.permissions;
  }

  userNames(requester: Requester): string[] {
    this.checkAdmin(requester);
    return [...this.users.keys()].sort(compareNames);
  }

  roleNames(requester: Requester): string[] {
    this.checkAdmin(requester);
    return [...this.roles.keys()].sort(compareNames);
  }

  // --- commands ---------------------------------------------------------------------------------

  /**
   * Applies an auth command for `requester` (etcd's authApplierV3: every command but Authenticate
   * needs the root role once auth is on). `header` is the key-value store's, which auth commands
   * do not change. Throws a KvError for every refusal, before changing anything.
   */
  apply(command: AuthCommand, requester: Requester, header: { revision: number }): AuthCommandResponse {
    if (command.type !== 'authenticate') this.checkAdmin(requester);
    switch (command.type) {
      case 'authenticate': {
        const { user, tokenDigest, credentialRevision } = command.request;
        this.authenticate(user, credentialRevision);
        return { type: 'authenticate', response: { header, user, tokenDigest, credentialRevision } };
      }
      case 'authEnable':
        this.enable();
        break;
      case 'authDisable':
        this.disable();
        break;
      case 'userAdd':
        this.addUser(command.request);
        break;
      case 'userDelete':
        this.deleteUser(command.request.user);
        break;
      case 'userChangePassword':
        this.changePassword(command.request.user, command.request.passwordHash);
        break;
      case 'userGrantRole':
        this.grantRole(command.request.user, command.request.role);
        break;
      case 'userRevokeRole':
        this.revokeRole(command.request.user, command.request.role);
        break;
      case 'roleAdd':
        this.addRole(command.request.role);
        break;
      case 'roleDelete':
        this.deleteRole(command.request.role);
        break;
      case 'roleGrantPermission':
        this.grantPermission(command.request.role, command.request.permission);
        break;
      case 'roleRevokePermission':
        this.revokePermission(command.request.role, command.request.key, command.request.rangeEnd);
        break;
    }
    return { type: command.type, response: { header } };
  }

  /** etcd checks the password in the API layer; the applied command re-checks what may have changed since. */
  private authenticate(name: string, credentialRevision: number): void {
    if (!this.enabledFlag) throw new KvError('CONCORD_E_AUTH_NOT_ENABLED');
    const user = this.users.get(name);
    if (user === undefined || user.noPassword) throw new KvError('CONCORD_E_AUTH_FAILED');
    if (user.credentialRevision !== credentialRevision) throw new KvError('CONCORD_E_AUTH_FAILED', 'the password changed while it was checked');
  }

  private enable(): void {
    if (this.enabledFlag) return;
    const root = this.users.get(ROOT);
    if (root === undefined) throw new KvError('CONCORD_E_AUTH_ROOT_USER_NOT_EXIST');
    if (!hasRootRole(root)) throw new KvError('CONCORD_E_AUTH_ROOT_ROLE_NOT_EXIST');
    this.enabledFlag = true;
    this.permissionCache.clear();
  }

  private disable(): void {
    if (!this.enabledFlag) return;
    this.enabledFlag = false;
    this.commitRevision();
  }

  private addUser(request: UserAddRequest): void {
    if (request.user === '') throw new KvError('CONCORD_E_AUTH_USER_EMPTY');
    this.checkNameLength(request.user, 'user name');
    if (this.users.has(request.user)) throw new KvError('CONCORD_E_AUTH_USER_EXISTS');
    this.checkCount(this.users.size, this.limits.maxUsers, 'maxUsers', 'users');
    this.commitRevision();
    this.users.set(request.user, {
      user: request.user,
      passwordHash: request.noPassword ? new Uint8Array(0) : request.passwordHash,
      noPassword: request.noPassword,
      roles: [],
      credentialRevision: this.authRevision,
    });
  }

  private deleteUser(name: string): void {
    if (this.enabledFlag && name === ROOT) throw new KvError('CONCORD_E_AUTH_INVALID_MANAGEMENT', 'the root user cannot be deleted while auth is enabled');
    if (!this.users.has(name)) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    this.users.delete(name);
    this.commitRevision();
  }

  private changePassword(name: string, passwordHash: Uint8Array): void {
    const user = this.users.get(name);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    this.commitRevision();
    // A no-password user stays one: it authenticates by its TLS certificate, never by a password.
    this.users.set(name, { ...user, passwordHash: user.noPassword ? user.passwordHash : passwordHash, credentialRevision: this.authRevision });
  }

  private grantRole(name: string, roleName: string): void {
    const user = this.users.get(name);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    // The root role need not exist as a role to be granted (etcd's special case).
    if (roleName !== ROOT && !this.roles.has(roleName)) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_FOUND');
    if (user.roles.includes(roleName)) return; // already granted: etcd answers OK and changes nothing
    this.checkCount(user.roles.length, this.limits.maxRolesPerUser, 'maxRolesPerUser', `roles of user ${JSON.stringify(name)}`);
    this.users.set(name, { ...user, roles: [...user.roles, roleName].sort(compareNames) });
    this.commitRevision();
  }

  private revokeRole(name: string, roleName: string): void {
    if (this.enabledFlag && name === ROOT && roleName === ROOT) {
      throw new KvError('CONCORD_E_AUTH_INVALID_MANAGEMENT', 'the root user cannot lose the root role while auth is enabled');
    }
    const user = this.users.get(name);
    if (user === undefined) throw new KvError('CONCORD_E_AUTH_USER_NOT_FOUND');
    if (!user.roles.includes(roleName)) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_GRANTED');
    this.users.set(name, { ...user, roles: user.roles.filter((role) => role !== roleName) });
    this.commitRevision();
  }

  private addRole(name: string): void {
    if (name === '') throw new KvError('CONCORD_E_AUTH_ROLE_EMPTY');
    this.checkNameLength(name, 'role name');
    if (this.roles.has(name)) throw new KvError('CONCORD_E_AUTH_ROLE_EXISTS');
    this.checkCount(this.roles.size, this.limits.maxRoles, 'maxRoles', 'roles');
    this.roles.set(name, { role: name, permissions: [] });
    this.commitRevision();
  }

  /** As etcd 3.4, deleting a role also takes it away from every user that held it. */
  private deleteRole(name: string): void {
    if (this.enabledFlag && name === ROOT) throw new KvError('CONCORD_E_AUTH_INVALID_MANAGEMENT', 'the root role cannot be deleted while auth is enabled');
    if (!this.roles.has(name)) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_FOUND');
    this.roles.delete(name);
    for (const user of this.users.values()) {
      if (user.roles.includes(name)) this.users.set(user.user, { ...user, roles: user.roles.filter((role) => role !== name) });
    }
    this.commitRevision();
  }

  private grantPermission(roleName: string, permission: Permission | undefined): void {
    if (permission === undefined) throw new KvError('CONCORD_E_AUTH_PERMISSION_NOT_GIVEN');
    if (!PERMISSION_TYPES.includes(permission.permType)) throw new KvError('CONCORD_E_AUTH_INVALID_MANAGEMENT', `unknown permission type ${String(permission.permType)}`);
    if (!isValidPermissionRange(permission.key, permission.rangeEnd)) {
      throw new KvError('CONCORD_E_AUTH_INVALID_MANAGEMENT', 'a permission needs a key, and a range end after it (or "\\0" for every key from it on)');
    }
    const role = this.roles.get(roleName);
    if (role === undefined) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_FOUND');
    const same = role.permissions.findIndex((p) => bytesEqual(p.key, permission.key) && bytesEqual(p.rangeEnd, permission.rangeEnd));
    const copy: Permission = { permType: permission.permType, key: permission.key.slice(), rangeEnd: permission.rangeEnd.slice() };
    let permissions: Permission[];
    if (same >= 0) {
      // The same key range granted again: its type is replaced (etcd updates it in place).
      permissions = role.permissions.map((p, i) => (i === same ? copy : p));
    } else {
      this.checkCount(role.permissions.length, this.limits.maxPermissionsPerRole, 'maxPermissionsPerRole', `permissions of role ${JSON.stringify(roleName)}`);
      permissions = [...role.permissions, copy].sort(comparePermissions);
    }
    this.roles.set(roleName, { role: roleName, permissions });
    this.commitRevision();
  }

  private revokePermission(roleName: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    const role = this.roles.get(roleName);
    if (role === undefined) throw new KvError('CONCORD_E_AUTH_ROLE_NOT_FOUND');
    const kept = role.permissions.filter((p) => !bytesEqual(p.key, key) || !bytesEqual(p.rangeEnd, rangeEnd));
    if (kept.length === role.permissions.length) throw new KvError('CONCORD_E_AUTH_PERMISSION_NOT_GRANTED');
    this.roles.set(roleName, { role: roleName, permissions: kept });
    this.commitRevision();
  }

  private commitRevision(): void {
    this.authRevision++;
    this.permissionCache.clear();
  }

  private checkNameLength(name: string, what: string): void {
    const sizeBytes = utf8.encode(name).length;
    if (sizeBytes > this.limits.maxNameBytes) {
      throw new KvError('CONCORD_E_AUTH_INPUT_TOO_LONG', `${what} of ${sizeBytes} bytes, at most maxNameBytes ${this.limits.maxNameBytes}`);
    }
  }

  private checkCount(count: number, limit: number, limitName: string, what: string): void {
    if (count >= limit) throw new KvError('CONCORD_E_AUTH_LIMIT', `${what} already at ${limitName} ${limit}`);
  }

  // --- snapshots --------------------------------------------------------------------------------

  /** The state by reference: records are immutable, so this is a consistent capture. */
  exportState(): AuthState {
    return {
      enabled: this.enabledFlag,
      revision: this.authRevision,
      users: [...this.users.values()].sort((a, b) => compareNames(a.user, b.user)),
      roles: [...this.roles.values()].sort((a, b) => compareNames(a.role, b.role)),
    };
  }

  /** Rebuilds a store from exportState(); state from outside is checked, as snapshots may be damaged. */
  static fromState(state: AuthState, limits: Partial<AuthLimits> = {}): AuthStore {
    checkAuthState(state);
    const store = new AuthStore(limits);
    store.enabledFlag = state.enabled;
    store.authRevision = state.revision;
    for (const user of state.users) store.users.set(user.user, user);
    for (const role of state.roles) store.roles.set(role.role, role);
    return store;
  }
}

export function hasRootRole(user: AuthUser): boolean {
  return user.roles.includes(ROOT);
}

/** etcd 3.5's isValidPermissionRange: a key, and a range end after it, or none, or "\0". */
export function isValidPermissionRange(key: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (key.length === 0) return false;
  if (rangeEnd.length === 0) return true;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return true;
  return compareBytes(key, rangeEnd) < 0;
}

function comparePermissions(a: Permission, b: Permission): number {
  return compareBytes(a.key, b.key) || compareBytes(a.rangeEnd, b.rangeEnd);
}

function invalidState(detail: string): KvError {
  return new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', `auth state: ${detail}`);
}

/** The invariants AuthStore keeps, checked on state that arrives from a snapshot. */
function checkAuthState(state: AuthState): void {
  if (!Number.isSafeInteger(state.revision) || state.revision < INITIAL_AUTH_REVISION) throw invalidState(`revision ${state.revision}`);
  checkSortedUnique(state.users.map((user) => user.user), 'users');
  checkSortedUnique(state.roles.map((role) => role.role), 'roles');
  for (const user of state.users) {
    checkSortedUnique([...user.roles], `roles of user ${JSON.stringify(user.user)}`);
    if (user.credentialRevision < INITIAL_AUTH_REVISION || user.credentialRevision > state.revision) {
      throw invalidState(`user ${JSON.stringify(user.user)} has credential revision ${user.credentialRevision}`);
    }
  }
  for (const role of state.roles) {
    for (let i = 1; i < role.permissions.length; i++) {
      if (comparePermissions(role.permissions[i - 1]!, role.permissions[i]!) >= 0) throw invalidState(`permissions of role ${JSON.stringify(role.role)} are unsorted or repeated`);
    }
  }
  if (state.enabled) {
    const root = state.users.find((user) => user.user === ROOT);
    if (root === undefined || !hasRootRole(root)) throw invalidState('auth is enabled without a root user holding the root role');
  }
}

function checkSortedUnique(names: string[], what: string): void {
  for (let i = 1; i < names.length; i++) {
    if (compareNames(names[i - 1]!, names[i]!) >= 0) throw invalidState(`${what} are unsorted or repeated`);
  }
  if (names.some((name) => name === '')) throw invalidState(`${what} include an empty name`);
}
