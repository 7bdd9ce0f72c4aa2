// The Node transport of an exchange: the client's request and response are node:http (or
// node:http2 compatibility) objects, and each attempt goes through undici's dispatch API, whose
// handler callbacks stream the response straight into the client's response, with backpressure
// both ways and no whole-body buffering. This path serves whatever the fast path hands off
// (HTTP/1.0, chunked uploads, Expect, ...), TLS and HTTP/2 clients, h2c pools, and everything
// when proxy.fastPath is false.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ClientGone, CONNECT_TIMEOUT, FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT, RetryAbort, type Attempt, type Exchange, type ExchangeIo, type UpstreamFailure } from './exchange.ts';
import { downstreamResponseHeaders } from './forwarded-headers.ts';

const CONNECT_FAILURE_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT']);
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

/** undici's errors in the proxy's terms. */
export function undiciFailure(error: Error): UpstreamFailure {
  if (error instanceof ClientGone || error instanceof RetryAbort) return { kind: 'aborted', code: 'aborted' };
  const code = String((error as { code?: unknown }).code ?? error.name);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { kind: 'connect', code: CONNECT_TIMEOUT };
  if (CONNECT_FAILURE_CODES.has(code)) return { kind: 'connect', code };
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return { kind: 'timeout', code: FIRST_BYTE_TIMEOUT };
  if (code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', code: IDLE_TIMEOUT };
  if (RESET_CODES.has(code)) return { kind: 'reset', code };
  return { kind: 'other', code };
}

/** A request body's size limit, for bodies whose length was not declared up front. */
export interface BodyLimit {
  readonly maxBytes: number;
  /** The config key that set it, for the answer's text. */
  readonly key: string;
  /** Counts the refusal (metrics). */
  onRefused(): void;
}

export class UndiciExchangeIo implements ExchangeIo {
  readonly hasBody: boolean;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly path: string;
  private readonly upstreamHeaders: string[];
  private readonly dispatcherOf: (attempt: Attempt) => Dispatcher;
  private readonly bodyLimit: BodyLimit | undefined;

  constructor(
    req: IncomingMessage, res: ServerResponse, path: string, upstreamHeaders: string[], dispatcherOf: (attempt: Attempt) => Dispatcher, bodyLimit?: BodyLimit,
  ) {
    this.req = req;
    this.bodyLimit = bodyLimit;
    this.res = res;
    this.path = path;
    this.upstreamHeaders = upstreamHeaders;
    this.dispatcherOf = dispatcherOf;
    const headers = req.headers;
    // HTTP/2 has no Transfer-Encoding and often no Content-Length: a body follows unless the
    // request's HEADERS frame ended the stream.
    this.hasBody = req.httpVersionMajor === 2
      ? (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders !== true
      : headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  }

  /** Reports the client going away to the exchange. */
  watchClient(exchange: Exchange): void {
    this.res.once('close', () => exchange.clientGone());
  }

  bodyIntact(): boolean {
    return !this.hasBody || (!this.req.readableDidRead && !this.req.destroyed);
  }

  send(exchange: Exchange, attempt: Attempt): void {
    const handler = new UndiciAttempt(exchange, attempt, this);
    this.dispatcherOf(attempt).dispatch({
      path: this.path,
      method: (this.req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: this.upstreamHeaders,
      body: this.hasBody ? this.upstreamBody(exchange) : null,
      // Our own retries decide what is safe; undici must not hold requests back on its own account.
      idempotent: true,
      blocking: false,
    }, handler);
  }

  /**
   * The body as it goes upstream: the client's request itself, or, under a size limit, the request
   * passed through a counter that stops the exchange with 413 once more bytes arrive than allowed
   * (a declared Content-Length over the limit was refused before this point).
   */
  private upstreamBody(exchange: Exchange): IncomingMessage | Transform {
    const limit = this.bodyLimit;
    if (limit === undefined) return this.req;
    let seenBytes = 0;
    const counted = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        seenBytes += chunk.length;
        if (seenBytes <= limit.maxBytes) {
          callback(null, chunk);
          return;
        }
        this.req.unpipe(counted);
        limit.onRefused();
        this.res.shouldKeepAlive = false;
        exchange.bodyTooLarge(limit.maxBytes, limit.key);
        callback(new ClientGone('request body over the limit'));
      },
    });
    return this.req.pipe(counted);
  }

  /** Writes the response head; false when Node refuses a header value (invalid characters), so it cannot be relayed. */
  writeHead(handler: UndiciAttempt, status: number, headers: Record<string, string | string[] | undefined>): boolean {
    let relayed = downstreamResponseHeaders(headers);
    if (headers['grpc-status'] !== undefined && this.req.httpVersionMajor === 2) {
      // A gRPC "trailers-only" answer: status and metadata in the only HEADERS frame. Relayed as
      // plain headers, a gRPC client would read them as initial metadata and miss the status, so
      // they go out as trailers after a bare HEADERS frame.
      handler.trailersOnly = {};
      const head: string[] = [];
      for (let i = 0; i < relayed.length; i += 2) {
        if (relayed[i] === 'content-type') head.push(relayed[i]!, relayed[i + 1]!);
        else handler.trailersOnly[relayed[i]!] = relayed[i + 1]!;
      }
      relayed = head;
    }
    try {
      this.res.writeHead(status, relayed);
      return true;
    } catch (error) {
      handler.abort(error as Error);
      return false;
    }
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  whenDrained(resume: () => void): void {
    this.res.once('drain', resume);
  }

  endResponse(): void {
    this.res.end();
  }

  /** Relays trailers to HTTP/2 clients (gRPC's grpc-status); an HTTP/1.1 response here has none (see docs/proxy.md). */
  addTrailers(handler: UndiciAttempt, trailers: Record<string, string | string[] | undefined>): void {
    if (this.req.httpVersionMajor !== 2) return;
    const relayed: Record<string, string> = {};
    const list = downstreamResponseHeaders(trailers);
    for (let i = 0; i < list.length; i += 2) relayed[list[i]!] = list[i + 1]!;
    if (handler.trailersOnly !== undefined) Object.assign(relayed, handler.trailersOnly);
    if (Object.keys(relayed).length > 0) this.res.addTrailers(relayed);
  }

  respondWithError(status: number, code: string, body: string): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-concord-error': code });
    res.end(body);
  }

  respondRefused(status: number, headers: Readonly<Record<string, string>>, body: string): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    // The refusal's own content-length (0, for a bodyless answer) must not survive the body added here.
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  cutOff(error: Error): void {
    this.res.destroy(error);
  }
}

