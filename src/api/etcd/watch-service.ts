// etcd's Watch service over a Concord member: the gRPC shell around WatchHub (src/kv/watch.ts),
// which decides what every watcher is sent. This file feeds the hub (applied revisions, client
// requests, timers) and writes the responses it returns to their streams.
//
// Each gRPC stream gets a stream ID; watch IDs are per stream, as in etcd. Watchers that start in
// the past catch up from history on a WATCH_SYNC_INTERVAL_MS timer (and right after they are
// created); watchers that asked for progress notifications get one every
// WATCH_PROGRESS_NOTIFY_INTERVAL_MS. A stream whose client stops reading is not buffered without
// limit: once --max-watch-stream-queued-bytes of responses wait behind the stream's own (HTTP/2
// flow controlled) buffer, or a stream adds to its backlog while all backlogs together exceed
// --max-watch-queued-bytes, its watchers are dropped and the stream ends with RESOURCE_EXHAUSTED
// (CONCORD_E_WATCH_SLOW_CONSUMER), so the client can reconnect and resume from the last revision
// it saw. The member-wide bound is what caps the memory held for slow watchers: a per-stream bound
// alone multiplies by the number of streams. (etcd instead parks such
// watchers as "victims" and replays history to them later; WatchHub has no such state, and a
// clear error beats unbounded memory.) The bound is in bytes, not responses, because one applied
// batch legitimately produces a burst of one response per revision per watcher, even for a client
// that reads as fast as it can.
//
// With auth on, creating a watcher needs read permission on its whole range, checked with the
// token the stream was opened with, as etcd checks it; a watcher that may not be created is
// answered as etcd answers it (created and cancelled at once, with the PermissionDenied status as
// cancel_reason), and the stream stays open. Events are not re-checked against later revocations,
// as in etcd.

import { status } from '@grpc/grpc-js';
import type { ServerDuplexStream, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { KvStateMachine, ApplyResult } from '../../kv/state-machine.ts';
import { AUTO_WATCH_ID, WatchHub } from '../../kv/watch.ts';
import type { WatchCreateRequest as HubCreateRequest, WatchFilter, WatchHubLimits, WatchResponse as HubResponse } from '../../kv/watch.ts';
import { KvError } from '../../kv/errors.ts';
import { MemberError } from '../../server/raft-member.ts';
import type { StoreLimits } from '../../server/server-config.ts';
import { grpcError, toServiceError } from './grpc-errors.ts';
import type { WatchCreateRequest, WatchRequest } from './proto-loader.ts';
import type { EtcdServiceContext } from './service-context.ts';
import type { HeaderSource } from './wire.ts';
import { WireError, bigintFromWire, eventToWire, header, numberFromWire } from './wire.ts';
import type { AuthGate } from './auth-gate.ts';

/** etcd syncs unsynced watchers every 100 ms (watchable_store.go syncWatchersLoop). */
export const WATCH_SYNC_INTERVAL_MS = 100;
/** etcd's default progress notification interval (v3rpc.ProgressReportInterval): 10 minutes. */
export const WATCH_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;
/**
 * etcd's cancel_reason for a watch the user may not create: the text of its gRPC error
 * (rpctypes.ErrGRPCPermissionDenied.Error()), which etcdctl prints as is.
 */
export const WATCH_PERMISSION_DENIED_REASON = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied';
/** Framing and header of one response, and of one event beyond its keys and values, for the estimate. */
const RESPONSE_OVERHEAD_BYTES = 64;
const EVENT_OVERHEAD_BYTES = 32;

export interface WatchServiceOptions {
  /** Default WATCH_SYNC_INTERVAL_MS. */
  syncIntervalMs?: number;
  /** Default WATCH_PROGRESS_NOTIFY_INTERVAL_MS; tests shorten it. */
  progressNotifyIntervalMs?: number;
  /** Default: --max-watch-stream-queued-bytes. */
  maxQueuedBytesPerStream?: number;
  /** Default: --max-watch-queued-bytes. */
  maxQueuedBytes?: number;
  hubLimits?: Partial<WatchHubLimits>;
}

type WatchCall = ServerDuplexStream<WatchRequest, unknown>;

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}


