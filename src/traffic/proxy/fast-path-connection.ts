// One client connection on the fast path: HTTP/1.1 read and written by the proxy itself on the
// raw socket, one request at a time (pipelined requests wait their turn in `pending`).
//
// A request head in the strict subset the parser accepts is routed, admitted and forwarded by the
// proxy's one request flow (proxy-server.ts, exchange.ts) over the backend's raw keep-alive pool
// (fast-path-upstream.ts). Anything else — a head the parser hands off, or a pool the fast path
// does not serve (h2c) — is given, at a request boundary and with the bytes not yet handled, to
// node:http's own connection handling, which takes the socket from there on.
//
// The connection is at the same time: the ClientRequest the flow routes and admits, the exchange's
// transport (ExchangeIo), the UpstreamUser waiting for a backend connection, and the sink the
// response is relayed to. Reusing one object per connection for all of these, rather than several
// per request, is much of what makes this path cheap.
//
// Timeouts (one deadline, swept): a request head must be complete within proxy.headersTimeoutMs of
// its first byte (a fresh connection: of the accept), else 408 and close (slowloris); an idle
// keep-alive connection is closed after proxy.clientIdleMs.

import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientRequest } from './client-request.ts';
import { monotonicMs } from './clocks.ts';
import type { Expiring } from './deadline-sweeper.ts';
import type { Attempt, Exchange, ExchangeIo, UpstreamFailure } from './exchange.ts';
import { UpstreamHeadBuilder, nodeStyleHeaders, ownResponse } from './fast-path-messages.ts';
import type { FastPath } from './fast-path.ts';
import type { ResponseSink, UpstreamConnection, UpstreamUser } from './fast-path-upstream.ts';
import { HEAD_HAND_OFF, HEAD_INCOMPLETE } from './http1/request-head.ts';
import type { PoolRuntime } from './pool-runtime.ts';

/** Bytes of pipelined requests (or of a body not yet sent anywhere) held before the socket is paused. */
export const MAX_HELD_BYTES = 65_536;

const READING = 0;
const EXCHANGE = 1;
const CLOSING = 2;
const HANDED_OFF = 3;
const CLOSED = 4;

const EMPTY_HEADERS: IncomingHttpHeaders = Object.freeze({});
const REQUEST_TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

export class FastConnection implements ClientRequest, ExchangeIo, UpstreamUser, ResponseSink, Expiring {
  private readonly fastPath: FastPath;
  private readonly socket: Socket;
  readonly clientIp: string;
  private readonly headBuilder: UpstreamHeadBuilder;
  private state = READING;
  deadlineMs: number;
  /** Bytes received and not handled yet: a partial head, or pipelined requests. */
  private pending: Buffer | undefined;
  private driving = false;
  private pausedForHolding = false;
  private pausedForUpstream = false;
  private clientEnded = false;
  /** Inside send(): a backend connection handed over now is an idle one, given in the same tick. */
  private acquiring = false;
  /** A request head began arriving and its header timeout runs. */
  private headStarted = false;

  // The request being handled (EXCHANGE).
  method = '';
  path = '';
  host: string | undefined = undefined;
  contentLength = -1;
  receivedMs = 0;
  givenRequestId: string | undefined = undefined;
  /** The bytes the current request's head starts with (at 0), while it is routed and admitted. */
  private headBytes: Buffer | undefined;
  private headersObject: IncomingHttpHeaders | undefined;
  private requestClose = false;
  private upstreamHead: Buffer | undefined;
  /** Body bytes still to come from the client. */
  private bodyRemaining = 0;
  /** Body bytes received but not sent to a backend yet. */
  private heldBody: Buffer[] | undefined;
  private heldBytes = 0;
  private bodySent = false;
  private exchange: Exchange | undefined;
  private attempt: Attempt | undefined;
  /** The backend connection of the current attempt: it takes the request body and relays the response. */
  private upstream: UpstreamConnection | undefined;
  private responseStarted = false;
  private closeAfterResponse = false;

  constructor(fastPath: FastPath, socket: Socket) {
    this.fastPath = fastPath;
    this.socket = socket;
    this.clientIp = socket.remoteAddress ?? '';
    this.headBuilder = new UpstreamHeadBuilder(this.clientIp, 'http', fastPath.settings.requestIdHeader);
    this.deadlineMs = monotonicMs() + fastPath.settings.headersTimeoutMs;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
    fastPath.sweeper.add(this);
  }

