// etcd's Lock service (v3lockpb) over a Concord member, built as etcd's server builds it: on the
// key-value store and leases, with the recipe of clientv3's concurrency.Mutex.
//
// Lock(name, lease) puts the key `name/<lease in hex>` with the lease (or finds it, if this lease
// already queued for the lock), then waits until no key under `name/` has a lower create revision:
// the oldest waiter holds the lock. Waiting means waiting for the deletion of the newest key
// created before ours, again and again; deletions are learnt from the applied commands
// (context.events.onApplied), not by polling. Unlock(key) deletes the key, and so does the expiry or
// revoke of the lease, which hands the lock to the next waiter.
//
// A waiting Lock ends with the caller's deadline or cancellation, and with the server's stop; its
// key is then deleted so it does not block the waiters behind it (as etcd does). As in etcd, lease 0
// means "make a session for me": a lease with a 60 s TTL is granted and never kept alive.
//
// The waiting machinery lives here and is shared with the Election service, which waits for its
// predecessors in the same way (etcd's concurrency package shares waitDeletes the same way).
//
// Every write runs as the calling user (etcd's lock server calls its own KV service with the
// caller's context), so with auth on the user needs write permission on the lock's key and read
// permission on the lock's prefix (the txn reads it), checked when the writes are applied.