export function watchService(context: EtcdServiceContext, auth: AuthGate, options: WatchServiceOptions = {}): UntypedServiceImplementation {
  const server = new WatchServer(context, auth, options);
  server.start();
  context.onStop(() => server.stop());
  return { Watch: (call: WatchCall) => server.open(call) };
}

/** The responses waiting for every slow stream of the member, against --max-watch-queued-bytes. */
interface WatchBacklog {
  queuedBytes: number;
  readonly maxQueuedBytes: number;
}

/** One client stream: its outgoing queue, drained as fast as the stream accepts writes. */
class WatchStream {
  readonly id: number;
  readonly call: WatchCall;
  /** The client connection the stream came on (its peer address), for --max-watches-per-connection. */
  readonly connection: string;
  private readonly maxQueuedBytes: number;
  private readonly backlog: WatchBacklog;
  /** Invariant: empty unless awaitingDrain (nothing waits while the stream accepts writes). */
  private readonly queue: { message: object; sizeBytes: number }[] = [];
  /** Invariant: the sum of the queued responses' sizes. */
  private queuedBytes = 0;
  private awaitingDrain = false;
  closed = false;
  /** A WatchProgressRequest waits here until every watcher of the stream is synced. */
  progressRequested = false;

  constructor(id: number, call: WatchCall, maxQueuedBytes: number, backlog: WatchBacklog) {
    this.id = id;
    this.call = call;
    this.connection = call.getPeer();
    this.maxQueuedBytes = maxQueuedBytes;
    this.backlog = backlog;
  }

  get queuedBytesOfStream(): number {
    return this.queuedBytes;
  }

  get queuedResponses(): number {
    return this.queue.length;
  }

  /**
   * Queues a response; if the client is too slow (its queue, or all queues together, would pass
   * their bound), says which bound instead. One response is always accepted into an empty queue,
   * however large, so a big catch-up batch alone never counts as a slow client.
   */
  send(message: object, sizeBytes: number): 'queued' | 'stream-full' | 'member-full' {
    if (this.closed) return 'queued';
    if (this.queue.length > 0) {
      if (this.queuedBytes + sizeBytes > this.maxQueuedBytes) return 'stream-full';
      if (this.backlog.queuedBytes + sizeBytes > this.backlog.maxQueuedBytes) return 'member-full';
    }
    this.queue.push({ message, sizeBytes });
    this.adjustQueued(sizeBytes);
    this.flush();
    return 'queued';
  }

  private adjustQueued(deltaBytes: number): void {
    this.queuedBytes += deltaBytes;
    this.backlog.queuedBytes += deltaBytes;
  }

  /** Ends the stream with an error status, dropping what is still queued. */
  fail(error: ServiceError): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.adjustQueued(-this.queuedBytes);
    // grpc-js sends the status after the messages already in the stream's own bounded buffer.
    this.call.emit('error', error);
  }

  private flush(): void {
    while (!this.awaitingDrain && !this.closed && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.adjustQueued(-next.sizeBytes);
      if (this.call.write(next.message)) continue;
      this.awaitingDrain = true;
      this.call.once('drain', () => {
        this.awaitingDrain = false;
        this.flush();
      });
    }
  }
}

class WatchServer {
  private readonly context: EtcdServiceContext;
  private readonly auth: AuthGate;
  private readonly headers: HeaderSource;
  private readonly hub: WatchHub;
  private readonly streams = new Map<number, WatchStream>();
  private readonly syncIntervalMs: number;
  private readonly progressNotifyIntervalMs: number;
  private readonly maxQueuedBytesPerStream: number;
  private readonly backlog: WatchBacklog;
  private readonly limits: StoreLimits;
  private readonly unsubscribes: (() => void)[] = [];
  private readonly timers: unknown[] = [];
  private nextStreamId = 1;
  private syncScheduled = false;
  private stopped = false;

