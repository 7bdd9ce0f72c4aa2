// Election and lock, the recipes of etcd's own client (clientv3/concurrency), on any CoordStore.
//
// Both queue the same way. A contender writes `<prefix><lease ID in hex>` attached to its lease,
// only if that key does not exist yet (a retried campaign finds its own key). The store gives the
// key a create revision, which orders the queue: the contender whose key has the lowest create
// revision holds the lock or leads. Everyone else watches the key just ahead of its own and, when
// that is deleted (released, resigned, or its lease expired), looks again. Nobody polls, and a
// release wakes one contender, not all of them.
//
// The create revision is the fencing token: it grows with every new holder, and a transaction that
// compares `create(key) = token` succeeds only while that holder's key still exists (a deleted key
// has create revision 0). Leading is a fact in the store, not a belief in the process.

import { CoordError, type CoordStore, type KeyValue, type LeaseHandle } from './coord-store.ts';

/** A turn at the head of a queue: the key held and its create revision (the fencing token). */
export interface QueueTurn {
  key: string;
  /** The key's create revision: the fencing token of this holder. */
  token: bigint;
  lease: LeaseHandle;
}

export class RecipeAbortedError extends Error {
  override name = 'RecipeAbortedError';
}

function checkPrefix(prefix: string): void {
  if (!prefix.endsWith('/')) throw new RangeError(`a recipe prefix ends with '/', got '${prefix}'`);
}

/** Writes this contender's key (unless a retry finds it there) and returns its create revision. */
async function enqueue(store: CoordStore, key: string, value: string, lease: LeaseHandle): Promise<bigint> {
  const result = await store.txn({
    compare: [{ key, target: 'create', result: '=', value: 0n }],
    success: [{ kind: 'put', key, value, lease: lease.id }],
    failure: [{ kind: 'range', key }],
  });
  if (result.succeeded) return result.revision;
  const existing = result.results[0]?.kind === 'range' ? result.results[0].result.kvs[0] : undefined;
  if (existing === undefined) throw new CoordError('CONCORD_E_STORE_REQUEST_FAILED', `${key} vanished while it was being created; try again`);
  if (existing.value !== value) await store.put(key, value, { lease: lease.id });
  return existing.createRevision;
}

/** Resolves once `key` is deleted, watching from `fromRevision` (so a deletion in between is seen). */
function deletion(store: CoordStore, key: string, fromRevision: bigint, abort: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      abort.removeEventListener('abort', onAbort);
      void handle.then((watch) => watch.cancel(), () => undefined);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => finish(new RecipeAbortedError('stopped waiting'));
    abort.addEventListener('abort', onAbort);
    const handle = store.watch(key, { fromRevision }, {
      onEvents: (events) => {
        if (events.some((event) => event.type === 'delete')) finish();
      },
      // A compacted history: the caller looks at the queue again.
      onError: () => finish(),
    });
    handle.catch((error: unknown) => (error instanceof CoordError && error.code === 'CONCORD_E_STORE_COMPACTED' ? finish() : finish(error)));
    if (abort.aborted) onAbort();
  });
}

/** Waits until no key under the prefix was created before `token`. */
async function waitForTurn(store: CoordStore, prefix: string, token: bigint, lease: LeaseHandle, abort: AbortSignal): Promise<void> {
  while (true) {
    if (abort.aborted) throw new RecipeAbortedError('stopped waiting');
    if (!lease.alive()) throw new CoordError('CONCORD_E_STORE_LEASE_LOST', `the lease ${lease.id.toString(16)} of the contender at revision ${token} is lost`);
    const ahead = await store.range(prefix, { prefix: true, maxCreateRevision: token - 1n, sort: { target: 'create', order: 'descend' }, limit: 1 });
    const predecessor = ahead.kvs[0];
    if (predecessor === undefined) return;
    await deletion(store, predecessor.key, ahead.revision + 1n, abort);
  }
}

/** Joins the queue under `prefix` and resolves at the head of it. */
async function takeTurn(store: CoordStore, prefix: string, value: string, lease: LeaseHandle, signal?: AbortSignal): Promise<QueueTurn> {
  checkPrefix(prefix);
  const key = `${prefix}${lease.id.toString(16)}`;
  const token = await enqueue(store, key, value, lease);
  // Lease loss or the caller's signal stops the wait; either way the key leaves the queue.
  const stop = new AbortController();
  const onLost = () => stop.abort();
  lease.onLost(onLost);
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort);
  try {
    await waitForTurn(store, prefix, token, lease, stop.signal);
    return { key, token, lease };
  } catch (error) {
    await store.delete(key).catch(() => undefined);
    if (!lease.alive()) throw new CoordError('CONCORD_E_STORE_LEASE_LOST', `the lease ${lease.id.toString(16)} was lost while waiting for ${prefix}`);
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Gives up a turn: deletes the key only if it is still this holder's (same create revision). */
async function leaveTurn(store: CoordStore, turn: QueueTurn): Promise<boolean> {
  const result = await store.txn({ compare: [{ key: turn.key, target: 'create', result: '=', value: turn.token }], success: [{ kind: 'delete', key: turn.key }] });
  return result.succeeded;
}

/** Leader election under a prefix (`/concord/autoscale/leader/`). */
export class Election {
  readonly prefix: string;
  private readonly store: CoordStore;

  constructor(store: CoordStore, prefix: string) {
    checkPrefix(prefix);
    this.store = store;
    this.prefix = prefix;
  }

  /** Resolves once this contender leads; `value` is what observers see (who leads). */
  campaign(lease: LeaseHandle, value: string, signal?: AbortSignal): Promise<QueueTurn> {
    return takeTurn(this.store, this.prefix, value, lease, signal);
  }

  /** Steps down; false when the key was gone already (the lease expired: someone else may lead). */
  resign(leadership: QueueTurn): Promise<boolean> {
    return leaveTurn(this.store, leadership);
  }

  /** The current leader's key (its value, and its create revision: the leader's fencing token). */
  async leader(): Promise<KeyValue | undefined> {
    return (await this.store.range(this.prefix, { prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 })).kvs[0];
  }

  /** Whether `leadership` is still the leader's key in the store. */
  async isLeader(leadership: QueueTurn): Promise<boolean> {
    const leader = await this.leader();
    return leader !== undefined && leader.key === leadership.key && leader.createRevision === leadership.token;
  }
}

/** A mutual-exclusion lock under a prefix. */
export class Lock {
  readonly prefix: string;
  private readonly store: CoordStore;

  constructor(store: CoordStore, prefix: string) {
    checkPrefix(prefix);
    this.store = store;
    this.prefix = prefix;
  }

  /** Resolves once the lock is held. */
  acquire(lease: LeaseHandle, signal?: AbortSignal, owner = ''): Promise<QueueTurn> {
    return takeTurn(this.store, this.prefix, owner, lease, signal);
  }

  release(held: QueueTurn): Promise<boolean> {
    return leaveTurn(this.store, held);
  }
}
