// The fast path's upstream side: per backend, a pool of keep-alive HTTP/1.1 connections on raw
// sockets (node:net). A request goes out as the bytes the client sent (hop-by-hop headers removed,
// X-Forwarded-* and the request id added, built by the client side); the response comes back
// parsed just enough to relay it byte for byte: the status line and headers (ResponseHeadParser),
// then the body by its framing (Content-Length, chunked, until close, or none), and whether the
// connection can carry another request.
//
// Timeouts (the pool's timeouts: connectMs, firstByteMs, idleMs) and the keep-alive expiry are
// one deadline per connection, swept by the DeadlineSweeper. A connection is reused only when the
// response was complete and well framed, the request body was all sent, nothing followed the
// response, and the backend did not ask to close (Connection: close, HTTP/1.0). It is closed
// after `keepAliveMs` idle, or sooner when the backend's Keep-Alive: timeout hint says so.

import { connect, type Socket } from 'node:net';
import type { HostPort } from '../../control/config.ts';
import { monotonicMs } from './clocks.ts';
import type { DeadlineSweeper, Expiring } from './deadline-sweeper.ts';
import { CONNECT_TIMEOUT, FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT, ClientGone, RetryAbort, type Attempt, type AttemptTransport, type Exchange, type UpstreamFailure } from './exchange.ts';
import { CHUNKED_INVALID, CHUNKED_NEED_MORE, ChunkedBodyScanner } from './http1/chunked-body.ts';
import {
  BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, RESPONSE_INCOMPLETE, RESPONSE_INVALID, ResponseHeadParser, type BodyFraming,
} from './http1/response-head.ts';

export interface UpstreamOptions {
  /** Connections to this backend at most (pool key maxConnectionsPerBackend); more requests wait in order. */
  maxConnections: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveMs: number;
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
}

/** The client side of the fast path, as the upstream connection relaying its response sees it. */
export interface ResponseSink {
  /** Whether the client connection closes after this response (the relayed head then says so). */
  closesAfterResponse(): boolean;
  /** Writes response bytes to the client; false when its buffer is full: `resumeResponse` follows its drain. */
  writeResponse(bytes: Uint8Array, closeAfter: boolean): boolean;
  /** The request body may flow again (the upstream connection drained). */
  upstreamDrained(): void;
}

/** Someone waiting for a connection: the fast path's client side, for one attempt. */
export interface UpstreamUser {
  onUpstreamReady(connection: UpstreamConnection): void;
  onUpstreamFailed(failure: UpstreamFailure): void;
}

/** A backend's Keep-Alive: timeout hint is trusted minus this margin, so a request never races the backend's own close. */
const KEEP_ALIVE_HINT_MARGIN_MS = 1000;
/** A relayed head and the body bytes that came with it go out in one write when the body part is at most this large. */
const COALESCE_BODY_BYTES = 16_384;
const CONNECTION_CLOSE_LINE = 'connection: close\r\n';
const STATUS_LINE_PREFIX = 'HTTP/1.1 ';

/**
 * One read buffer for every upstream connection (socket onread): each read is handled at once,
 * and the few bytes that must outlive it (a partial head, body bytes relayed on their own) are
 * copied. This skips the stream machinery and a buffer allocation per read.
 */
const READ_BUFFER = Buffer.allocUnsafe(65_536);

/** One parser for every connection: responses are parsed synchronously, one at a time. */
const responseParser = new ResponseHeadParser();

export class Http1Upstream {
  readonly address: HostPort;
  readonly options: UpstreamOptions;
  readonly sweeper: DeadlineSweeper;
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiting: UpstreamUser[] = [];
  private open = 0;
  private closing = false;
  private closed: (() => void) | undefined;

  constructor(address: HostPort, options: UpstreamOptions, sweeper: DeadlineSweeper) {
    this.address = address;
    this.options = options;
    this.sweeper = sweeper;
  }

  /** Requests waiting for a connection to be released or opened (every connection is busy). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Gives `user` a connection: an idle one at once, a new one once connected, or the next one released. */
  acquire(user: UpstreamUser): void {
    if (this.closing) {
      user.onUpstreamFailed({ kind: 'connect', code: 'backend-removed' });
      return;
    }
    const idle = this.idle.pop();
    if (idle !== undefined) {
      idle.take();
      user.onUpstreamReady(idle);
    } else if (this.open < this.options.maxConnections) {
      this.open++;
      new UpstreamConnection(this, user);
    } else {
      this.waiting.push(user);
    }
  }