import { status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import { isKvError } from '../../kv/errors.ts';
import { prefixRangeEnd, toByteString } from '../../kv/key-range.ts';
import { LeaseIdGenerator } from '../../kv/lease.ts';
import type { ApplyResult } from '../../kv/state-machine.ts';
import type { KeyValue, RangeRequest, RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse } from '../../kv/types.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import { grpcError, toServiceError } from './grpc-errors.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { bigintFromWire, header } from './wire.ts';
import type { WireInt64 } from './wire.ts';

/** The TTL of the lease granted for a request that names lease 0 (etcd's defaultSessionTTL). */
export const SESSION_TTL_SECONDS = 60;
/** Calls in progress at once per service (Lock and Campaign wait); more are refused with "too many requests". */
export const MAX_WAITING_CALLS = 10_000;
/** Fresh lease IDs tried for a session lease before giving up (each collision is with a live lease). */
const SESSION_LEASE_ATTEMPTS_MAX = 8;
/**
 * Session lease IDs come from the same kind of generator as the Lease service's (member bits, then
 * milliseconds and a counter that count up together), started half the 40-bit millisecond space
 * (about 17 years) away from it: the two sequences cannot meet, so a session lease never takes the
 * ID the Lease service hands out next (which would fail a client's LeaseGrant).
 */
const SESSION_LEASE_ID_OFFSET_MS = 2 ** 39;

const SLASH = new Uint8Array([0x2f]);
const EMPTY = new Uint8Array(0);

export function lockService(context: EtcdServiceContext, auth: AuthGate): UntypedServiceImplementation {
  const waits = new PredecessorWaits(context);
  const sessions = sessionLeasesOf(context);
  return {
    Lock: waits.unary(async (wire: { name?: Uint8Array; lease?: WireInt64 }, signal, caller) => {
      const requester = auth.requester(caller);
      const prefix = concat(wire.name ?? EMPTY, SLASH);
      const lease = await sessions.leaseFor(bigintFromWire(wire.lease, 'lease'), requester);
      const myKey = concat(prefix, new TextEncoder().encode(lease.toString(16)));
      const queued = await txn(context, {
        compare: [{ target: 'create', key: myKey, result: 'equal', createRevision: 0 }],
        success: [{ type: 'put', request: { key: myKey, value: EMPTY, lease } }, firstCreated(prefix)],
        // This lease queued for the lock before: keep its place in line.
        failure: [{ type: 'range', request: { key: myKey } }, firstCreated(prefix)],
      }, requester);
      const myRevision = queued.succeeded ? queued.header.revision : onlyKv(queued.responses[0]).createRevision;
      const owner = rangeOf(queued.responses[1]).kvs[0];
      if (owner === undefined || owner.createRevision === myRevision) return { header: header(context.headers, queued.header.revision), key: myKey };
      try {
        await waits.waitDeletes(prefix, myRevision - 1, signal);
      } catch (error) {
        await deleteQuietly(context, myKey, requester); // leave the line, so the waiters behind do not wait for us
        throw error;
      }
      // Our lease may have expired while we waited: then the key is gone and the lock is not ours.
      const mine = context.stateMachine().range({ key: myKey });
      if (mine.kvs[0]?.createRevision !== myRevision) throw grpcError(status.UNKNOWN, 'mutex: session is expired');
      return { header: header(context.headers, mine.header.revision), key: myKey };
    }),
    Unlock: waits.unary(async (wire: { key?: Uint8Array }, _signal, caller) => {
      const response = await context.backend.write({ type: 'deleteRange', request: { key: wire.key ?? EMPTY } }, auth.requester(caller));
      if (response.type !== 'deleteRange') throw new Error(`bug: a delete answered with a ${response.type} response`);
      return { header: header(context.headers, response.response.header.revision) };
    }),
  };
}

// ---- Waiting for predecessors ----

/**
 * Calls that wait (Lock, Campaign), each with an AbortSignal that fires on the call's cancellation
 * or deadline and on the server's stop; and the waits themselves, woken by the applied deletions of
 * the keys they wait for.
 */
export class PredecessorWaits {
  private readonly context: EtcdServiceContext;
  /** Wake-ups by the key (as a byte string) whose deletion they wait for. */
  private readonly wakeUps = new Map<string, Set<() => void>>();
  private readonly calls = new Set<AbortController>();
  private stopped = false;

  constructor(context: EtcdServiceContext) {
    this.context = context;
    const unsubscribes = [
      context.events.onApplied((result) => this.applied(result)),
      // A snapshot from the leader replaced the state: any key may be gone, look again.
      context.events.onRestored(() => this.wakeAll()),
    ];
    context.onStop(() => {
      this.stopped = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      for (const call of this.calls) call.abort(serverStopped());
    });
  }

  /** A unary handler whose body gets a signal that ends its waits; errors become gRPC statuses. */
  unary<Request>(handle: (request: Request, signal: AbortSignal, caller: CallIdentity) => Promise<unknown>) {
    return (call: ServerUnaryCall<Request, unknown>, callback: sendUnaryData<unknown>): void => {
      this.withSignal(call, (signal) => handle(call.request, signal, call)).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error)),
      );
    };
  }

  private async withSignal<T>(call: ServerUnaryCall<unknown, unknown>, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.stopped) throw serverStopped();
    if (this.calls.size >= MAX_WAITING_CALLS) {
      throw grpcError(status.RESOURCE_EXHAUSTED, `etcdserver: too many requests (more than ${MAX_WAITING_CALLS} waiting lock or election calls)`);
    }
    const controller = new AbortController();
    // grpc-js reports a client's cancellation and a passed deadline alike, as 'cancelled'.
    const onCancelled = () => controller.abort(grpcError(status.CANCELLED, 'context canceled'));
    call.once('cancelled', onCancelled);
    if (call.cancelled) onCancelled();
    this.calls.add(controller);
    try {
      return await body(controller.signal);
    } finally {
      this.calls.delete(controller);
      call.off('cancelled', onCancelled);
    }
  }

  /**
   * etcd's waitDeletes: returns once no key under `prefix` has a create revision at or below
   * `maxCreateRevision`, with the revision at which that was seen. It waits for the newest such key
   * to go, then looks again (an older one may still be there). Reads are local: the caller's own
   * write was applied here before it waits, so the local state is at least that recent.
   */
  async waitDeletes(prefix: Uint8Array, maxCreateRevision: number, signal: AbortSignal): Promise<number> {
    for (;;) {
      signal.throwIfAborted();
      const newest = this.context.stateMachine().range({
        key: prefix, rangeEnd: prefixRangeEnd(prefix), maxCreateRevision, sortTarget: 'create', sortOrder: 'descend', limit: 1,
      });
      const predecessor = newest.kvs[0];
      if (predecessor === undefined) return newest.header.revision;
      await this.waitGone(predecessor, signal);
    }
  }

  /** Resolves once `kv` (that key, in that generation) is no longer in the local state. */
  private waitGone(kv: KeyValue, signal: AbortSignal): Promise<void> {
    const name = toByteString(kv.key);
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: unknown) => {
        const wakeUps = this.wakeUps.get(name);
        wakeUps?.delete(check);
        if (wakeUps?.size === 0) this.wakeUps.delete(name);
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error as Error);
      };
      const check = () => {
        try {
          if (this.context.stateMachine().range({ key: kv.key }).kvs[0]?.createRevision !== kv.createRevision) finish();
        } catch (error) {
          finish(error); // e.g. the CORRUPT alarm stops all reads
        }
      };
      const onAbort = () => finish(signal.reason);
      let wakeUps = this.wakeUps.get(name);
      if (wakeUps === undefined) this.wakeUps.set(name, (wakeUps = new Set()));
      wakeUps.add(check);
      signal.addEventListener('abort', onAbort, { once: true });
      check(); // it may have gone between the caller's read and now
    });
  }

  private applied(result: ApplyResult): void {
    if (result.status !== 'applied' || this.wakeUps.size === 0) return;
    for (const event of result.events) {
      if (event.type !== 'delete') continue;
      const wakeUps = this.wakeUps.get(toByteString(event.kv.key));
      if (wakeUps !== undefined) for (const check of [...wakeUps]) check();
    }
  }

  private wakeAll(): void {
    for (const wakeUps of [...this.wakeUps.values()]) for (const check of [...wakeUps]) check();
  }
}

