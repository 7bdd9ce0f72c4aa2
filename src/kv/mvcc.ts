// The multi-version key-value store with etcd v3 semantics (server/storage/mvcc):
// * The revision counter starts at 1; every write transaction that changes something takes the
//   next revision, and all its changes share it, with increasing sub-revisions. A write that
//   changes nothing (deleting absent keys, a txn of reads) leaves the revision where it was.
// * Reads never change the revision; they may read any revision from the compact revision on.
// * Compaction forgets what no read at or after the compact revision can see.
// Everything is synchronous and deterministic: the same commands give every member the same state.
//
// Results share the store's KeyValue objects: callers must treat them as read-only.

import type {
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKvResponse,
  KeyValue,
  KvEvent,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './types.ts';
import { EMPTY_VALUE } from './types.ts';
import type { KeyRange } from './key-range.ts';
import { keyRangeOf, toByteString } from './key-range.ts';
import type { KeyHistory, KeyRevision } from './key-index.ts';
import { KeyIndex } from './key-index.ts';
import type { MvccState } from './mvcc-state.ts';
import type { KvSnapshotCapture } from './kv-snapshot.ts';
import { KvBugError, KvError, checkSafeInteger } from './errors.ts';
import { DEFAULT_MAX_TXN_OPS, checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxn } from './request-check.ts';
import { selectRange } from './range-query.ts';
import { compareSucceeds } from './compare.ts';
import { changeSizeBytes } from './quota.ts';
import { ByteWriter } from './binary.ts';
import { crc32cUpdate } from './crc32c.ts';
import { tombstoneKv, writeKeyHistory } from './history-codec.ts';
import { INITIAL_REVISION, checkStateShape, rebuildLog } from './mvcc-state.ts';
import { ChangeLog, withPrevious } from './change-log.ts';


export interface MvccStoreOptions {
  /** etcd's --max-txn-ops: operations per txn branch. Default 128. */
  maxTxnOps?: number;
  /** Whether a lease exists. A put naming any other lease fails with LEASE_NOT_FOUND. Default: no lease exists. */
  leaseExists?: (id: bigint) => boolean;
}

/**
 * What the store does with the bytes of a put's value: 'copy' them (the caller may change its
 * array afterwards), or 'adopt' them as they are when the caller guarantees they never change
 * (a value decoded as a view of a log entry) and keeping them holds no much larger buffer alive.
 */
export type ValueOwnership = 'copy' | 'adopt';

/**
 * An adopted value may keep at most this much more than itself alive (plus twice its own size):
 * the rest of its log entry, never a WAL segment, a network frame or Node's shared Buffer pool.
 */
const MAX_ADOPTED_OVERHEAD_BYTES = 256;

/** A write in progress: everything it changes shares one main revision. */
interface PendingWrite {
  main: number;
  events: KvEvent[];
  touched: KeyHistory[];
  values: ValueOwnership;
}

/** Which branch each txn (and, in order, each nested txn of that branch) takes. */
interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

export type { MvccState } from './mvcc-state.ts';
export { INITIAL_REVISION } from './mvcc-state.ts';

export class MvccStore {
  private revision = INITIAL_REVISION;
  /** 0 until the first compaction. Reads below it fail with COMPACTED. */
  private compacted = 0;
  private readonly index = new KeyIndex();
  /** Which keys each revision from the compact revision on changed, for watchers. */
  private log = new ChangeLog(INITIAL_REVISION + 1);
  /**
   * The events of the current revision as the write made them (undefined after a compaction):
   * every applied write asks for them at least once, so they are not rebuilt from the log.
   */
  private latestEvents: readonly KvEvent[] | undefined;
  private size = 0;
  private readonly maxTxnOps: number;
  private readonly leaseExists: (id: bigint) => boolean;

  constructor(options: MvccStoreOptions = {}) {
    this.maxTxnOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    if (!Number.isSafeInteger(this.maxTxnOps) || this.maxTxnOps < 1) {
      throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `maxTxnOps must be a positive integer, got ${this.maxTxnOps}`);
    }
    this.leaseExists = options.leaseExists ?? (() => false);
  }

  get currentRevision(): number {
    return this.revision;
  }

  get compactRevision(): number {
    return this.compacted;
  }

  /** Estimated bytes of retained history (etcd's quota cost model), for the quota and size metrics. */
  sizeBytes(): number {
    return this.size;
  }

  range(request: RangeRequest): RangeResponse {
    checkRangeRequest(request);
    return this.rangeAt(request, this.revision);
  }

  /** The key as of `revision` (0 = current); a convenience over range for single keys. */
  get(key: Uint8Array, revision = 0): KeyValue | undefined {
    return this.range({ key, revision }).kvs[0];
  }

  put(request: PutRequest, values: ValueOwnership = 'copy'): PutResponse {
    checkPutRequest(request);
    // etcd's Put looks the lease up first, then whether ignoreValue/ignoreLease find the key.
    this.checkLease(request);
    this.checkIgnoreFlags(request, this.revision);
    return this.write((pending) => this.applyPut(pending, request), values);
  }

  deleteRange(request: DeleteRangeRequest): DeleteRangeResponse {
    checkDeleteRequest(request);
    return this.write((pending) => this.applyDelete(pending, request), 'copy');
  }

  /**
   * Compares and the checks of the chosen branch run against the state before the txn; the
   * operations then run in order, each seeing the effects of those before it (as in etcd). A txn
   * that fails a check changes nothing.
   */
  txn(request: TxnRequest, values: ValueOwnership = 'copy'): TxnResponse {
    checkTxn(request, this.maxTxnOps);
    const path = this.evaluatePath(request, this.revision);
    this.checkPath(request, path, this.revision);
    const response = this.write((pending) => this.executeTxn(pending, request, path), values);
    response.header.revision = this.revision;
    return response;
  }

  /**
   * Deletes the given keys in one revision, in ascending key order: how a lease revoke removes its
   * keys (etcd sorts them so that every member writes the same sub-revisions).
   */
  deleteKeys(keys: readonly Uint8Array[]): { revision: number; deleted: number } {
    const unique = [...new Set(keys.map(toByteString))].sort();
    return this.write((pending) => {
      let deleted = 0;
      for (const key of unique) deleted += this.deleteInRange(pending, { kind: 'single', key }).length;
      return { revision: this.readRevisionOf(pending), deleted };
    }, 'copy');
  }

  /**
   * Forgets every change that no read at or after `revision` can see. etcd refuses a revision at or
   * below the current compact revision (COMPACTED) and one above the current revision (FUTURE).
   * Compaction does not change the current revision.
   */
  compact(revision: number): CompactionResponse {
    checkSafeInteger(revision, 'compact revision');
    if (revision <= this.compacted) {
      throw new KvError('CONCORD_E_KV_COMPACTED', `compact to ${revision}, already compacted to ${this.compacted}`);
    }
    if (revision > this.revision) {
      throw new KvError('CONCORD_E_KV_FUTURE_REVISION', `compact to ${revision}, current revision ${this.revision}`);
    }
    for (const change of this.index.compact(revision)) this.size -= changeSizeBytes(change.kv);
    // Changes at the compact revision lose what they replaced (see change-log.ts): rebuilt on demand.
    this.log.dropBefore(revision);
    this.latestEvents = undefined;
    this.compacted = revision;
    return { header: { revision: this.revision } };
  }

  /**
   * A CRC-32C of the compact revision and every retained change up to `revision` (0 = current), in
   * key then revision order: members that applied the same commands get the same hash
   * (Maintenance.HashKV), and a member whose history diverged gets another.
   */
  hashKv(revision = 0): HashKvResponse {
    checkSafeInteger(revision, 'hash revision');
    const hashRevision = this.readRevision(revision, this.revision);
    const header = new ByteWriter();
    header.uvarint(this.compacted);
    let hash = crc32cUpdate(0, header.finish());
    for (const history of this.index.all()) {
      const upTo = history.revisions.slice(0, history.positionAt(hashRevision) + 1);
      if (upTo.length === 0) continue;
      const writer = new ByteWriter();
      writeKeyHistory(writer, history.key, upTo);
      hash = crc32cUpdate(hash, writer.finish());
    }
    return { header: { revision: this.revision }, hash, compactRevision: this.compacted, hashRevision };
  }

  /**
   * The changes made at `revision`, in sub-revision order, each with the key's previous state when
   * that is still retained. Changes at the compact revision lose their previous state, which the
   * compaction removed. Revision 1 (the initial state) has no changes.
   */
  eventsAt(revision: number): readonly KvEvent[] {
    if (revision < this.compacted) throw new KvError('CONCORD_E_KV_COMPACTED', `events at ${revision}`);
    if (revision > this.revision) throw new KvError('CONCORD_E_KV_FUTURE_REVISION', `events at ${revision}`);
    if (revision < this.log.start) return [];
    if (revision === this.revision && this.latestEvents !== undefined) return this.latestEvents;
    const events = this.log.eventsAt(revision);
    if (events === undefined) throw new KvBugError(`no log for revision ${revision} (log starts at ${this.log.start})`);
    return events;
  }

  /** The state now, without copying histories (see KvSnapshotCapture for why that is safe). */
  captureState(): Pick<KvSnapshotCapture, 'revision' | 'compactRevision' | 'keys'> {
    const keys = [...this.index.all()].map((history) => ({ key: history.key, revisions: history.revisions, count: history.revisions.length }));
    return { revision: this.revision, compactRevision: this.compacted, keys };
  }

  exportState(): MvccState {
    const keys = [...this.index.all()].map((history) => ({ key: history.key, revisions: [...history.revisions] }));
    return { revision: this.revision, compactRevision: this.compacted, keys };
  }

  /** Rebuilds a store from exported state, checking every invariant the store relies on. */
  static fromState(state: MvccState, options: MvccStoreOptions = {}): MvccStore {
    // Validated first: a snapshot from outside must not break the index's invariants.
    checkStateShape(state);
    const store = new MvccStore(options);
    store.revision = state.revision;
    store.compacted = state.compactRevision;
    const logStart = Math.max(INITIAL_REVISION + 1, state.compactRevision);
    const changesByRevision = new Map<number, { change: KeyRevision; history: KeyHistory }[]>();
    for (const { key, revisions } of state.keys) {
      const history = store.index.getOrCreate(key, toByteString(key));
      for (const change of revisions) {
        history.append(change);
        store.size += changeSizeBytes(change.kv);
        if (change.main < logStart) continue;
        const atRevision = changesByRevision.get(change.main) ?? [];
        atRevision.push({ change, history });
        changesByRevision.set(change.main, atRevision);
      }
    }
    store.log = new ChangeLog(logStart, rebuildLog(changesByRevision, logStart, state.revision));
    return store;
  }

  // --- reads --------------------------------------------------------------------------------

  private rangeAt(request: RangeRequest, currentRevision: number): RangeResponse {
    const readRevision = this.readRevision(request.revision ?? 0, currentRevision);
    const visible = this.visibleKvs(keyRangeOf(request.key, request.rangeEnd), readRevision);
    return { header: { revision: currentRevision }, ...selectRange(visible, request) };
  }

  /** etcd's rangeKeys: a revision above the current one is FUTURE, 0 or below means current. */
  private readRevision(requested: number, currentRevision: number): number {
    if (requested > currentRevision) {
      throw new KvError('CONCORD_E_KV_FUTURE_REVISION', `revision ${requested}, current ${currentRevision}`);
    }
    const revision = requested > 0 ? requested : currentRevision;
    if (revision < this.compacted) {
      throw new KvError('CONCORD_E_KV_COMPACTED', `revision ${revision}, compacted to ${this.compacted}`);
    }
    return revision;
  }

  private visibleKvs(range: KeyRange, revision: number): KeyValue[] {
    const kvs: KeyValue[] = [];
    for (const history of this.index.inRange(range)) {
      const kv = history.visibleAt(revision);
      if (kv !== undefined) kvs.push(kv);
    }
    return kvs;
  }

  // --- checks made before a write -----------------------------------------------------------

  private checkLease(request: PutRequest): void {
    const lease = request.lease ?? 0n;
    if (lease !== 0n && !this.leaseExists(lease)) {
      throw new KvError('CONCORD_E_LEASE_NOT_FOUND', `lease ${lease}`);
    }
  }

  /** ignoreValue and ignoreLease keep what the key has, so the key must exist. */
  private checkIgnoreFlags(request: PutRequest, revision: number): void {
    if (request.ignoreValue !== true && request.ignoreLease !== true) return;
    const history = this.index.get(toByteString(request.key));
    if (history?.visibleAt(revision) === undefined) throw new KvError('CONCORD_E_KV_KEY_NOT_FOUND');
  }

  private evaluatePath(request: TxnRequest, revision: number): TxnPath {
    const succeeded = (request.compare ?? []).every((compare) =>
      compareSucceeds(compare, this.visibleKvs(keyRangeOf(compare.key, compare.rangeEnd), revision)),
    );
    const ops = (succeeded ? request.success : request.failure) ?? [];
    const nested = ops.flatMap((op) => (op.type === 'txn' ? [this.evaluatePath(op.request, revision)] : []));
    return { succeeded, nested };
  }

  /** etcd's checkTxn: the chosen branch's reads and puts are checked before anything is written. */
  private checkPath(request: TxnRequest, path: TxnPath, revision: number): void {
    const ops = (path.succeeded ? request.success : request.failure) ?? [];
    let nested = 0;
    for (const op of ops) {
      if (op.type === 'range') this.readRevision(op.request.revision ?? 0, revision);
      if (op.type === 'put') {
        this.checkIgnoreFlags(op.request, revision);
        this.checkLease(op.request);
      }
      if (op.type === 'txn') this.checkPath(op.request, path.nested[nested++]!, revision);
    }
  }

  // --- writes -------------------------------------------------------------------------------

  /** Runs `body` as one write transaction; if it throws, every change it made is undone. */
  private write<T>(body: (pending: PendingWrite) => T, values: ValueOwnership): T {
    const pending: PendingWrite = { main: this.revision + 1, events: [], touched: [], values };
    let result: T;
    try {
      result = body(pending);
    } catch (error) {
      this.rollback(pending);
      throw error;
    }
    if (pending.events.length > 0) {
      this.revision = pending.main;
      this.log.append(pending.touched);
      this.latestEvents = pending.events;
    }
    return result;
  }

  private rollback(pending: PendingWrite): void {
    for (const history of pending.touched) {
      const last = history.revisions[history.revisions.length - 1];
      if (last?.main !== pending.main) continue;
      history.revisions.pop();
      this.size -= changeSizeBytes(last.kv);
      this.index.removeIfEmpty(history);
    }
  }

  /**
   * Reads inside a write see its own changes, as etcd's storeTxnWrite.Range does; the same number
   * is the revision a write reports: the new one once it changed something, else the current one.
   */
  private readRevisionOf(pending: PendingWrite): number {
    return pending.events.length > 0 ? pending.main : pending.main - 1;
  }

  private record(pending: PendingWrite, history: KeyHistory, change: KeyRevision, event: KvEvent): void {
    history.append(change);
    pending.touched.push(history);
    pending.events.push(event);
    this.size += changeSizeBytes(change.kv);
  }

  private applyPut(pending: PendingWrite, request: PutRequest): PutResponse {
    const keyString = toByteString(request.key);
    const existing = this.index.get(keyString);
    const previous = existing?.visibleAt(this.readRevisionOf(pending));
    if ((request.ignoreValue === true || request.ignoreLease === true) && previous === undefined) {
      throw new KvError('CONCORD_E_KV_KEY_NOT_FOUND');
    }
    // The key is copied only for a new key: an existing one keeps the bytes it was created with.
    const history = existing ?? this.index.getOrCreate(request.key.slice(), keyString);
    const kv: KeyValue = {
      key: history.key,
      value: request.ignoreValue === true ? previous!.value : keptValue(request.value ?? EMPTY_VALUE, pending.values),
      createRevision: previous?.createRevision ?? pending.main,
      modRevision: pending.main,
      version: (previous?.version ?? 0) + 1,
      lease: request.ignoreLease === true ? previous!.lease : (request.lease ?? 0n),
    };
    const change = { main: pending.main, sub: pending.events.length, kv, tombstone: false };
    this.record(pending, history, change, withPrevious({ type: 'put', kv }, previous));
    const response: PutResponse = { header: { revision: pending.main } };
    if (request.prevKv === true && previous !== undefined) response.prevKv = previous;
    return response;
  }

  private applyDelete(pending: PendingWrite, request: DeleteRangeRequest): DeleteRangeResponse {
    const deleted = this.deleteInRange(pending, keyRangeOf(request.key, request.rangeEnd));
    return {
      header: { revision: this.readRevisionOf(pending) },
      deleted: deleted.length,
      prevKvs: request.prevKv === true ? deleted : [],
    };
  }

  /** Writes a tombstone for every key visible in the range; returns what they held. */
  private deleteInRange(pending: PendingWrite, range: KeyRange): KeyValue[] {
    const readRevision = this.readRevisionOf(pending);
    const victims: { history: KeyHistory; previous: KeyValue }[] = [];
    for (const history of this.index.inRange(range)) {
      const previous = history.visibleAt(readRevision);
      if (previous !== undefined) victims.push({ history, previous });
    }
    for (const { history, previous } of victims) {
      const kv = tombstoneKv(history.key, pending.main);
      const change = { main: pending.main, sub: pending.events.length, kv, tombstone: true };
      this.record(pending, history, change, { type: 'delete', kv, prevKv: previous });
    }
    return victims.map((victim) => victim.previous);
  }

  private executeTxn(pending: PendingWrite, request: TxnRequest, path: TxnPath): TxnResponse {
    const ops = (path.succeeded ? request.success : request.failure) ?? [];
    let nested = 0;
    const responses = ops.map((op) => this.executeOp(pending, op, () => path.nested[nested++]!));
    // etcd fills only the outermost txn's header; nested txn responses carry revision 0.
    return { header: { revision: 0 }, succeeded: path.succeeded, responses };
  }

  private executeOp(pending: PendingWrite, op: RequestOp, nextPath: () => TxnPath): ResponseOp {
    switch (op.type) {
      case 'range':
        return { type: 'range', response: this.rangeAt(op.request, this.readRevisionOf(pending)) };
      case 'put':
        return { type: 'put', response: this.applyPut(pending, op.request) };
      case 'deleteRange':
        return { type: 'deleteRange', response: this.applyDelete(pending, op.request) };
      case 'txn':
        return { type: 'txn', response: this.executeTxn(pending, op.request, nextPath()) };
    }
  }
}

/** The value as the store keeps it: adopted when that is allowed and pins little, else a copy. */
function keptValue(value: Uint8Array, values: ValueOwnership): Uint8Array {
  const pinnedBytes = value.buffer.byteLength;
  if (values === 'adopt' && pinnedBytes <= 2 * value.byteLength + MAX_ADOPTED_OVERHEAD_BYTES) return value;
  return value.slice();
}
