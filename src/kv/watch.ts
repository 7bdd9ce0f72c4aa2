// Watch fan-out with etcd's semantics (server/storage/mvcc/watchable_store.go), as a pure core: it
// decides which responses go to which watcher and returns them; the gRPC shell sends them.
//
// A watcher is "synced" once it has seen every revision up to the store's; synced watchers get each
// newly applied revision's matching events from eventsApplied(). A watcher that starts in the past
// is "unsynced": catchUp() replays history to it in bounded batches, in revision order, until it is
// synced. A watcher whose next revision has been compacted away is cancelled with the compact
// revision, as etcd reports it in-band. Watch IDs are per stream, as in etcd.

import type { KvEvent, ResponseHeader } from './types.ts';
import type { KeyRange } from './key-range.ts';
import { keyInRange, keyRangeOf, toByteString } from './key-range.ts';
import { KvBugError, KvError } from './errors.ts';

/** What the hub needs from the store: MvccStore implements it. */
export interface WatchSource {
  readonly currentRevision: number;
  readonly compactRevision: number;
  eventsAt(revision: number): readonly KvEvent[];
}

export type WatchFilter = 'noPut' | 'noDelete';

/** etcd's AutoWatchID: the hub picks the stream's next free ID. */
export const AUTO_WATCH_ID = -1n;

export interface WatchCreateRequest {
  streamId: number;
  /** Absent or AUTO_WATCH_ID: the next free ID of the stream, counting from 0 as etcd does. */
  watchId?: bigint;
  key: Uint8Array;
  /** Same semantics as in a range: absent = one key, '\0' = from key on, else [key, rangeEnd). */
  rangeEnd?: Uint8Array;
  /** 0 or absent: from the next revision on. */
  startRevision?: number;
  prevKv?: boolean;
  filters?: WatchFilter[];
  progressNotify?: boolean;
}

/** etcdserverpb.WatchResponse, with the stream it belongs to. */
export interface WatchResponse {
  streamId: number;
  watchId: bigint;
  header: ResponseHeader;
  created: boolean;
  canceled: boolean;
  /** Non-zero when the watcher was cancelled because its start revision was compacted. */
  compactRevision: number;
  cancelReason: string;
  events: KvEvent[];
}

export interface WatchHubLimits {
  /** Watchers on this member, all streams together. */
  maxWatchers: number;
  maxWatchersPerStream: number;
  /** Unsynced watchers served by one catchUp() call (etcd's maxWatchersPerSync). */
  maxWatchersPerSync: number;
  /** Distinct revisions of events in one catch-up response (etcd's watchBatchMaxRevs). */
  maxEventRevisionsPerBatch: number;
  /** Revisions of history one watcher may scan per catchUp() call, matching or not. */
  maxScannedRevisionsPerSync: number;
}

export const DEFAULT_WATCH_HUB_LIMITS: WatchHubLimits = {
  maxWatchers: 100_000,
  maxWatchersPerStream: 10_000,
  maxWatchersPerSync: 512,
  maxEventRevisionsPerBatch: 1000,
  maxScannedRevisionsPerSync: 10_000,
};

interface Watcher {
  streamId: number;
  id: bigint;
  range: KeyRange;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  progressNotify: boolean;
  /** The first revision whose events this watcher has not been given (or, if later, its start). */
  nextRevision: number;
  synced: boolean;
}

export class WatchHub {
  private source: WatchSource;
  readonly limits: WatchHubLimits;
  private readonly streams = new Map<number, Map<bigint, Watcher>>();
  private readonly nextAutoIds = new Map<number, bigint>();
  /** In service order: a watcher that stays unsynced goes to the back. */
  private readonly unsynced = new Set<Watcher>();
  private readonly syncedByKey = new Map<string, Set<Watcher>>();
  private readonly syncedRanges = new Set<Watcher>();
  /** Every synced watcher has been given all matching events up to this revision. */
  private syncedThrough: number;
  private count = 0;

  constructor(source: WatchSource, limits: Partial<WatchHubLimits> = {}) {
    this.source = source;
    this.limits = { ...DEFAULT_WATCH_HUB_LIMITS, ...limits };
    this.syncedThrough = source.currentRevision;
  }

  get watcherCount(): number {
    return this.count;
  }

  /** Watchers of one stream. */
  streamWatcherCount(streamId: number): number {
    return this.streams.get(streamId)?.size ?? 0;
  }

  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  /** The "created" response; a refused watch is created and cancelled at once, as etcd does. */
  create(request: WatchCreateRequest): WatchResponse {
    const stream = this.streams.get(request.streamId) ?? new Map<bigint, Watcher>();
    const refusal = this.refusal(request, stream);
    if (refusal !== undefined) {
      return { ...this.response(request.streamId, -1n, this.source.currentRevision), created: true, canceled: true, cancelReason: refusal.message };
    }
    const watcher = this.newWatcher(request, stream);
    stream.set(watcher.id, watcher);
    this.streams.set(request.streamId, stream);
    this.count++;
    if (watcher.synced) this.addSynced(watcher);
    else this.unsynced.add(watcher);
    return { ...this.response(request.streamId, watcher.id, this.source.currentRevision), created: true };
  }