  constructor(context: EtcdServiceContext, auth: AuthGate, options: WatchServiceOptions) {
    this.context = context;
    this.auth = auth;
    this.headers = context.headers;
    this.limits = context.config.limits;
    this.hub = new WatchHub(context.stateMachine().mvcc, {
      maxWatchers: this.limits.maxWatchers,
      // A stream lives on one connection, so the connection's bound also bounds each stream.
      maxWatchersPerStream: this.limits.maxWatchesPerConnection,
      ...options.hubLimits,
    });
    this.syncIntervalMs = positiveInteger(options.syncIntervalMs ?? WATCH_SYNC_INTERVAL_MS, 'syncIntervalMs');
    this.progressNotifyIntervalMs = positiveInteger(options.progressNotifyIntervalMs ?? WATCH_PROGRESS_NOTIFY_INTERVAL_MS, 'progressNotifyIntervalMs');
    this.maxQueuedBytesPerStream = positiveInteger(options.maxQueuedBytesPerStream ?? this.limits.maxWatchStreamQueuedBytes, 'maxQueuedBytesPerStream');
    this.backlog = { queuedBytes: 0, maxQueuedBytes: positiveInteger(options.maxQueuedBytes ?? this.limits.maxWatchQueuedBytes, 'maxQueuedBytes') };
    context.metrics.watchQueuedBytesSource = () => this.backlog.queuedBytes;
  }

