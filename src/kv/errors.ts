// The key-value store's error catalog. Each expected failure has a stable Concord code, the exact
// message etcd puts on the wire for the same condition (api/v3rpc/rpctypes/error.go), and the gRPC
// status code etcd uses, so the gRPC layer maps an error without string matching and etcd clients
// (which compare message texts, e.g. clientv3's rpctypes.ErrCompacted) recognise it unchanged.
// `hint` says what the user can do; it never goes on the wire.

export type GrpcStatusName =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'OUT_OF_RANGE'
  | 'RESOURCE_EXHAUSTED'
  | 'DATA_LOSS'
  | 'INTERNAL';

/** Numeric gRPC status codes (grpc/codes). */
export const GRPC_STATUS_CODES: Record<GrpcStatusName, number> = {
  INVALID_ARGUMENT: 3,
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