  cancel(streamId: number, watchId: bigint): WatchResponse | undefined {
    const watcher = this.streams.get(streamId)?.get(watchId);
    if (watcher === undefined) return undefined;
    this.remove(watcher);
    return { ...this.response(streamId, watchId, this.source.currentRevision), canceled: true };
  }

  /** The stream closed: forget its watchers without answering. Returns how many there were. */
  closeStream(streamId: number): number {
    const watchers = [...(this.streams.get(streamId)?.values() ?? [])];
    for (const watcher of watchers) this.remove(watcher);
    this.nextAutoIds.delete(streamId);
    return watchers.length;
  }

  /**
   * The store applied `revision` with these changes: responses for the synced watchers they match.
   * Call once per revision, in order. A skipped revision (the shell missed one, or the store jumped
   * ahead) is not an error: synced watchers then catch up from history instead.
   */
  eventsApplied(revision: number, events: readonly KvEvent[]): WatchResponse[] {
    if (revision > this.source.currentRevision) {
      throw new KvBugError(`events of revision ${revision} announced before the store reached it`);
    }
    if (revision <= this.syncedThrough) return [];
    if (revision > this.syncedThrough + 1) {
      this.unsyncAll();
      this.syncedThrough = revision;
      return [];
    }
    this.syncedThrough = revision;
    // Every write comes here: with no synced watcher, nothing is looked up or allocated.
    if (this.syncedByKey.size === 0 && this.syncedRanges.size === 0) return [];
    const batches = new Map<Watcher, KvEvent[]>();
    for (const event of events) {
      for (const watcher of this.syncedWatchersOf(toByteString(event.kv.key))) {
        if (revision < watcher.nextRevision || !passesFilters(watcher, event)) continue;
        const batch = batches.get(watcher) ?? [];
        batch.push(shapeEvent(watcher, event));
        batches.set(watcher, batch);
      }
    }
    const responses: WatchResponse[] = [];
    for (const [watcher, batch] of batches) {
      watcher.nextRevision = revision + 1;
      responses.push({ ...this.response(watcher.streamId, watcher.id, revision), events: batch });
    }
    return responses;
  }

  /**
   * One pass over the unsynced watchers (at most maxWatchersPerSync of them): each gets at most one
   * batch of history, or is cancelled if its next revision was compacted, or becomes synced.
   * The shell calls it while unsyncedCount > 0 (etcd runs it every 100 ms).
   */
  catchUp(): WatchResponse[] {
    const responses: WatchResponse[] = [];
    const turn = [...this.unsynced].slice(0, this.limits.maxWatchersPerSync);
    for (const watcher of turn) {
      this.unsynced.delete(watcher);
      const response = this.catchUpWatcher(watcher);
      if (response !== undefined) responses.push(response);
    }
    return responses;
  }

  /**
   * Progress notifications for synced watchers that asked for them (etcd sends one every 10
   * minutes): an empty response whose revision every earlier event is known to be at or below.
   */
  progress(): WatchResponse[] {
    const responses: WatchResponse[] = [];
    for (const stream of this.streams.values()) {
      for (const watcher of stream.values()) {
        if (watcher.synced && watcher.progressNotify) {
          responses.push(this.response(watcher.streamId, watcher.id, this.syncedThrough));
        }
      }
    }
    return responses;
  }

  /**
   * A client's WatchProgressRequest: one response with watch ID -1 if every watcher of the stream
   * is synced; undefined otherwise (the shell asks again after catching up).
   */
  requestProgress(streamId: number): WatchResponse | undefined {
    const stream = this.streams.get(streamId) ?? new Map<bigint, Watcher>();
    for (const watcher of stream.values()) if (!watcher.synced) return undefined;
    return this.response(streamId, -1n, this.syncedThrough);
  }

  /** The state machine was replaced from a snapshot: every watcher catches up from history. */
  restored(source: WatchSource): void {
    this.unsyncAll();
    this.source = source;
    this.syncedThrough = source.currentRevision;
  }

  // --- internals ------------------------------------------------------------------------------