  /** Hands back a connection whose exchange is over and that may carry another request. */
  release(connection: UpstreamConnection): void {
    const next = this.waiting.shift();
    if (next !== undefined) {
      connection.take();
      next.onUpstreamReady(connection);
      return;
    }
    if (this.closing) {
      connection.destroy();
      return;
    }
    connection.park();
    this.idle.push(connection);
  }

  /** A connection closed: it leaves the pool, and a waiting request may open a new one. */
  connectionClosed(connection: UpstreamConnection): void {
    this.open--;
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    const next = this.waiting.shift();
    if (next !== undefined) {
      if (this.closing) next.onUpstreamFailed({ kind: 'connect', code: 'backend-removed' });
      else {
        this.open++;
        new UpstreamConnection(this, next);
      }
    }
    if (this.closing && this.open === 0) this.closed?.();
  }

  /** Closes idle connections now and busy ones when their exchange ends; resolves when none is left. */
  close(): Promise<void> {
    this.closing = true;
    for (const user of this.waiting.splice(0)) user.onUpstreamFailed({ kind: 'connect', code: 'backend-removed' });
    for (const connection of this.idle.splice(0)) connection.destroy();
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.closed = resolve;
    });
  }
}

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;

/** One keep-alive connection to a backend. */
export class UpstreamConnection implements Expiring, AttemptTransport {
  private readonly upstream: Http1Upstream;
  private readonly socket: Socket;
  private state = CONNECTING;
  deadlineMs: number;
  /** The backend's keep-alive hint, once it gave one. */
  private keepAliveMs: number;
  /** The user a connection being opened is for. */
  private opener: UpstreamUser | undefined;
  // The exchange in progress (BUSY).
  private exchange: Exchange | undefined;
  private attempt: Attempt | undefined;
  private sink: ResponseSink | undefined;
  private headRequest = false;
  private requestBodyRemaining = 0;
  private responseBegun = false;
  private headDone = false;
  private pendingHead: Buffer | undefined;
  private framing: BodyFraming = BODY_NONE;
  private bodyRemaining = 0;
  private reusable = true;
  private readonly chunked = new ChunkedBodyScanner();

