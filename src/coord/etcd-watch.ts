// One watch over etcd's Watch stream, resumed after a lost connection from the revision after the
// last one delivered, so no event is missed or repeated. A watch that cannot resume (its revision
// was compacted) ends with CONCORD_E_STORE_COMPACTED and the compaction revision, so the caller can
// re-read the current state and watch again from there.

import type { IDuplexStream, IEvent, IWatchCreateRequest, IWatchRequest, IWatchResponse } from 'etcd3';
import { CoordError, type WatchCallbacks, type WatchEvent, type WatchHandle, type WatchOptions } from './coord-store.ts';
import { keyValueOf, rangeEndOf } from './etcd-wire.ts';

/** Reconnection backoff: doubles from the first to the last. */
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5_000;

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** How the watch reaches the store: a stream opened with some token, and what to do when the store refuses that token. */
export interface WatchConnector {
  open(): Promise<{ stream: Stream; token: string | undefined }>;
  /**
   * etcd refuses a watch whose token it no longer accepts as "permission denied". True when a new
   * token was asked for and one more try is worth it (the watch tries once, then reports).
   */
  renewAfterRefusal(token: string | undefined): boolean;
}

const PERMISSION_DENIED = /permission denied/i;
/** How stores refuse a watch created with no token or a forgotten one: etcd 3.4 as "user name is empty" or "invalid auth token", some versions (and Concord) as "permission denied". */
const TOKEN_REFUSED = /permission denied|user name is empty|invalid auth token/i;

function eventOf(event: IEvent): WatchEvent {
  const converted: WatchEvent = { type: String(event.type).toUpperCase() === 'DELETE' ? 'delete' : 'put', kv: keyValueOf(event.kv) };
  if (event.prev_kv !== undefined && event.prev_kv !== null) converted.prevKv = keyValueOf(event.prev_kv);
  return converted;
}

/**
 * Ends a watch stream on purpose. The etcd3 client treats any error on a stream that is still
 * writable as a failed member and closes every channel to it, which fails the unary calls in
 * flight on them ("Channel closed before call started"); a cancel raises such an error (CANCELLED).
 * Half-closing first makes the stream not writable, so a deliberate cancel is not taken for a failure.
 */
function closeStream(stream: Stream): void {
  stream.end();
  stream.cancel();
}

export class EtcdWatch implements WatchHandle {
  private readonly connector: WatchConnector;
  private readonly key: string;
  private readonly options: WatchOptions;
  private readonly callbacks: WatchCallbacks;
  private readonly onEnd: () => void;
  /** The revision the next (re)connection starts from; undefined until the store told us "now". */
  private nextRevision: bigint | undefined;
  private stream: Stream | undefined;
  private cancelled = false;
  private reconnectDelayMs = RECONNECT_FIRST_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private created: { resolve: () => void; reject: (error: CoordError) => void } | undefined;
  /** The token the current stream was opened with. */
  private streamToken: string | undefined;
  /** A refused token was renewed since the watch was last created (one renewal per refusal). */
  private renewedToken = false;

  constructor(connector: WatchConnector, key: string, options: WatchOptions, callbacks: WatchCallbacks, onEnd: () => void) {
    this.connector = connector;
    this.key = key;
    this.options = options;
    this.callbacks = callbacks;
    this.onEnd = onEnd;
    this.nextRevision = options.fromRevision;
  }

  lastRevision(): bigint {
    return (this.nextRevision ?? 1n) - 1n;
  }

