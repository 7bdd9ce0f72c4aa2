// The key-value store's error catalog. Each expected failure has a stable Concord code, the exact
// message etcd puts on the wire for the same condition (api/v3rpc/rpctypes/error.go), and the gRPC
// status code etcd uses, so the gRPC layer maps an error without string matching and etcd clients
// (which compare message texts, e.g. clientv3's rpctypes.ErrCompacted) recognise it unchanged.
// `hint` says what the user can do; it never goes on the wire.

export type GrpcStatusName =
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'FAILED_PRECONDITION'
  | 'OUT_OF_RANGE'
  | 'RESOURCE_EXHAUSTED'
  | 'DATA_LOSS'
  | 'INTERNAL'
  | 'UNAUTHENTICATED';

/** Numeric gRPC status codes (grpc/codes). */
export const GRPC_STATUS_CODES: Record<GrpcStatusName, number> = {
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 16,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  RESOURCE_EXHAUSTED: 8,
  DATA_LOSS: 15,
  INTERNAL: 13,
};

interface CatalogEntry {
  message: string;
  grpcStatus: GrpcStatusName;
  hint: string;
}

export const KV_ERRORS = {
  CONCORD_E_KV_EMPTY_KEY: {
    message: 'etcdserver: key is not provided',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Every range, put, delete and compare needs a non-empty key.',
  },
  CONCORD_E_KV_KEY_NOT_FOUND: {
    message: 'etcdserver: key not found',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'ignoreValue and ignoreLease keep the current value or lease, so the key must exist.',
  },
  CONCORD_E_KV_VALUE_PROVIDED: {
    message: 'etcdserver: value is provided',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Send an empty value together with ignoreValue.',
  },
  CONCORD_E_KV_LEASE_PROVIDED: {
    message: 'etcdserver: lease is provided',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Send lease 0 together with ignoreLease.',
  },
  CONCORD_E_KV_TOO_MANY_OPS: {
    message: 'etcdserver: too many operations in txn request',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Split the transaction, or raise maxTxnOps on every member.',
  },
  CONCORD_E_KV_DUPLICATE_KEY: {
    message: 'etcdserver: duplicate key given in txn request',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'A transaction may write each key once: no two puts of one key, no put inside a deleted range.',
  },
  CONCORD_E_KV_COMPACTED: {
    message: 'etcdserver: mvcc: required revision has been compacted',
    grpcStatus: 'OUT_OF_RANGE',
    hint: 'Read at a revision at or after the compact revision, or at the current revision.',
  },
  CONCORD_E_KV_FUTURE_REVISION: {
    message: 'etcdserver: mvcc: required revision is a future revision',
    grpcStatus: 'OUT_OF_RANGE',
    hint: 'The revision has not been written yet; use a revision at or below the current one.',
  },
  CONCORD_E_KV_NO_SPACE: {
    message: 'etcdserver: mvcc: database space exceeded',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Compact the history, delete keys, then disarm the NOSPACE alarm (etcdctl alarm disarm).',
  },
  CONCORD_E_KV_CORRUPT: {
    message: 'etcdserver: corrupt cluster',
    grpcStatus: 'DATA_LOSS',
    hint: 'A member reported diverging data; restore it from a healthy member, then disarm the alarm.',
  },
  CONCORD_E_KV_REQUEST_TOO_LARGE: {
    message: 'etcdserver: request is too large',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Keep a request below maxRequestBytes (1.5 MiB by default), or split it.',
  },
  CONCORD_E_LEASE_NOT_FOUND: {
    message: 'etcdserver: requested lease not found',
    grpcStatus: 'NOT_FOUND',
    hint: 'The lease expired or was revoked; grant a new one.',
  },
  CONCORD_E_LEASE_EXISTS: {
    message: 'etcdserver: lease already exists',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Pick another lease ID, or send 0 to let the server pick one.',
  },
  CONCORD_E_LEASE_TTL_TOO_LARGE: {
    message: 'etcdserver: too large lease TTL',
    grpcStatus: 'OUT_OF_RANGE',
    hint: 'A lease TTL may be at most 9,000,000,000 seconds.',
  },
  CONCORD_E_LEASE_NOT_PRIMARY: {
    message: 'etcdserver: not leader',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Lease expiry is tracked by the leader only; send keep-alives and TTL queries to it.',
  },
  CONCORD_E_WATCH_LIMIT: {
    message: 'concord: too many watchers; cancel unused watches or raise maxWatchers',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Cancel unused watches, share watches between clients, or raise maxWatchers.',
  },
  CONCORD_E_WATCH_STREAM_LIMIT: {
    message: 'concord: too many watch streams on this member',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Put several watches on one stream (etcd clients do), close unused streams, or raise --max-watch-streams.',
  },
  CONCORD_E_WATCH_SLOW_CONSUMER: {
    message: 'concord: watch stream ended because the client did not read its responses',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Read watch responses promptly, then watch again from the last revision received; or raise --max-watch-stream-queued-bytes / --max-watch-queued-bytes.',
  },
  CONCORD_E_LEASE_LIMIT: {
    message: 'concord: too many leases',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Share one lease between the keys of a session, revoke leases no longer needed, or raise --max-leases.',
  },
  CONCORD_E_RANGE_TOO_MANY_KEYS: {
    message: 'concord: range result has too many keys',
    // As etcd's size limits on requests (request too large, too many txn ops): no client retries it.
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Page through the range: send limit (at most --max-range-keys) and continue from the last key received; or raise --max-range-keys.',
  },
  CONCORD_E_WATCH_DUPLICATE_ID: {
    message: 'mvcc: duplicate watch ID provided on the WatchStream',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Each watch on one stream needs its own ID; send -1 to let the server pick one.',
  },
  CONCORD_E_KV_INVALID_ARGUMENT: {
    message: 'concord: invalid argument',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Revisions, limits and TTLs must be integers within range.',
  },
  CONCORD_E_KV_COMMAND_INVALID: {
    message: 'concord: replicated command cannot be decoded',
    grpcStatus: 'INTERNAL',
    hint: 'The log entry is damaged or was written by a newer Concord; upgrade this member.',
  },
  CONCORD_E_KV_SNAPSHOT_INVALID: {
    message: 'concord: key-value snapshot is invalid',
    grpcStatus: 'DATA_LOSS',
    hint: 'The snapshot is damaged; fetch a fresh one from a healthy member.',
  },
  CONCORD_E_KV_SNAPSHOT_VERSION: {
    message: 'concord: key-value snapshot was written by a newer Concord',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Upgrade this member to a Concord version that reads the snapshot format.',
  },
  // --- authentication and authorization (etcd's auth package and rpctypes) ---
  CONCORD_E_AUTH_ROOT_USER_NOT_EXIST: {
    message: 'etcdserver: root user does not exist',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: "Create the user 'root' before enabling auth (etcdctl user add root).",
  },
  CONCORD_E_AUTH_ROOT_ROLE_NOT_EXIST: {
    message: 'etcdserver: root user does not have root role',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: "Grant the role 'root' to the user 'root' before enabling auth (etcdctl auth enable does it for you).",
  },
  CONCORD_E_AUTH_USER_EXISTS: {
    message: 'etcdserver: user name already exists',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Pick another user name, or change the existing user (user passwd, user grant-role).',
  },
  CONCORD_E_AUTH_USER_EMPTY: {
    message: 'etcdserver: user name is empty',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Auth is enabled: authenticate (etcdctl --user NAME), or name the user to create.',
  },
  CONCORD_E_AUTH_USER_NOT_FOUND: {
    message: 'etcdserver: user name not found',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Check the name with etcdctl user list.',
  },
  CONCORD_E_AUTH_ROLE_EXISTS: {
    message: 'etcdserver: role name already exists',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Pick another role name, or grant permissions to the existing role.',
  },
  CONCORD_E_AUTH_ROLE_NOT_FOUND: {
    message: 'etcdserver: role name not found',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Check the name with etcdctl role list, or create the role first.',
  },
  CONCORD_E_AUTH_ROLE_EMPTY: {
    message: 'etcdserver: role name is empty',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Name the role.',
  },
  CONCORD_E_AUTH_FAILED: {
    message: 'etcdserver: authentication failed, invalid user ID or password',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Check the user name and password; auth must be enabled for a password to be checked.',
  },
  CONCORD_E_AUTH_NO_PASSWORD_USER: {
    // etcd returns this one without a gRPC code of its own, so clients see UNKNOWN and this text.
    message: 'auth: authentication failed, password was given for no password user',
    grpcStatus: 'UNKNOWN',
    hint: 'The user was created with --no-password: it authenticates by the common name of its TLS client certificate, not by a password.',
  },
  CONCORD_E_AUTH_PERMISSION_DENIED: {
    message: 'etcdserver: permission denied',
    grpcStatus: 'PERMISSION_DENIED',
    hint: "Grant the user a role whose permissions cover the keys (etcdctl role grant-permission), or the role 'root' for administration.",
  },
  CONCORD_E_AUTH_ROLE_NOT_GRANTED: {
    message: 'etcdserver: role is not granted to the user',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Check the roles with etcdctl user get.',
  },
  CONCORD_E_AUTH_PERMISSION_NOT_GRANTED: {
    message: 'etcdserver: permission is not granted to the role',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Name the permission exactly as granted (key and range end); check with etcdctl role get.',
  },
  CONCORD_E_AUTH_PERMISSION_NOT_GIVEN: {
    message: 'etcdserver: permission not given',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Send the permission to grant (type, key and range end).',
  },
  CONCORD_E_AUTH_NOT_ENABLED: {
    message: 'etcdserver: authentication is not enabled',
    grpcStatus: 'FAILED_PRECONDITION',
    hint: 'Enable auth first (etcdctl auth enable), or call without credentials.',
  },
  CONCORD_E_AUTH_INVALID_TOKEN: {
    message: 'etcdserver: invalid auth token',
    grpcStatus: 'UNAUTHENTICATED',
    hint: 'The token expired, was issued before a password change or auth disable, or is not one of ours: authenticate again.',
  },
  CONCORD_E_AUTH_INVALID_MANAGEMENT: {
    message: 'etcdserver: invalid auth management',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: "The root user and role cannot be removed while auth is enabled, and a permission needs a key and a range end after it.",
  },
  CONCORD_E_AUTH_OLD_REVISION: {
    message: 'etcdserver: revision of auth store is old',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Users, roles or permissions changed while the request was on its way: retry (etcd clients do it themselves).',
  },
  CONCORD_E_AUTH_LIMIT: {
    message: 'concord: auth limit reached',
    grpcStatus: 'RESOURCE_EXHAUSTED',
    hint: 'Delete unused users, roles or permissions; the message names the limit (maxUsers, maxRoles, maxPermissionsPerRole, maxRolesPerUser).',
  },
  CONCORD_E_AUTH_INPUT_TOO_LONG: {
    message: 'concord: auth input too long',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: 'Use a user or role name of at most maxNameBytes (4 KiB) and a password of at most 1 KiB.',
  },
  CONCORD_E_AUTO_COMPACTION_CONFIG: {
    message: 'concord: invalid auto-compaction configuration',
    grpcStatus: 'INVALID_ARGUMENT',
    hint: "Use --auto-compaction-mode periodic|revision with a retention such as '1h', '30m', '72' (hours) or a revision count.",
  },
} as const satisfies Record<string, CatalogEntry>;