  constructor(upstream: Http1Upstream, opener: UpstreamUser) {
    this.upstream = upstream;
    this.opener = opener;
    this.keepAliveMs = upstream.options.keepAliveMs;
    this.deadlineMs = monotonicMs() + upstream.options.connectMs;
    this.socket = connect({
      host: upstream.address.host, port: upstream.address.port, noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (length: number, bytes: Uint8Array) => {
          this.onRead(bytes as Buffer, length);
          return true; // pausing, when the client is slow, is relayBody's decision
        },
      },
    });
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('drain', () => this.sink?.upstreamDrained());
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.onSocketGone(error.code ?? 'ECONNRESET'));
    // 'end': the backend closed its side. A response framed by the close ends here; anything else is a loss.
    this.socket.on('end', () => this.onSocketGone('ECONNRESET'));
    this.socket.on('close', () => this.onSocketGone('ECONNRESET'));
    upstream.sweeper.add(this);
  }

  /** The pool gives this idle connection to a request. */
  take(): void {
    this.state = BUSY;
    this.deadlineMs = Number.POSITIVE_INFINITY;
  }

  /** Hands this connection, on which nothing was sent, back to the pool. */
  release(): void {
    this.upstream.release(this);
  }

  /** Back in the pool, idle: closed after the keep-alive time. */
  park(): void {
    this.state = IDLE;
    this.deadlineMs = monotonicMs() + this.keepAliveMs;
  }

  /**
   * Sends a request: its head (with any body bytes already at hand) now, the rest of its body
   * through writeRequestBody. The response is relayed to `sink`.
   */
  start(exchange: Exchange, attempt: Attempt, sink: ResponseSink, head: Uint8Array, headRequest: boolean, requestBodyRemaining: number, nowMs: number): void {
    this.exchange = exchange;
    this.attempt = attempt;
    this.sink = sink;
    this.headRequest = headRequest;
    this.requestBodyRemaining = requestBodyRemaining;
    this.responseBegun = false;
    this.headDone = false;
    this.pendingHead = undefined;
    this.reusable = true;
    attempt.attach(this);
    if (this.state !== BUSY) return; // the attempt was aborted on attaching
    this.deadlineMs = nowMs + this.upstream.options.firstByteMs;
    this.socket.write(head);
  }

  /** More of the request body; false when the socket's buffer is full (the sink hears of the drain). */
  writeRequestBody(bytes: Uint8Array): boolean {
    if (this.state !== BUSY) return true;
    this.requestBodyRemaining -= bytes.length;
    // The backend cannot answer before it has the body: the first-byte clock restarts with progress.
    if (!this.headDone) this.deadlineMs = monotonicMs() + this.upstream.options.firstByteMs;
    return this.socket.write(bytes);
  }

  /** The client's buffer drained: the response may flow again. */
  resumeResponse(): void {
    if (this.state !== BUSY) return;
    // idleMs counts silence from the backend; time spent waiting for a slow client is not its silence.
    if (this.headDone) this.deadlineMs = monotonicMs() + this.upstream.options.idleMs;
    this.socket.resume();
  }

  abort(reason: Error): void {
    if (this.state !== BUSY) return;
    this.fail({ kind: 'aborted', code: reason instanceof RetryAbort ? 'retry' : 'aborted' });
  }

  destroy(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.socket.destroy();
    this.upstream.sweeper.remove(this);
    this.upstream.connectionClosed(this);
  }

  expire(nowMs: number): void {
    switch (this.state) {
      case CONNECTING:
        this.connectFailed(CONNECT_TIMEOUT);
        break;
      case IDLE:
        this.destroy();
        break;
      case BUSY:
        this.fail({ kind: 'timeout', code: this.headDone ? IDLE_TIMEOUT : FIRST_BYTE_TIMEOUT });
        break;
      default:
        void nowMs;
    }
  }

  private onConnect(): void {
    if (this.state !== CONNECTING) return;
    const opener = this.opener!;
    this.opener = undefined;
    this.state = BUSY;
    this.deadlineMs = Number.POSITIVE_INFINITY;
    opener.onUpstreamReady(this);
  }

  private connectFailed(code: string): void {
    const opener = this.opener;
    this.opener = undefined;
    this.destroy();
    opener?.onUpstreamFailed({ kind: 'connect', code });
  }

  private onSocketGone(code: string): void {
    switch (this.state) {
      case CONNECTING:
        this.connectFailed(code);
        break;
      case IDLE:
        this.destroy();
        break;
      case BUSY:
        if (this.headDone && this.framing === BODY_UNTIL_CLOSE) {
          // The body was framed by the connection's close: this close is its end.
          this.reusable = false;
          this.complete();
        } else {
          this.fail({ kind: 'reset', code });
        }
        break;
      default:
        break;
    }
  }

  /** bytes[0, end) just arrived, in the shared READ_BUFFER: whatever must outlive this call is copied. */
  private onRead(bytes: Buffer, end: number): void {
    if (this.state !== BUSY) {
      // Bytes nobody asked for (on an idle connection): the connection cannot be trusted any more.
      this.destroy();
      return;
    }
    this.responseBegun = true;
    if (this.headDone) {
      this.relayBody(bytes, 0, end, false);
      return;
    }
    if (this.pendingHead === undefined) {
      this.readHead(bytes, 0, end);
      return;
    }
    const head = Buffer.concat([this.pendingHead, bytes.subarray(0, end)]);
    this.pendingHead = undefined;
    this.readHead(head, 0, head.length);
  }

  private readHead(bytes: Buffer, start: number, end: number): void {
    const parser = responseParser;
    let headStart = start;
    for (;;) {
      const verdict = parser.parse(bytes, headStart, end, this.headRequest);
      if (verdict === RESPONSE_INCOMPLETE) {
        this.pendingHead = Buffer.from(bytes.subarray(headStart, end));
        return;
      }
      if (verdict === RESPONSE_INVALID) {
        this.fail({ kind: 'other', code: `invalid-response (${parser.invalidReason})` });
        return;
      }
      if (parser.status >= 200) break;
      // A switch of protocols was never asked for on this path; other 1xx are interim and skipped
      // (the proxy answers Expect: 100-continue itself).
      if (parser.status === 101) {
        this.fail({ kind: 'other', code: 'invalid-response (unrequested 101)' });
        return;
      }
      headStart = parser.headEnd;
      if (headStart === end) return;
    }
    this.headDone = true;
    this.framing = parser.framing;
    this.bodyRemaining = parser.contentLength;
    if (parser.connectionClose || this.requestBodyRemaining > 0) this.reusable = false;
    if (parser.keepAliveTimeoutMs >= 0) this.keepAliveMs = Math.min(this.upstream.options.keepAliveMs, parser.keepAliveTimeoutMs - KEEP_ALIVE_HINT_MARGIN_MS);
    if (this.keepAliveMs <= 0) this.reusable = false;
    if (this.framing === BODY_CHUNKED) this.chunked.reset();
    if (!this.exchange!.onResponseStart(this.attempt!, parser.status, parser.shed)) {
      this.abort(this.attempt!.retryAfterThis !== undefined ? new RetryAbort('retrying on another backend') : new ClientGone('response dropped'));
      return;
    }
    this.attempt!.headersSent = true;
    this.relayBody(bytes, parser.headEnd, end, true);
  }

  /**
   * Relays the body bytes in bytes[start, available), preceded by the relayed head when `withHead`
   * (parsed just now by responseParser), and completes the exchange when the body ends.
   */
  private relayBody(bytes: Buffer, start: number, available: number, withHead: boolean): void {
    let end = available;
    let complete = false;
    switch (this.framing) {
      case BODY_NONE:
        end = start;
        complete = true;
        break;
      case BODY_LENGTH: {
        const take = Math.min(this.bodyRemaining, end - start);
        this.bodyRemaining -= take;
        end = start + take;
        complete = this.bodyRemaining === 0;
        break;
      }
      case BODY_CHUNKED: {
        const found = this.chunked.scan(bytes, start, end);
        if (found === CHUNKED_INVALID) {
          this.fail({ kind: 'other', code: `invalid-response (${this.chunked.invalidReason})` });
          return;
        }
        if (found !== CHUNKED_NEED_MORE) {
          end = found;
          complete = true;
        }
        break;
      }
      default:
        break; // BODY_UNTIL_CLOSE: everything, until the backend closes
    }
    // Bytes after the response's end: the backend sent something nobody asked for.
    if (end < available) this.reusable = false;
    if (!this.exchange!.isCurrent(this.attempt!)) {
      this.abort(new ClientGone('nobody to relay the response to'));
      return;
    }
    const flowing = withHead ? this.writeHeadAndBody(bytes, start, end) : end === start || this.sink!.writeResponse(Buffer.from(bytes.subarray(start, end)), false);
    if (complete) {
      this.complete();
      return;
    }
    this.deadlineMs = monotonicMs() + this.upstream.options.idleMs;
    if (!flowing) this.socket.pause();
  }

  private writeHeadAndBody(bytes: Buffer, bodyStart: number, bodyEnd: number): boolean {
    const parser = responseParser;
    const closeAfter = this.framing === BODY_UNTIL_CLOSE || this.sink!.closesAfterResponse();
    let headLength = STATUS_LINE_PREFIX.length + 4 + (parser.statusLineEnd - parser.reasonStart) + 2;
    for (let i = 0; i < parser.keptRunCount; i++) headLength += parser.keptRuns[i * 2 + 1]! - parser.keptRuns[i * 2]!;
    if (closeAfter) headLength += CONNECTION_CLOSE_LINE.length;
    const bodyLength = bodyEnd - bodyStart;
    const coalesce = bodyLength <= COALESCE_BODY_BYTES;
    const out = Buffer.allocUnsafe(headLength + (coalesce ? bodyLength : 0));
    let at = out.write(STATUS_LINE_PREFIX, 0, 'latin1');
    at += bytes.copy(out, at, parser.statusStart, parser.statusStart + 3);
    out[at++] = 0x20;
    at += bytes.copy(out, at, parser.reasonStart, parser.statusLineEnd);
    for (let i = 0; i < parser.keptRunCount; i++) at += bytes.copy(out, at, parser.keptRuns[i * 2]!, parser.keptRuns[i * 2 + 1]!);
    if (closeAfter) at += out.write(CONNECTION_CLOSE_LINE, at, 'latin1');
    out[at++] = 0x0d;
    out[at++] = 0x0a;
    if (coalesce) {
      bytes.copy(out, at, bodyStart, bodyEnd);
      return this.sink!.writeResponse(out, closeAfter);
    }
    this.sink!.writeResponse(out, closeAfter);
    return this.sink!.writeResponse(Buffer.from(bytes.subarray(bodyStart, bodyEnd)), closeAfter);
  }

  /** The response is complete: the connection goes back to the pool (or closes), then the exchange hears of it. */
  private complete(): void {
    const exchange = this.exchange!;
    const attempt = this.attempt!;
    this.clearExchange();
    if (this.reusable && this.requestBodyRemaining === 0) this.upstream.release(this);
    else this.destroy();
    exchange.onResponseEnd(attempt);
  }

  private fail(failure: UpstreamFailure): void {
    const exchange = this.exchange;
    const attempt = this.attempt;
    this.clearExchange();
    this.destroy();
    if (exchange !== undefined && attempt !== undefined) exchange.onResponseError(attempt, failure);
  }

  private clearExchange(): void {
    this.exchange = undefined;
    this.attempt = undefined;
    this.sink = undefined;
    this.pendingHead = undefined;
    if (this.socket.isPaused()) this.socket.resume();
  }
}