  start(): void {
    const { events, clock } = this.context;
    this.unsubscribes.push(
      events.onApplied((result) => this.applied(result)),
      events.onRestored((machine) => this.restored(machine)),
    );
    this.timers.push(
      clock.setInterval(() => this.sync(), this.syncIntervalMs),
      clock.setInterval(() => this.deliver(this.hub.progress()), this.progressNotifyIntervalMs),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.splice(0)) this.context.clock.clearInterval(timer);
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    const stopped = toServiceError(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    for (const stream of [...this.streams.values()]) this.close(stream, stopped);
  }

  open(call: WatchCall): void {
    if (this.stopped) {
      call.emit('error', toServiceError(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down')));
      return;
    }
    if (this.streams.size >= this.limits.maxWatchStreams) {
      this.context.metrics.refused.inc({ limit: 'max-watch-streams' });
      call.emit('error', toServiceError(new KvError('CONCORD_E_WATCH_STREAM_LIMIT',
        `${this.streams.size} are open (--max-watch-streams ${this.limits.maxWatchStreams}); put several watches on one stream or close unused streams`)));
      return;
    }
    const stream = new WatchStream(this.nextStreamId++, call, this.maxQueuedBytesPerStream, this.backlog);
    this.streams.set(stream.id, stream);
    this.context.metrics.watchStreams.set(this.streams.size);
    call.on('data', (request: WatchRequest) => this.receive(stream, request));
    // As etcd, a client that closes its sending side keeps its watchers until it cancels the call.
    const gone = () => this.close(stream);
    call.on('cancelled', gone);
    call.on('close', gone);
    call.on('error', gone);
  }

  // --- client requests -------------------------------------------------------------------------

  private receive(stream: WatchStream, request: WatchRequest): void {
    if (stream.closed) return;
    if (request.create_request) this.create(stream, request.create_request);
    else if (request.cancel_request) this.cancel(stream, request.cancel_request.watch_id);
    else if (request.progress_request) this.requestProgress(stream);
    // An empty request carries nothing to do; etcd ignores it too.
  }

  private create(stream: WatchStream, wire: WatchCreateRequest): void {
    let request: HubCreateRequest;
    try {
      request = createRequestFromWire(stream.id, wire);
    } catch (error) {
      // Refused like any other watch etcd cannot create: created and cancelled at once, with the reason.
      const refusal = toServiceError(error).details;
      this.send(stream, { ...this.refusal(), cancel_reason: refusal }, RESPONSE_OVERHEAD_BYTES + refusal.length);
      return;
    }
    const overLimit = this.watcherLimitReached(stream);
    if (overLimit !== undefined) {
      this.context.metrics.refused.inc({ limit: overLimit.limit });
      const reason = new KvError('CONCORD_E_WATCH_LIMIT', overLimit.detail).message;
      this.send(stream, { ...this.refusal(), cancel_reason: reason }, RESPONSE_OVERHEAD_BYTES + reason.length);
      return;
    }
    if (!this.isPermitted(stream, request)) {
      this.send(stream, { ...this.refusal(), cancel_reason: WATCH_PERMISSION_DENIED_REASON }, RESPONSE_OVERHEAD_BYTES + WATCH_PERMISSION_DENIED_REASON.length);
      return;
    }
    this.deliver([this.hub.create(request)]);
    // Catch a watcher from the past up at once rather than at the next tick.
    if (this.hub.unsyncedCount > 0) this.scheduleSync();
  }

  /** Which watcher bound a new watcher on this stream would pass, if any. */
  private watcherLimitReached(stream: WatchStream): { limit: string; detail: string } | undefined {
    const { maxWatchers, maxWatchesPerConnection } = this.limits;
    if (this.hub.watcherCount >= maxWatchers) {
      return { limit: 'max-watchers', detail: `${this.hub.watcherCount} watchers on this member (--max-watchers ${maxWatchers})` };
    }
    let onConnection = 0;
    for (const other of this.streams.values()) {
      if (other.connection === stream.connection) onConnection += this.hub.streamWatcherCount(other.id);
    }
    if (onConnection >= maxWatchesPerConnection) {
      return { limit: 'max-watches-per-connection', detail: `${onConnection} watchers on this connection (--max-watches-per-connection ${maxWatchesPerConnection})` };
    }
    return undefined;
  }

  /** etcd's isWatchPermitted: any failure (no user, a bad token, no permission) refuses the watch. */
  private isPermitted(stream: WatchStream, request: HubCreateRequest): boolean {
    try {
      this.auth.checkRead(stream.call, request.key, request.rangeEnd);
      return true;
    } catch {
      return false;
    }
  }

  private cancel(stream: WatchStream, watchId: string): void {
    let id: bigint;
    try {
      id = bigintFromWire(watchId, 'watch_id');
    } catch {
      return; // no watcher has such an ID, and etcd answers a cancel of an unknown watcher with nothing
    }
    const response = this.hub.cancel(stream.id, id);
    if (response !== undefined) this.deliver([response]);
  }

  private requestProgress(stream: WatchStream): void {
    stream.progressRequested = true;
    this.answerProgressRequests();
  }

  // --- the hub's inputs ------------------------------------------------------------------------

  private applied(result: ApplyResult): void {
    if (result.status !== 'applied' || result.events.length === 0) return;
    this.deliver(this.hub.eventsApplied(result.revision, result.events));
  }

  private restored(machine: KvStateMachine): void {
    this.hub.restored(machine.mvcc);
    this.scheduleSync();
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    queueMicrotask(() => {
      this.syncScheduled = false;
      this.sync();
    });
  }

  /** One catch-up pass over the unsynced watchers, then the progress requests it made answerable. */
  private sync(): void {
    if (this.stopped) return;
    if (this.hub.unsyncedCount > 0) this.deliver(this.hub.catchUp());
    this.answerProgressRequests();
  }

  private answerProgressRequests(): void {
    for (const stream of this.streams.values()) {
      if (!stream.progressRequested) continue;
      const response = this.hub.requestProgress(stream.id);
      if (response === undefined) continue;
      stream.progressRequested = false;
      this.deliver([response]);
    }
  }

  // --- output ----------------------------------------------------------------------------------

  private deliver(responses: readonly HubResponse[]): void {
    // Called for every applied write: with nothing to send, the gauges have not changed either.
    if (responses.length === 0) return;
    for (const response of responses) {
      const stream = this.streams.get(response.streamId);
      if (stream !== undefined) this.send(stream, watchResponseToWire(response, this.headers), estimatedSizeBytes(response));
    }
    this.context.metrics.watchers.set(this.hub.watcherCount);
  }

  private send(stream: WatchStream, message: object, sizeBytes: number): void {
    const outcome = stream.send(message, sizeBytes);
    if (outcome === 'queued') return;
    const limit = outcome === 'stream-full' ? 'max-watch-stream-queued-bytes' : 'max-watch-queued-bytes';
    const bound = outcome === 'stream-full'
      ? `${stream.queuedBytesOfStream} bytes waiting on this stream, --max-watch-stream-queued-bytes ${this.maxQueuedBytesPerStream}`
      : `${this.backlog.queuedBytes} bytes waiting on all streams, --max-watch-queued-bytes ${this.backlog.maxQueuedBytes}`;
    this.context.metrics.refused.inc({ limit });
    const error = new KvError('CONCORD_E_WATCH_SLOW_CONSUMER', `${stream.queuedResponses} responses waiting (${bound}); ` +
      'read watch responses promptly, then watch again from the last revision received');
    this.close(stream, grpcError(status.RESOURCE_EXHAUSTED, error.message));
  }

  /** Forgets the stream's watchers; with an error, also ends the stream with it. */
  private close(stream: WatchStream, error?: ServiceError): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.context.metrics.watchStreams.set(this.streams.size);
    this.hub.closeStream(stream.id);
    this.context.metrics.watchers.set(this.hub.watcherCount);
    if (error !== undefined) stream.fail(error);
    else stream.closed = true;
  }

  private refusal() {
    return {
      header: header(this.headers, this.context.stateMachine().currentRevision),
      watch_id: AUTO_WATCH_ID.toString(),
      created: true,
      canceled: true,
      compact_revision: '0',
      cancel_reason: '',
      fragment: false,
      events: [],
    };
  }
}

// --- wire conversion -----------------------------------------------------------------------------

const FILTERS: Record<string, WatchFilter> = { NOPUT: 'noPut', NODELETE: 'noDelete', 0: 'noPut', 1: 'noDelete' };

function createRequestFromWire(streamId: number, wire: WatchCreateRequest): HubCreateRequest {
  const watchId = bigintFromWire(wire.watch_id, 'watch_id');
  const filters = (wire.filters ?? []).map((name) => {
    const filter = FILTERS[String(name)];
    if (filter === undefined) throw new WireError(`filters: '${String(name)}' is not one of NOPUT, NODELETE`);
    return filter;
  });
  const key = wire.key ?? Buffer.alloc(0);
  const rangeEnd = wire.range_end ?? Buffer.alloc(0);
  return {
    streamId,
    // etcd's AutoWatchID is 0: a client that sends no ID gets the stream's next free one.
    watchId: watchId === 0n ? AUTO_WATCH_ID : watchId,
    // An empty key means \0, the smallest key, as in etcd (so '' with range_end '\0' is everything).
    key: key.byteLength > 0 ? key : new Uint8Array([0]),
    rangeEnd: rangeEnd.byteLength > 0 ? rangeEnd : undefined,
    startRevision: numberFromWire(wire.start_revision, 'start_revision'),
    prevKv: wire.prev_kv === true,
    filters,
    progressNotify: wire.progress_notify === true,
  };
}

/** What a response costs in memory while queued, roughly: its keys and values plus fixed overheads. */
function estimatedSizeBytes(response: HubResponse): number {
  let sizeBytes = RESPONSE_OVERHEAD_BYTES + response.cancelReason.length;
  for (const event of response.events) {
    sizeBytes += EVENT_OVERHEAD_BYTES + event.kv.key.byteLength + event.kv.value.byteLength;
    if (event.prevKv !== undefined) sizeBytes += EVENT_OVERHEAD_BYTES + event.prevKv.key.byteLength + event.prevKv.value.byteLength;
  }
  return sizeBytes;
}

function watchResponseToWire(response: HubResponse, headers: HeaderSource) {
  return {
    header: header(headers, response.header.revision),
    watch_id: response.watchId.toString(),
    created: response.created,
    canceled: response.canceled,
    compact_revision: String(response.compactRevision),
    cancel_reason: response.cancelReason,
    fragment: false,
    events: response.events.map(eventToWire),
  };
}
