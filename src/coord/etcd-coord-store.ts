// The CoordStore over the etcd v3 gRPC API, through the `etcd3` npm client's connection pool
// (host selection, retries of unavailable hosts, TLS). It serves both backends: the embedded Concord
// store and an existing etcd cluster, since both speak the same API.
//
// Unary calls (range, put, delete, txn, lease grant and revoke) go through the client's raw RPC
// classes with a deadline of requestTimeoutMs. Watches and lease keep-alives are our own small
// stream loops (watch-stream.ts, lease-keeper.ts) rather than the client's managers, because a
// controller needs two things those do not give: the compaction revision when a watch cannot
// resume, and a lease deadline measured from the send time of the last confirmed keep-alive.

import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import type { IKeyValue, IRangeRequest, IRequestOp, IResponseOp, ICompare } from 'etcd3';
import {
  CoordError,
  type Compare,
  type CoordStore,
  type DeleteOptions,
  type KeyValue,
  type LeaseHandle,
  type LeaseOptions,
  type PutOptions,
  type RangeOptions,
  type RangeResult,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  type WatchCallbacks,
  type WatchHandle,
  type WatchOptions,
} from './coord-store.ts';
import { toCoordError } from './etcd-errors.ts';
import { keyValueOf, rangeEndOf } from './etcd-wire.ts';
import { EtcdLease } from './etcd-lease.ts';
import { EtcdWatch } from './etcd-watch.ts';
import { StoreCluster } from './store-cluster.ts';
import { authenticationError, isAuthNotEnabled, StoreAuthenticator, type CallMetadata, type StoreCredentials } from './store-auth.ts';
import { formatStoreLocation, type StoreLocation } from './store-url.ts';

export interface EtcdCoordStoreOptions {
  /** Deadline of each unary request (and of connecting). */
  requestTimeoutMs?: number;
  /** The clock lease deadlines are measured on; default: the monotonic performance.now(). */
  nowMs?: () => number;
  /** A store user to authenticate as (when the store has authentication on). */
  credentials?: StoreCredentials;
}