  private refusal(request: WatchCreateRequest, stream: Map<bigint, Watcher>): KvError | undefined {
    if (this.count >= this.limits.maxWatchers) return new KvError('CONCORD_E_WATCH_LIMIT', `${this.count} watchers on this member`);
    if (stream.size >= this.limits.maxWatchersPerStream) return new KvError('CONCORD_E_WATCH_LIMIT', `${stream.size} watchers on this stream`);
    const requested = request.watchId ?? AUTO_WATCH_ID;
    if (requested !== AUTO_WATCH_ID && stream.has(requested)) return new KvError('CONCORD_E_WATCH_DUPLICATE_ID');
    const start = request.startRevision ?? 0;
    if (!Number.isSafeInteger(start)) return new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `start revision ${start}`);
    return undefined;
  }

  private newWatcher(request: WatchCreateRequest, stream: Map<bigint, Watcher>): Watcher {
    const current = this.source.currentRevision;
    const start = Math.max(0, request.startRevision ?? 0);
    // etcd: a watcher starting after the current revision (or at 0) is synced from the outset.
    const synced = start === 0 || start > current;
    const filters = request.filters ?? [];
    return {
      streamId: request.streamId,
      id: this.pickId(request, stream),
      range: keyRangeOf(request.key, request.rangeEnd),
      prevKv: request.prevKv === true,
      noPut: filters.includes('noPut'),
      noDelete: filters.includes('noDelete'),
      progressNotify: request.progressNotify === true,
      nextRevision: synced ? Math.max(start, current + 1) : start,
      synced,
    };
  }

  private pickId(request: WatchCreateRequest, stream: Map<bigint, Watcher>): bigint {
    const requested = request.watchId ?? AUTO_WATCH_ID;
    if (requested !== AUTO_WATCH_ID) return requested;
    let id = this.nextAutoIds.get(request.streamId) ?? 0n;
    while (stream.has(id)) id++;
    this.nextAutoIds.set(request.streamId, id + 1n);
    return id;
  }

  private catchUpWatcher(watcher: Watcher): WatchResponse | undefined {
    const current = this.source.currentRevision;
    const compactRevision = this.source.compactRevision;
    if (watcher.nextRevision < compactRevision) {
      this.remove(watcher);
      return { ...this.response(watcher.streamId, watcher.id, current), canceled: true, compactRevision };
    }
    const events = this.readHistory(watcher, current);
    if (watcher.nextRevision > current) this.addSynced(watcher);
    else this.unsynced.add(watcher);
    return events.length === 0 ? undefined : { ...this.response(watcher.streamId, watcher.id, current), events };
  }

  /** The watcher's next batch of history; advances its nextRevision past what it covered. */
  private readHistory(watcher: Watcher, current: number): KvEvent[] {
    const events: KvEvent[] = [];
    let revisionsInBatch = 0;
    let revision = watcher.nextRevision;
    for (let scanned = 0; revision <= current && scanned < this.limits.maxScannedRevisionsPerSync; scanned++) {
      const matching = this.source.eventsAt(revision).filter((event) => matches(watcher, event));
      if (matching.length > 0) {
        if (revisionsInBatch === this.limits.maxEventRevisionsPerBatch) break;
        revisionsInBatch++;
        for (const event of matching) events.push(shapeEvent(watcher, event));
      }
      revision++;
    }
    watcher.nextRevision = revision;
    return events;
  }

  private syncedWatchersOf(key: string): Watcher[] {
    const watchers = [...(this.syncedByKey.get(key) ?? [])];
    for (const watcher of this.syncedRanges) if (keyInRange(watcher.range, key)) watchers.push(watcher);
    return watchers;
  }

  private addSynced(watcher: Watcher): void {
    watcher.synced = true;
    if (watcher.range.kind !== 'single') {
      this.syncedRanges.add(watcher);
      return;
    }
    const sameKey = this.syncedByKey.get(watcher.range.key) ?? new Set<Watcher>();
    sameKey.add(watcher);
    this.syncedByKey.set(watcher.range.key, sameKey);
  }

  private removeSynced(watcher: Watcher): void {
    watcher.synced = false;
    if (watcher.range.kind !== 'single') {
      this.syncedRanges.delete(watcher);
      return;
    }
    const sameKey = this.syncedByKey.get(watcher.range.key);
    sameKey?.delete(watcher);
    if (sameKey?.size === 0) this.syncedByKey.delete(watcher.range.key);
  }

  private unsyncAll(): void {
    for (const stream of this.streams.values()) {
      for (const watcher of stream.values()) {
        if (!watcher.synced) continue;
        this.removeSynced(watcher);
        watcher.nextRevision = Math.max(watcher.nextRevision, this.syncedThrough + 1);
        this.unsynced.add(watcher);
      }
    }
  }

  private remove(watcher: Watcher): void {
    if (watcher.synced) this.removeSynced(watcher);
    this.unsynced.delete(watcher);
    const stream = this.streams.get(watcher.streamId);
    if (stream?.delete(watcher.id) === true) this.count--;
    if (stream?.size === 0) this.streams.delete(watcher.streamId);
  }

  private response(streamId: number, watchId: bigint, revision: number): WatchResponse {
    return {
      streamId,
      watchId,
      header: { revision },
      created: false,
      canceled: false,
      compactRevision: 0,
      cancelReason: '',
      events: [],
    };
  }
}

function matches(watcher: Watcher, event: KvEvent): boolean {
  return keyInRange(watcher.range, toByteString(event.kv.key)) && passesFilters(watcher, event);
}

function passesFilters(watcher: Watcher, event: KvEvent): boolean {
  return event.type === 'put' ? !watcher.noPut : !watcher.noDelete;
}

/** prevKv only for watchers that asked for it (etcd fetches it only then). */
function shapeEvent(watcher: Watcher, event: KvEvent): KvEvent {
  if (watcher.prevKv) return event;
  return { type: event.type, kv: event.kv };
}