export type KvErrorCode = keyof typeof KV_ERRORS;

/**
 * An expected failure of a key-value operation. For conditions etcd knows, `message` is exactly
 * etcd's wire text and `detail` adds Concord's specifics for logs without changing what clients
 * match on; for Concord's own conditions the detail is part of the message.
 */
export class KvError extends Error {
  override name = 'KvError';
  readonly code: KvErrorCode;
  readonly grpcStatus: GrpcStatusName;
  readonly grpcCode: number;
  readonly hint: string;
  readonly detail: string;

  constructor(code: KvErrorCode, detail = '') {
    const entry: CatalogEntry = KV_ERRORS[code];
    // etcd's texts must stay exact; Concord's own errors carry their specifics in the message too.
    const ownError = entry.message.startsWith('concord:');
    super(ownError && detail !== '' ? `${entry.message}: ${detail}` : entry.message);
    this.code = code;
    this.grpcStatus = entry.grpcStatus;
    this.grpcCode = GRPC_STATUS_CODES[entry.grpcStatus];
    this.hint = entry.hint;
    this.detail = detail;
  }
}

/** An assertion inside the key-value core failed: a programming error, never an operating condition. */
export class KvBugError extends Error {
  override name = 'KvBugError';
}

export function isKvError(error: unknown, code?: KvErrorCode): error is KvError {
  return error instanceof KvError && (code === undefined || error.code === code);
}

/** Revisions and counts travel as JS numbers; anything that is not a safe integer is refused. */
export function checkSafeInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) {
    throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `${what} must be an integer below 2^53, got ${value}`);
  }
}
