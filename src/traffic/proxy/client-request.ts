// A client's request as the proxy's request flow sees it (route, limit, admit, forward), whichever
// path it came in on: the fast path's own HTTP/1.1 (fast-path-connection.ts), or node:http and
// node:http2 (NodeClientRequest below). The flow is written once against this interface.

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Attempt, Exchange, ExchangeIo } from './exchange.ts';
import { upstreamRequestHeaders } from './forwarded-headers.ts';
import type { PoolRuntime } from './pool-runtime.ts';
import { UndiciExchangeIo, type BodyLimit } from './undici-forwarding.ts';

/** A client's own request id longer than this is replaced by a generated one. */
export const MAX_GIVEN_REQUEST_ID_LENGTH = 200;

export interface ClientRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  /** The declared body length, -1 when the request declares none. */
  readonly contentLength: number;
  readonly clientIp: string;
  /** Monotonic milliseconds when the request head was complete. */
  readonly receivedMs: number;
  /** The headers as node:http presents them (admission control and hash keys read them); read them only while the request is being routed and admitted. */
  readonly headers: IncomingHttpHeaders;
  /** The request id the client sent in proxy.requestIdHeader, if any. */
  readonly givenRequestId: string | undefined;
  /** The proxy's own answer (no route, body too large, refused by admission control). */
  respond(status: number, headers: Readonly<Record<string, string | number>>, body: string, close: boolean): void;
  /**
   * Prepares the request for the backends (headers, request id) and returns the exchange's
   * transport; a body whose length was not declared is held to `bodyLimit` as it streams.
   */
  prepareExchange(pool: PoolRuntime, requestId: string, bodyLimit?: BodyLimit): ExchangeIo;
  /** The request was admitted and its exchange is about to start. */
  exchangeStarted(exchange: Exchange): void;
}

/**
 * Generated request ids look like UUIDs (version 4) and are unique without a random draw per
 * request: a random prefix drawn once per process, then a counter (48 bits, in hex).
 */
const REQUEST_ID_PREFIX = randomUUID().slice(0, 24);
let requestIdCounter = 0;

/** The client's request id when it is usable, else a new one. */
export function requestIdOf(given: string | undefined): string {
  if (given !== undefined && given.length > 0 && given.length <= MAX_GIVEN_REQUEST_ID_LENGTH) return given;
  requestIdCounter = (requestIdCounter + 1) % 0x1_0000_0000_0000;
  return REQUEST_ID_PREFIX + requestIdCounter.toString(16).padStart(12, '0');
}

/** A request that came in through node:http (or node:http2's compatibility API). */
export class NodeClientRequest implements ClientRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  readonly contentLength: number;
  readonly clientIp: string;
  readonly receivedMs: number;
  readonly headers: IncomingHttpHeaders;
  readonly givenRequestId: string | undefined;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly expectsContinue: boolean;
  private readonly requestIdHeader: string;
  private io: UndiciExchangeIo | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean, requestIdHeader: string, receivedMs: number) {
    this.req = req;
    this.res = res;
    this.expectsContinue = expectsContinue;
    this.requestIdHeader = requestIdHeader;
    this.receivedMs = receivedMs;
    this.method = req.method ?? 'GET';
    this.path = req.url ?? '/';
    this.headers = req.headers;
    this.host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
    const declared = req.headers['content-length'];
    this.contentLength = declared === undefined ? -1 : Number(declared);
    this.clientIp = req.socket.remoteAddress ?? '';
    const given = req.headers[requestIdHeader];
    this.givenRequestId = typeof given === 'string' ? given : undefined;
  }

  respond(status: number, headers: Readonly<Record<string, string | number>>, body: string, close: boolean): void {
    if (this.res.headersSent) return;
    const all = close ? { ...headers, connection: 'close' } : headers;
    this.res.writeHead(status, { ...all, 'content-length': Buffer.byteLength(body) }).end(body);
  }

  prepareExchange(pool: PoolRuntime, requestId: string, bodyLimit?: BodyLimit): ExchangeIo {
    const req = this.req;
    const upstreamHeaders = upstreamRequestHeaders(req.rawHeaders, req.headers, {
      clientIp: this.clientIp, proto: (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http', requestIdHeader: this.requestIdHeader, requestId,
      keepTeTrailers: pool.config.upstreamProtocol === 'h2c',
    });
    // The proxy answers Expect: 100-continue itself, once the request is admitted.
    if (this.expectsContinue) dropHeader(upstreamHeaders, 'expect');
    this.io = new UndiciExchangeIo(req, this.res, this.path, upstreamHeaders, (attempt: Attempt): Dispatcher => attempt.backend.dispatcher(), bodyLimit);
    return this.io;
  }

  exchangeStarted(exchange: Exchange): void {
    if (this.expectsContinue) this.res.writeContinue();
    this.io!.watchClient(exchange);
  }
}

function dropHeader(headers: string[], name: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i]!.toLowerCase() === name) headers.splice(i, 2);
}