/** One attempt through undici: its dispatch handler. */
class UndiciAttempt implements Dispatcher.DispatchHandler {
  private readonly exchange: Exchange;
  private readonly attempt: Attempt;
  private readonly io: UndiciExchangeIo;
  /** A gRPC trailers-only answer's headers, sent on as trailers. */
  trailersOnly: Record<string, string> | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private pendingAbort: Error | undefined;

  constructor(exchange: Exchange, attempt: Attempt, io: UndiciExchangeIo) {
    this.exchange = exchange;
    this.attempt = attempt;
    this.io = io;
    attempt.attach(this);
  }

  abort(reason: Error): void {
    if (this.controller === undefined) this.pendingAbort = reason;
    else if (!this.controller.aborted) this.controller.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) controller.abort(this.pendingAbort);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the proxy answers Expect: 100-continue itself
    const shed = headers['x-concord-shed'] !== undefined;
    if (this.exchange.onResponseStart(this.attempt, statusCode, shed)) {
      if (this.io.writeHead(this, statusCode, headers)) this.attempt.headersSent = true;
      return;
    }
    if (!controller.aborted) controller.abort(this.attempt.retryAfterThis !== undefined ? new RetryAbort('retrying on another backend') : new ClientGone('response dropped'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.exchange.isCurrent(this.attempt)) {
      if (!controller.aborted) controller.abort(new ClientGone('nobody to relay the response to'));
      return;
    }
    if (!this.io.write(chunk)) {
      controller.pause();
      this.io.whenDrained(() => controller.resume());
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.exchange.isCurrent(this.attempt)) this.io.addTrailers(this, trailers);
    this.exchange.onResponseEnd(this.attempt);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.exchange.onResponseError(this.attempt, undiciFailure(error));
  }
}