/** The part of the etcd3 client's connection pool that asks for each call's metadata. */
interface PoolWithAuthenticator {
  authenticator: { getMetadata(): Promise<CallMetadata>; invalidateMetadata(): void };
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

const SORT_TARGETS = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;
const SORT_ORDERS = { ascend: 1, descend: 2 } as const;
const COMPARE_TARGETS = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;
const COMPARE_RESULTS = { '=': 0, '>': 1, '<': 2, '!=': 3 } as const;
const COMPARE_FIELDS = { version: 'version', create: 'create_revision', mod: 'mod_revision', lease: 'lease' } as const;

function rangeRequest(key: string, options: RangeOptions): IRangeRequest {
  const request: IRangeRequest = { key: Buffer.from(key, 'utf8') };
  const end = rangeEndOf(key, options);
  if (end !== undefined) request.range_end = end;
  if (options.limit !== undefined) request.limit = options.limit;
  if (options.revision !== undefined) request.revision = options.revision.toString();
  if (options.keysOnly === true) request.keys_only = true;
  if (options.countOnly === true) request.count_only = true;
  if (options.sort !== undefined) {
    request.sort_target = SORT_TARGETS[options.sort.target];
    request.sort_order = SORT_ORDERS[options.sort.order];
  }
  if (options.maxCreateRevision !== undefined) request.max_create_revision = options.maxCreateRevision.toString();
  if (options.minCreateRevision !== undefined) request.min_create_revision = options.minCreateRevision.toString();
  return request;
}

function rangeResultOf(response: { header?: { revision?: string }; kvs?: IKeyValue[]; count?: string; more?: boolean }): RangeResult {
  return {
    revision: BigInt(response.header?.revision ?? 0),
    kvs: (response.kvs ?? []).map(keyValueOf),
    count: Number(response.count ?? 0),
    more: response.more === true,
  };
}

function compareOf(compare: Compare): ICompare {
  const wire: ICompare = { key: Buffer.from(compare.key, 'utf8'), target: COMPARE_TARGETS[compare.target], result: COMPARE_RESULTS[compare.result] };
  if (compare.target === 'value') wire.value = Buffer.from(compare.value, 'utf8');
  else wire[COMPARE_FIELDS[compare.target]] = compare.value.toString();
  return wire;
}

function requestOpOf(op: TxnOp): IRequestOp {
  switch (op.kind) {
    case 'put': {
      const put: NonNullable<IRequestOp['request_put']> = { key: Buffer.from(op.key, 'utf8'), value: Buffer.from(op.value, 'utf8') };
      if (op.lease !== undefined && op.lease !== 0n) put.lease = op.lease.toString();
      return { request_put: put };
    }
    case 'delete': {
      const end = rangeEndOf(op.key, op);
      return { request_delete_range: end === undefined ? { key: Buffer.from(op.key, 'utf8') } : { key: Buffer.from(op.key, 'utf8'), range_end: end } };
    }
    case 'range':
      return { request_range: rangeRequest(op.key, op) };
  }
}

function opResultOf(op: TxnOp, response: IResponseOp, revision: bigint): TxnOpResult {
  switch (op.kind) {
    case 'put':
      return { kind: 'put', revision: BigInt(response.response_put?.header?.revision ?? revision) };
    case 'delete':
      return { kind: 'delete', deleted: Number(response.response_delete_range?.deleted ?? 0) };
    case 'range':
      return { kind: 'range', result: rangeResultOf(response.response_range ?? {}) };
  }
}

export class EtcdCoordStore implements CoordStore {
  readonly location: StoreLocation;
  private readonly client: Etcd3;
  private readonly requestTimeoutMs: number;
  private readonly nowMs: () => number;
  private readonly leases = new Set<EtcdLease>();
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;
  private readonly auth: StoreAuthenticator;
  /** Membership and leadership (the etcd Cluster and Maintenance APIs). */
  readonly cluster: StoreCluster;

