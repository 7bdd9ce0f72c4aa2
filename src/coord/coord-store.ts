// CoordStore: what Concord's components need from the coordination store, and nothing more.
// Every component (controllers, proxies, the CLI) reaches the store through this interface, so the
// same code runs against the embedded Concord store and against an existing etcd cluster: both
// speak the etcd v3 API, and the one implementation (etcd-coord-store.ts) is a client of that API.
//
// Keys and values are UTF-8 text (Concord's own keys and JSON values are). Revisions, versions and
// lease IDs are bigints: etcd's are 64-bit and real lease IDs exceed 2^53.
//
// The recipes built on it (election.ts, lock.ts) follow etcd's own client recipes
// (clientv3/concurrency), so a Concord controller and an etcd tool see the same keys.

export interface KeyValue {
  key: string;
  value: string;
  /** The revision that created the key (its current incarnation); 0 never appears here. */
  createRevision: bigint;
  modRevision: bigint;
  /** How many times the key was written since it was created (1 after the first put). */
  version: bigint;
  /** The lease the key is attached to; 0n when none. */
  lease: bigint;
}

export type SortTarget = 'key' | 'create' | 'mod' | 'version' | 'value';

export interface RangeOptions {
  /** Every key that starts with `key`. */
  prefix?: boolean;
  /** Keys in [key, rangeEnd) (exclusive with prefix). */
  rangeEnd?: string;
  /** At most this many keys (0 or absent: no limit). */
  limit?: number;
  /** Read at this revision instead of the latest. */
  revision?: bigint;
  keysOnly?: boolean;
  countOnly?: boolean;
  sort?: { target: SortTarget; order: 'ascend' | 'descend' };
  /** Only keys created at or before this revision (the election recipe's "who is ahead of me"). */
  maxCreateRevision?: bigint;
  minCreateRevision?: bigint;
}

export interface RangeResult {
  /** The store's revision when the range was served. */
  revision: bigint;
  kvs: KeyValue[];
  /** How many keys the range matched, beyond any limit. */
  count: number;
  more: boolean;
}

export interface PutOptions {
  /** Attach the key to this lease; it is deleted when the lease ends. */
  lease?: bigint;
}

export interface DeleteOptions {
  prefix?: boolean;
  rangeEnd?: string;
}

export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';
export type CompareResult = '=' | '!=' | '>' | '<';

/**
 * One condition of a transaction, as etcd evaluates it: a missing key has version, create and mod
 * revision 0, so `create(key) = R` fails once the key is gone.
 */
export type Compare =
  | { key: string; target: 'version' | 'create' | 'mod' | 'lease'; result: CompareResult; value: bigint }
  | { key: string; target: 'value'; result: CompareResult; value: string };

export type TxnOp =
  | { kind: 'put'; key: string; value: string; lease?: bigint }
  | { kind: 'delete'; key: string; prefix?: boolean; rangeEnd?: string }
  | ({ kind: 'range'; key: string } & RangeOptions);

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export type TxnOpResult =
  | { kind: 'put'; revision: bigint }
  | { kind: 'delete'; deleted: number }
  | { kind: 'range'; result: RangeResult };

export interface TxnResult {
  succeeded: boolean;
  /** The store's revision after the transaction. */
  revision: bigint;
  /** One result per operation of the branch that ran, in order. */
  results: TxnOpResult[];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For a delete: the key, with modRevision the deletion's revision and an empty value. */
  kv: KeyValue;
  /** The key's previous value, when the watch asked for it. */
  prevKv?: KeyValue;
}

export interface WatchOptions {
  prefix?: boolean;
  /** Deliver every event from this revision on (history included); absent: from now. */
  fromRevision?: bigint;
  prevKv?: boolean;
}

export interface WatchCallbacks {
  /** Events of one revision or more, in revision order; never called after cancel(). */
  onEvents(events: WatchEvent[]): void;
  /**
   * The watch ended for good: the revision it needed was compacted (CONCORD_E_STORE_COMPACTED) or
   * the store refused it. Lost connections are not errors: the watch resumes where it stopped.
   */
  onError?(error: CoordError): void;
}

export interface WatchHandle {
  /** The last revision delivered (or the start revision minus one). */
  lastRevision(): bigint;
  cancel(): Promise<void>;
}

export interface LeaseOptions {
  /** Keep the lease alive in the background (every third of its TTL, as etcd's clients do). Default true. */
  keepAlive?: boolean;
}

/** A lease granted by the store, with its keep-alive. */
export interface LeaseHandle {
  readonly id: bigint;
  /** The TTL the store granted (it may raise a short one to its minimum). */
  readonly ttlSeconds: number;
  /**
   * When the lease ends for sure unless a keep-alive lands: the send time of the last keep-alive the
   * store confirmed, plus the TTL it confirmed. Measured on this process's monotonic clock, so a
   * paused process finds its deadline passed when it resumes.
   */
  deadlineMs(): number;
  /** The deadline has not passed and the lease was neither revoked, released nor lost. */
  alive(): boolean;
  /** Called once when the lease is lost: the store said it expired, or the deadline passed. */
  onLost(listener: (error: CoordError) => void): void;
  keepAliveOnce(): Promise<void>;
  /** Ends the lease now; its keys are deleted. */
  revoke(): Promise<void>;
  /** Stops the keep-alives without revoking: the lease expires after its TTL (what a crash does). */
  release(): void;
}

export interface CoordStore {
  get(key: string): Promise<KeyValue | undefined>;
  range(key: string, options?: RangeOptions): Promise<RangeResult>;
  put(key: string, value: string, options?: PutOptions): Promise<{ revision: bigint }>;
  delete(key: string, options?: DeleteOptions): Promise<{ revision: bigint; deleted: number }>;
  txn(request: TxnRequest): Promise<TxnResult>;
  watch(key: string, options: WatchOptions, callbacks: WatchCallbacks): Promise<WatchHandle>;
  grantLease(ttlSeconds: number, options?: LeaseOptions): Promise<LeaseHandle>;
  /** Closes connections; leases still kept alive are released (not revoked). */
  close(): void;
}

export type CoordErrorCode =
  | 'CONCORD_E_STORE_URL_INVALID'
  | 'CONCORD_E_STORE_UNAVAILABLE'
  | 'CONCORD_E_STORE_REQUEST_FAILED'
  | 'CONCORD_E_STORE_COMPACTED'
  | 'CONCORD_E_STORE_LEASE_LOST'
  | 'CONCORD_E_STORE_CLOSED'
  | 'CONCORD_E_STORE_AUTH_FAILED'
  | 'CONCORD_E_STORE_PERMISSION_DENIED'
  | 'CONCORD_E_STORE_CREDENTIALS_INVALID';

export class CoordError extends Error {
  override name = 'CoordError';
  readonly code: CoordErrorCode;

  constructor(code: CoordErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