  get idle(): boolean {
    return this.state === READING && this.pending === undefined;
  }

  get hasBody(): boolean {
    return this.contentLength > 0;
  }

  get headers(): IncomingHttpHeaders {
    // Built on demand from the parser's view of the head, which is valid while the request is routed and admitted.
    if (this.headersObject === undefined) this.headersObject = this.headBytes === undefined ? EMPTY_HEADERS : nodeStyleHeaders(this.headBytes, this.fastPath.parser);
    return this.headersObject;
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- reading requests -------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === READING) {
      if (this.pending === undefined) {
        this.pending = chunk;
      } else {
        this.pending = Buffer.concat([this.pending, chunk]);
        // A head only completes with a line end: no need to parse again before one arrives.
        if (chunk.indexOf(0x0a) === -1 && this.pending.length <= this.fastPath.parser.limits.maxHeadBytes) return;
      }
      this.drive();
    } else if (this.state === EXCHANGE) {
      const rest = this.bodyRemaining > 0 ? this.takeBody(chunk) : chunk;
      if (rest !== undefined && rest.length > 0) this.hold(rest);
    }
    // CLOSING: the response is out and the connection closes; whatever else the client sends is dropped.
  };

  /** Handles pending requests one by one until one is in progress (or more bytes are needed). */
  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    try {
      while (this.state === READING && this.pending !== undefined) {
        const bytes = this.pending;
        this.pending = undefined;
        if (!this.readRequest(bytes)) break;
      }
    } finally {
      this.driving = false;
    }
  }

  /** Reads the request at the start of `bytes`; false when its head is not complete yet. */
  private readRequest(bytes: Buffer): boolean {
    const parser = this.fastPath.parser;
    const verdict = parser.parse(bytes, 0, bytes.length);
    if (verdict === HEAD_INCOMPLETE) {
      this.pending = bytes;
      if (!this.headStarted) {
        // The head has to be complete within headersTimeoutMs of its first byte.
        this.headStarted = true;
        this.deadlineMs = monotonicMs() + this.fastPath.settings.headersTimeoutMs;
      }
      return false;
    }
    if (verdict === HEAD_HAND_OFF) {
      this.handOff(bytes, parser.handOffReason);
      return true;
    }
    const headEnd = parser.headEnd;
    const contentLength = parser.contentLength;
    const bodyAtHand = Math.min(Math.max(contentLength, 0), bytes.length - headEnd);
    const requestEnd = headEnd + bodyAtHand;
    this.state = EXCHANGE;
    this.headStarted = false;
    this.deadlineMs = Number.POSITIVE_INFINITY;
    this.method = parser.method;
    this.path = bytes.toString('latin1', parser.targetStart, parser.targetEnd);
    this.host = bytes.toString('latin1', parser.hostStart, parser.hostEnd);
    this.contentLength = contentLength;
    this.receivedMs = monotonicMs();
    this.givenRequestId = parser.requestIdStart < 0 ? undefined : bytes.toString('latin1', parser.requestIdStart, parser.requestIdEnd);
    this.requestClose = parser.connectionClose;
    this.headBytes = bytes;
    this.bodyRemaining = Math.max(contentLength, 0) - bodyAtHand;
    this.heldBody = bodyAtHand > 0 ? [bytes.subarray(headEnd, requestEnd)] : undefined;
    this.heldBytes = bodyAtHand;
    this.pending = requestEnd < bytes.length ? bytes.subarray(requestEnd) : undefined;
    const handled = this.fastPath.handler.handleFast(this);
    this.headBytes = undefined;
    this.headersObject = undefined;
    if (!handled) {
      this.state = READING;
      this.handOff(bytes, 'pool-protocol');
    }
    return true;
  }

  /** Gives the connection to node:http with the bytes not handled yet; the fast path is done with it. */
  private handOff(bytes: Buffer, reason: string): void {
    this.state = HANDED_OFF;
    this.pending = undefined;
    this.detach();
    this.fastPath.handOff(this.socket, bytes, this.clientEnded, reason);
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    this.socket.off('drain', this.onDrain);
    this.fastPath.forget(this);
  }

  /** Body bytes of the request in progress; returns what follows the body (the next request), if anything. */
  private takeBody(chunk: Buffer): Buffer | undefined {
    const take = Math.min(this.bodyRemaining, chunk.length);
    const body = take === chunk.length ? chunk : chunk.subarray(0, take);
    this.bodyRemaining -= take;
    if (this.upstream !== undefined) {
      this.bodySent = true;
      if (!this.upstream.writeRequestBody(body) && !this.pausedForUpstream) {
        this.pausedForUpstream = true;
        this.socket.pause();
      }
    } else {
      // No backend connection yet (admission, a connect, a retry's backoff): held, within a bound.
      (this.heldBody ??= []).push(body);
      this.heldBytes += body.length;
      if (this.heldBytes > MAX_HELD_BYTES) this.pauseForHolding();
    }
    return take === chunk.length ? undefined : chunk.subarray(take);
  }

  /** Keeps bytes of requests that follow the one in progress (pipelining). */
  private hold(bytes: Buffer): void {
    this.pending = this.pending === undefined ? bytes : Buffer.concat([this.pending, bytes]);
    if (this.pending.length > MAX_HELD_BYTES) this.pauseForHolding();
  }

  private pauseForHolding(): void {
    if (this.pausedForHolding) return;
    this.pausedForHolding = true;
    this.socket.pause();
  }

  private resumeFromHolding(): void {
    if (!this.pausedForHolding) return;
    this.pausedForHolding = false;
    if (!this.pausedForUpstream) this.socket.resume();
  }

  // ---- ClientRequest: the request flow's side -------------------------------------------------

  respond(status: number, headers: Readonly<Record<string, string | number>>, body: string, close: boolean): void {
    this.writeOwnResponse(status, headers, body, close);
  }

  prepareExchange(_pool: PoolRuntime, requestId: string): ExchangeIo {
    this.upstreamHead = this.headBuilder.build(this.headBytes!, 0, this.fastPath.parser, requestId);
    return this;
  }

  exchangeStarted(exchange: Exchange): void {
    this.exchange = exchange;
    // The client left while its request waited for admission control.
    if (this.state !== EXCHANGE) exchange.clientGone();
  }

  // ---- ExchangeIo: the exchange's side ----------------------------------------------------------

  bodyIntact(): boolean {
    return !this.bodySent;
  }

  send(_exchange: Exchange, attempt: Attempt): void {
    this.attempt = attempt;
    this.acquiring = true;
    attempt.backend.http1!.acquire(this);
    this.acquiring = false;
  }

  respondWithError(status: number, code: string, body: string): void {
    if (this.responseStarted || this.state !== EXCHANGE) return;
    this.writeOwnResponse(status, { 'content-type': 'text/plain; charset=utf-8', 'x-concord-error': code }, body, false);
  }

  respondRefused(status: number, headers: Readonly<Record<string, string>>, body: string): void {
    if (this.responseStarted || this.state !== EXCHANGE) return;
    // ownResponse frames the body itself: a content-length among the refusal's headers is dropped.
    this.writeOwnResponse(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }, body, false);
  }

  endResponse(): void {
    this.requestDone();
  }

  cutOff(): void {
    this.upstream = undefined;
    this.socket.destroy();
  }

  // ---- UpstreamUser: a backend connection for the current attempt ------------------------------

  onUpstreamReady(connection: UpstreamConnection): void {
    const exchange = this.exchange;
    const attempt = this.attempt;
    if (exchange === undefined || attempt === undefined || !exchange.isCurrent(attempt)) {
      // Nobody waits for this attempt any more (the client went away meanwhile): nothing was sent, the connection is clean.
      connection.release();
      if (exchange !== undefined && attempt !== undefined) exchange.onResponseError(attempt, { kind: 'aborted', code: 'aborted' });
      return;
    }
    this.upstream = connection;
    let head = this.upstreamHead!;
    if (this.heldBody !== undefined) {
      head = Buffer.concat([head, ...this.heldBody]);
      this.bodySent = true;
      this.heldBody = undefined;
      this.heldBytes = 0;
      this.resumeFromHolding();
    }
    // An idle connection comes in the tick the attempt started: its start time saves a clock read.
    connection.start(exchange, attempt, this, head, this.method === 'HEAD', this.bodyRemaining, this.acquiring ? attempt.startedMs : monotonicMs());
  }

  onUpstreamFailed(failure: UpstreamFailure): void {
    const exchange = this.exchange;
    const attempt = this.attempt;
    if (exchange !== undefined && attempt !== undefined) exchange.onResponseError(attempt, failure);
  }

  // ---- ResponseSink: the response relayed from the backend --------------------------------------

  closesAfterResponse(): boolean {
    return this.requestClose || this.bodyRemaining > 0 || this.clientEnded || this.fastPath.stopping;
  }

  writeResponse(bytes: Uint8Array, closeAfter: boolean): boolean {
    if (this.state !== EXCHANGE) return true;
    this.responseStarted = true;
    if (closeAfter) this.closeAfterResponse = true;
    return this.socket.write(bytes);
  }

  upstreamDrained(): void {
    if (!this.pausedForUpstream) return;
    this.pausedForUpstream = false;
    if (!this.pausedForHolding) this.socket.resume();
  }

  private readonly onDrain = (): void => {
    this.upstream?.resumeResponse();
  };

  // ---- the end of a request, and of the connection ----------------------------------------------

  private writeOwnResponse(status: number, headers: Readonly<Record<string, string | number>>, body: string, close: boolean): void {
    if (this.state !== EXCHANGE) return; // the client is gone, or a response already ended this request
    const closeAfter = close || this.closesAfterResponse();
    this.socket.write(ownResponse(status, headers, body, this.method === 'HEAD', closeAfter));
    this.responseStarted = true;
    if (closeAfter) this.closeAfterResponse = true;
    this.requestDone();
  }

  /** The response is complete: the connection closes, or waits for (or handles) the next request. */
  private requestDone(): void {
    if (this.state !== EXCHANGE) return;
    const close = this.closeAfterResponse || this.bodyRemaining > 0;
    // exchange and attempt stay until the next request replaces them: a backend connection that
    // arrives late for a finished attempt must still find it (onUpstreamReady).
    this.upstream = undefined;
    this.upstreamHead = undefined;
    this.heldBody = undefined;
    this.heldBytes = 0;
    this.bodySent = false;
    this.responseStarted = false;
    this.closeAfterResponse = false;
    this.pausedForUpstream = false;
    if (close) {
      this.close();
      return;
    }
    this.state = READING;
    this.deadlineMs = monotonicMs() + (this.pending === undefined ? this.fastPath.settings.clientIdleMs : this.fastPath.settings.headersTimeoutMs);
    this.resumeFromHolding();
    if (this.socket.isPaused() && !this.pausedForHolding) this.socket.resume();
    if (this.pending !== undefined) process.nextTick(() => this.drive());
  }

  /** Ends the connection once what was written is out; a client that does not read it for clientIdleMs is cut off. */
  private close(lastWords?: string): void {
    this.state = CLOSING;
    this.deadlineMs = monotonicMs() + this.fastPath.settings.clientIdleMs;
    if (lastWords === undefined) this.socket.end();
    else this.socket.end(lastWords);
    this.socket.once('finish', () => this.socket.destroy());
  }

  expire(): void {
    if (this.state === READING && this.pending !== undefined) {
      // A head that took longer than headersTimeoutMs (slowloris): Node's own answer, then close.
      this.close(REQUEST_TIMEOUT_RESPONSE);
    } else if (this.state === READING || this.state === CLOSING) {
      this.socket.destroy();
    }
  }

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    if (this.state === EXCHANGE) {
      // A client that closes its side is gone, as node:http sees it too (it does not allow HTTP
      // half-open connections): the exchange stops rather than stream to nobody.
      this.exchange?.clientGone();
      this.socket.destroy();
    } else if (this.state === READING) {
      this.close();
    }
  };

  private readonly onClose = (): void => {
    const exchange = this.exchange;
    this.state = CLOSED;
    this.detach();
    exchange?.clientGone();
  };

  private readonly onError = (): void => {
    // 'close' follows; the exchange hears of it there.
  };
}