  constructor(location: StoreLocation, options: EtcdCoordStoreOptions = {}) {
    this.location = location;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.client = new Etcd3({
      hosts: location.endpoints,
      dialTimeout: this.requestTimeoutMs,
      credentials: location.tls === undefined ? undefined : readCredentials(location),
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.requestTimeoutMs }),
    });
    this.auth = this.installAuthenticator(options.credentials);
    this.cluster = new StoreCluster(this.client, (what, run) => this.call(what, run));
  }

  /** The user this client authenticates as, when it was given credentials. */
  get user(): string | undefined {
    return this.auth.user;
  }

  /**
   * Checks `user`'s password with the store (Auth.Authenticate) and returns a token that stands
   * for the user (for asToken). CONCORD_E_STORE_AUTH_FAILED for a wrong name or password, and
   * when the store has authentication off (there is nobody to sign in as then).
   */
  authenticate(user: string, password: string): Promise<string> {
    this.assertOpen();
    return this.auth.runAnonymous(async () => {
      try {
        return (await this.client.auth.authenticate({ name: user, password })).token;
      } catch (error) {
        if (isAuthNotEnabled(error)) {
          throw new CoordError('CONCORD_E_STORE_AUTH_FAILED', 'the store has authentication off: there is no user to sign in as');
        }
        throw authenticationError(user, error, this.requestTimeoutMs);
      }
    });
  }

  /** Whether the store has authentication on: a read without a token is refused then ("user name is empty"). */
  async authEnabled(): Promise<boolean> {
    this.assertOpen();
    try {
      await this.auth.runAnonymous(() => this.client.kv.range({ key: Buffer.from('/concord/auth-probe'), keys_only: true, limit: 1 }));
      return false;
    } catch (error) {
      if (/user name is empty|invalid auth token|permission denied/i.test(String((error as Error).message))) return true;
      throw toCoordError(error, `authentication probe on ${this.describe()}`, this.requestTimeoutMs);
    }
  }

  /**
   * This client's connections, acting as the user `token` stands for (from authenticate): the
   * store's role permissions decide what it may do. A refused token is not renewed
   * (CONCORD_E_STORE_AUTH_FAILED: the user signs in again).
   */
  asToken(token: string): CoordStore {
    const run = <T>(work: () => Promise<T>) => this.auth.runAsToken(token, work);
    return {
      get: (key) => run(() => this.get(key)),
      range: (key, options) => run(() => this.range(key, options)),
      put: (key, value, options) => run(() => this.put(key, value, options)),
      delete: (key, options) => run(() => this.delete(key, options)),
      txn: (request) => run(() => this.txn(request)),
      watch: (key, options, callbacks) => run(() => this.watch(key, options, callbacks)),
      grantLease: (ttlSeconds, options) => run(() => this.grantLease(ttlSeconds, options)),
      close: () => {},
    };
  }

  /** Installs the authenticator as the etcd3 connection pool's, so that every call and stream carries the scope's token. */
  private installAuthenticator(credentials: StoreCredentials | undefined): StoreAuthenticator {
    const pool = (this.client as unknown as { pool: PoolWithAuthenticator }).pool;
    const original = pool.authenticator;
    const auth = new StoreAuthenticator({
      ...(credentials === undefined ? {} : { credentials }),
      authenticate: async (name, password) => (await this.client.auth.authenticate({ name, password })).token,
      // Without the client's own auth option, its authenticator answers with a fresh empty metadata of its grpc-js.
      emptyMetadata: () => original.getMetadata(),
      nowMs: this.nowMs,
      requestTimeoutMs: this.requestTimeoutMs,
    });
    pool.authenticator = auth;
    return auth;
  }

  /** The location as text, for messages. */
  describe(): string {
    return formatStoreLocation(this.location);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    return (await this.range(key)).kvs[0];
  }

  range(key: string, options: RangeOptions = {}): Promise<RangeResult> {
    return this.call(`range ${key}`, async () => rangeResultOf(await this.client.kv.range(rangeRequest(key, options))));
  }

  put(key: string, value: string, options: PutOptions = {}): Promise<{ revision: bigint }> {
    return this.call(`put ${key}`, async () => {
      const request = { key: Buffer.from(key, 'utf8'), value: Buffer.from(value, 'utf8'), ...(options.lease !== undefined && options.lease !== 0n ? { lease: options.lease.toString() } : {}) };
      const response = await this.client.kv.put(request);
      return { revision: BigInt(response.header.revision) };
    });
  }

  delete(key: string, options: DeleteOptions = {}): Promise<{ revision: bigint; deleted: number }> {
    return this.call(`delete ${key}`, async () => {
      const end = rangeEndOf(key, options);
      const response = await this.client.kv.deleteRange(end === undefined ? { key: Buffer.from(key, 'utf8') } : { key: Buffer.from(key, 'utf8'), range_end: end });
      return { revision: BigInt(response.header.revision), deleted: Number(response.deleted) };
    });
  }

  txn(request: TxnRequest): Promise<TxnResult> {
    return this.call(`txn writing ${writtenKeys(request)}`, async () => {
      const response = await this.client.kv.txn({
        compare: request.compare.map(compareOf),
        success: request.success.map(requestOpOf),
        failure: (request.failure ?? []).map(requestOpOf),
      });
      const revision = BigInt(response.header.revision);
      const branch = response.succeeded ? request.success : (request.failure ?? []);
      const responses = response.responses ?? [];
      return { succeeded: response.succeeded, revision, results: branch.map((op, index) => opResultOf(op, responses[index] ?? ({} as IResponseOp), revision)) };
    });
  }

  async watch(key: string, options: WatchOptions, callbacks: WatchCallbacks): Promise<WatchHandle> {
    this.assertOpen();
    const watch = new EtcdWatch({ open: () => this.openWatchStream(), renewAfterRefusal: (token) => this.renewAfterRefusal(token) }, key, options, callbacks, () => this.watches.delete(watch));
    this.watches.add(watch);
    await watch.start(this.requestTimeoutMs);
    return watch;
  }

  async grantLease(ttlSeconds: number, options: LeaseOptions = {}): Promise<LeaseHandle> {
    this.assertOpen();
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`a lease TTL is a whole number of seconds, at least 1; got ${ttlSeconds}`);
    const sentAtMs = this.nowMs();
    const granted = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    const lease = new EtcdLease(this.client.leaseClient, {
      revoke: (id) => this.call(`revoke of lease ${id.toString(16)}`, () => this.client.leaseClient.leaseRevoke({ ID: id.toString() })).then(() => undefined),
      id: BigInt(granted.ID),
      ttlSeconds: Number(granted.TTL),
      grantedAtMs: sentAtMs,
      nowMs: this.nowMs,
      requestTimeoutMs: this.requestTimeoutMs,
      onEnd: () => this.leases.delete(lease),
    });
    this.leases.add(lease);
    if (options.keepAlive !== false) lease.startKeepAlive();
    return lease;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const lease of [...this.leases]) lease.release();
    for (const watch of [...this.watches]) void watch.cancel();
    this.client.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new CoordError('CONCORD_E_STORE_CLOSED', 'the store client is closed');
  }

  /** One request: in its own authentication scope, retried once when the store refused this client's token and a new one was obtained. */
  private call<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.auth.run(async () => {
      for (let renewed = false; ; renewed = true) {
        try {
          return await run();
        } catch (error) {
          if (this.auth.renewAfter(error, renewed)) continue;
          const user = this.auth.actingUser();
          throw toCoordError(this.auth.describeRefusal(error), `${what} on ${this.describe()}${user === undefined ? '' : ` as user '${user}'`}`, this.requestTimeoutMs);
        }
      }
    });
  }

  /** Opens a watch stream in the caller's identity; returns the token it was opened with. */
  private openWatchStream(): Promise<{ stream: Awaited<ReturnType<Etcd3['watchClient']['watch']>>; token: string | undefined }> {
    return this.auth.run(async () => ({ stream: await this.client.watchClient.watch(), token: this.auth.sentToken() }));
  }

  /** A watch opened with `token` was refused: worth one more try when this client has credentials and the token was its own. */
  private renewAfterRefusal(token: string | undefined): boolean {
    if (this.auth.user === undefined || token === undefined) return false;
    // '' too: the stream went without a token while the store had auth off; it has it on now.
    this.auth.forget(token);
    return true;
  }
}

/** The keys a transaction may write, for messages (a permission refusal names them). */
function writtenKeys(request: TxnRequest): string {
  const keys = [...request.success, ...(request.failure ?? [])].filter((op) => op.kind !== 'range').map((op) => op.key);
  return keys.length === 0 ? '(nothing)' : [...new Set(keys)].join(', ');
}

function readCredentials(location: StoreLocation): { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer } {
  const tls = location.tls!;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new CoordError('CONCORD_E_STORE_URL_INVALID', `cannot read the ${what} ${file}: ${(error as Error).message}`);
    }
  };
  // gRPC takes no root certificate as "the system's trusted roots"; the etcd3 client's type wants one.
  const credentials: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer } = {
    rootCertificate: tls.caFile === undefined ? (undefined as unknown as Buffer) : read(tls.caFile, 'CA certificate (--cacert)'),
  };
  if (tls.certFile !== undefined) credentials.certChain = read(tls.certFile, 'client certificate (--cert)');
  if (tls.keyFile !== undefined) credentials.privateKey = read(tls.keyFile, 'client key (--key)');
  return credentials;
}