  /** Resolves once the store has created the watch (so later writes are seen), or rejects. */
  start(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.created = undefined;
        void this.cancel();
        reject(new CoordError('CONCORD_E_STORE_UNAVAILABLE', `watch on ${this.key}: the store did not create it within ${timeoutMs} ms`));
      }, timeoutMs);
      this.created = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.connect();
    });
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    if (this.stream !== undefined) closeStream(this.stream);
    this.stream = undefined;
    this.onEnd();
  }

  // -------------------------------------------------------------------------------------------

  private createRequest(): IWatchCreateRequest {
    const request: IWatchCreateRequest = { key: Buffer.from(this.key, 'utf8') };
    const end = rangeEndOf(this.key, { prefix: this.options.prefix });
    if (end !== undefined) request.range_end = end;
    if (this.nextRevision !== undefined) request.start_revision = this.nextRevision.toString();
    if (this.options.prevKv === true) request.prev_kv = true;
    return request;
  }

  private connect(): void {
    if (this.cancelled) return;
    this.connector.open().then(
      ({ stream, token }) => {
        if (this.cancelled) {
          closeStream(stream);
          return;
        }
        this.stream = stream;
        this.streamToken = token;
        stream.on('data', (response) => this.onResponse(stream, response));
        stream.on('error', (error) => this.onBroken(stream, error));
        stream.on('end', () => this.onBroken(stream, new Error('the watch stream ended')));
        stream.write({ create_request: this.createRequest() });
      },
      (error: unknown) => this.scheduleReconnect(error),
    );
  }

  private onResponse(stream: Stream, response: IWatchResponse): void {
    if (this.cancelled || stream !== this.stream) return;
    if (response.canceled) {
      if (this.retryWithNewToken(stream, response)) return;
      this.fail(stream, response);
      return;
    }
    if (response.created) {
      this.reconnectDelayMs = RECONNECT_FIRST_MS;
      this.renewedToken = false;
      // Watching "from now": later reconnections resume right after the revision it was created at.
      this.nextRevision ??= BigInt(response.header.revision) + 1n;
      this.created?.resolve();
      this.created = undefined;
    }
    const events = (response.events ?? []).map(eventOf);
    if (events.length === 0) return;
    this.nextRevision = events[events.length - 1]!.kv.modRevision + 1n;
    this.callbacks.onEvents(events);
  }

  /** A watch refused as not permitted may only have carried an expired token (or none, from before auth was on): renew it and try once more. */
  private retryWithNewToken(stream: Stream, response: IWatchResponse): boolean {
    if (this.renewedToken || !TOKEN_REFUSED.test(response.cancel_reason ?? '')) return false;
    if (!this.connector.renewAfterRefusal(this.streamToken)) return false;
    this.renewedToken = true;
    closeStream(stream);
    this.stream = undefined;
    this.connect();
    return true;
  }

  private fail(stream: Stream, response: IWatchResponse): void {
    const compactRevision = BigInt(response.compact_revision || 0);
    const error = compactRevision > 0n
      ? new CoordError('CONCORD_E_STORE_COMPACTED', `watch on ${this.key} from revision ${this.nextRevision}: the store compacted its history up to ${compactRevision}; read the current state and watch from there`)
      : PERMISSION_DENIED.test(response.cancel_reason ?? '')
        ? new CoordError('CONCORD_E_STORE_PERMISSION_DENIED', `watch on ${this.key}: the store's roles do not allow this user to read it (etcdserver: permission denied): grant read permission on the range, or watch as a user who has it`)
        : TOKEN_REFUSED.test(response.cancel_reason ?? '')
          ? new CoordError('CONCORD_E_STORE_AUTH_FAILED', `watch on ${this.key}: the store has authentication on and refused this client's identity (${response.cancel_reason}): give a user (--user NAME with --password-file FILE)`)
          : new CoordError('CONCORD_E_STORE_REQUEST_FAILED', `watch on ${this.key}: the store cancelled it: ${response.cancel_reason || 'no reason given'}`);
    closeStream(stream);
    this.stream = undefined;
    this.cancelled = true;
    this.onEnd();
    if (this.created !== undefined) {
      this.created.reject(error);
      this.created = undefined;
    } else {
      this.callbacks.onError?.(error);
    }
  }

  private onBroken(stream: Stream, error: unknown): void {
    if (this.cancelled || stream !== this.stream) return;
    this.stream = undefined;
    this.scheduleReconnect(error);
  }

  /** A lost connection is not an error: the watch resumes (a watch never created is bounded by start's timeout). */
  private scheduleReconnect(_error: unknown): void {
    if (this.cancelled) return;
    this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectDelayMs);
    this.reconnectTimer.unref();
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }
}