// ---- Sessions ----

const sessionLeasesByMember = new WeakMap<EtcdServiceContext, SessionLeases>();

/** The member's one SessionLeases, shared by the Lock and Election services so their IDs never collide. */
export function sessionLeasesOf(context: EtcdServiceContext): SessionLeases {
  let sessions = sessionLeasesByMember.get(context);
  if (sessions === undefined) sessionLeasesByMember.set(context, (sessions = new SessionLeases(context)));
  return sessions;
}

/**
 * The lease a lock or campaign key is attached to. A request's own lease is used as given (a put
 * with a lease that does not exist fails with etcd's "requested lease not found"); lease 0 gets a
 * new lease of SESSION_TTL_SECONDS that nobody keeps alive, as etcd's server makes for it.
 */
class SessionLeases {
  private readonly context: EtcdServiceContext;
  private readonly ids: LeaseIdGenerator;

  constructor(context: EtcdServiceContext) {
    this.context = context;
    this.ids = new LeaseIdGenerator(context.member.memberId, context.clock.nowMs() + SESSION_LEASE_ID_OFFSET_MS);
  }

  /** The session lease is granted for the caller (a grant needs no permission, as in etcd). */
  async leaseFor(requested: bigint, requester: Requester): Promise<bigint> {
    if (requested !== 0n) return requested;
    for (let attempt = 1; attempt <= SESSION_LEASE_ATTEMPTS_MAX; attempt++) {
      const id = this.ids.next();
      if (this.context.stateMachine().lease(id) !== undefined) continue;
      try {
        const result = await this.context.backend.write({ type: 'leaseGrant', request: { id, ttl: SESSION_TTL_SECONDS } }, requester);
        if (result.type !== 'leaseGrant') throw new Error(`bug: a lease grant answered with a ${result.type} response`);
        return result.response.id;
      } catch (error) {
        if (!isKvError(error, 'CONCORD_E_LEASE_EXISTS')) throw error; // another grant took the ID first
      }
    }
    throw grpcError(status.UNAVAILABLE, `concord: no free lease ID found for a session in ${SESSION_LEASE_ATTEMPTS_MAX} attempts; retry`);
  }
}

// ---- Key-value helpers shared with the Election service ----

export async function txn(context: EtcdServiceContext, request: TxnRequest, requester: Requester): Promise<TxnResponse> {
  const result = await context.backend.write({ type: 'txn', request }, requester);
  if (result.type !== 'txn') throw new Error(`bug: a txn answered with a ${result.type} response`);
  return result.response;
}

/** The key under `prefix` with the lowest create revision (clientv3.WithFirstCreate). */
export function firstCreated(prefix: Uint8Array): RequestOp {
  return { type: 'range', request: firstCreatedRequest(prefix) };
}

export function firstCreatedRequest(prefix: Uint8Array): RangeRequest {
  return { key: prefix, rangeEnd: prefixRangeEnd(prefix), sortTarget: 'create', sortOrder: 'ascend', limit: 1 };
}

export function rangeOf(op: ResponseOp | undefined): RangeResponse {
  if (op?.type !== 'range') throw new Error(`bug: expected a range response in the txn, got ${op?.type ?? 'none'}`);
  return op.response;
}

/** The one key a range found (a txn's failure branch reads a key its compare proved to exist). */
export function onlyKv(op: ResponseOp | undefined): KeyValue {
  const kv = rangeOf(op).kvs[0];
  if (kv === undefined) throw new Error('bug: the key the compare found is missing from the range');
  return kv;
}

/** Deletes a key, ignoring failures: used on the way out of a failed call, whose error matters more. */
export async function deleteQuietly(context: EtcdServiceContext, key: Uint8Array, requester: Requester): Promise<void> {
  try {
    await context.backend.write({ type: 'deleteRange', request: { key } }, requester);
  } catch {
    // The key stays until its lease ends; the caller's error is reported instead.
  }
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a, 0);
  joined.set(b, a.byteLength);
  return joined;
}

function serverStopped(): ServiceError {
  return grpcError(status.UNAVAILABLE, 'etcdserver: server stopped');
}

