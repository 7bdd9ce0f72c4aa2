// A unary gRPC call served straight on its HTTP/2 stream, for the KV service's hot methods (Put,
// Range, ...). grpc-js spends about as much JavaScript per call as the member spends deciding the
// call (an intercepting call, a read queue, a decoder, a call object and its event emitter); here a
// call is one request message in, one response message out, and nothing else is built.
//
// The registered handlers run unchanged: they get a call with `request`, `metadata` and
// `getAuthContext()`, which is all the KV handlers read (kv-service.ts's `unary`; the auth gate reads
// the token with `firstMetadataValue` when a call has it, so `metadata` is built only if asked for), and the same
// (error, value, trailer) callback grpc-js gives them. Everything the caller can see on the wire is
// what grpc-js sends for the same call (headers, one message, trailers; the same status codes and
// texts for a refused or failed call); test/api/unary-fast-path.test.ts compares both byte for byte.
//
// Only "simple" streams are taken (`serve` answers false for the rest, which grpc-js then serves):
// a method in the table, content-type application/grpc or application/grpc+proto, no
// grpc-encoding other than identity, a well-formed grpc-timeout if any.

import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { TLSSocket } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { Metadata, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { MESSAGE_PREFIX_BYTES, MessageReader } from './grpc-message-reader.ts';

/** One unary method: its path (/package.Service/Method), codec and handler, as registered with grpc-js. */
export interface UnaryMethod {
  path: string;
  requestDeserialize: (bytes: Buffer) => unknown;
  responseSerialize: (value: never) => Buffer;
  handler: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
}

export interface UnaryFastPathOptions {
  /** grpc-js's grpc.max_receive_message_length: a request message over it is refused unread. */
  maxReceiveMessageBytes: number;
}

/** Content types served here; grpc-js accepts any application/grpc*, and serves the others itself. */
const SIMPLE_CONTENT_TYPES = new Set(['application/grpc', 'application/grpc+proto']);
/** grpc-js's grpc-timeout grammar and units. */
const TIMEOUT_PATTERN = /(\d{1,8})\s*([HMSmun])/;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };
/** Request headers grpc-js removes before handing the metadata to a handler. */
const TRANSPORT_HEADERS = ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type'];
const TRANSPORT_HEADER_NAMES = new Set(TRANSPORT_HEADERS);
/** The first character of a pseudo-header's name. */
const COLON = 0x3a;

/**
 * The call's metadata as grpc-js gives it to a handler: every header but the pseudo-headers and
 * the transport's own. Those are left out before grpc-js parses the rest, so a call pays only for
 * what a handler may read (usually just user-agent, and the token).
 */
export function callMetadata(headers: IncomingHttpHeaders): Metadata {
  const own: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (name.charCodeAt(0) !== COLON && !TRANSPORT_HEADER_NAMES.has(name)) own[name] = headers[name];
  }
  return Metadata.fromHttp2Headers(own);
}

/** grpc-js's rule for a text metadata value: a value with any other character is left out of the metadata. */
const LEGAL_TEXT_VALUE = /^[ -~]*$/;

/**
 * The first value of one text (non -bin) metadata key, as `callMetadata(headers).get(key)[0]` gives
 * it, read without building the whole metadata: a call's token is looked up on every call.
 */
export function firstMetadataValue(headers: IncomingHttpHeaders, key: string): string | Buffer | undefined {
  if (key.charCodeAt(0) === COLON || TRANSPORT_HEADER_NAMES.has(key)) return undefined;
  const value = headers[key];
  if (typeof value !== 'string' || key.endsWith('-bin')) return value === undefined ? undefined : callMetadata(headers).get(key)[0];
  return LEGAL_TEXT_VALUE.test(value) ? value : undefined;
}

/** grpc-js sends an exception's text only when this is set in its environment. */
const SEND_ERROR_DETAILS = Boolean(process.env.GRPC_NODE_DEBUG_SEND_ERROR_DETAILS);

interface CallStatus {
  code: number;
  details: string;
  metadata: Metadata | null;
}

export class UnaryFastPath {
  /** Calls served here (not by grpc-js): how tests and operators see the fast path is in use. */
  callsServed = 0;
  private readonly methods: ReadonlyMap<string, UnaryMethod>;
  private readonly maxReceiveMessageBytes: number;

  constructor(methods: readonly UnaryMethod[], options: UnaryFastPathOptions) {
    this.methods = new Map(methods.map((method) => [method.path, method]));
    this.maxReceiveMessageBytes = options.maxReceiveMessageBytes;
  }

  /** Serves the node:http2 stream if it is a simple call to one of the methods; false leaves it untouched. */
  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    return this.serveCall(headers, () => new NodeHttp2CallStream(stream));
  }

  /**
   * Serves a call whose request headers are `headers` if it is a simple call to one of the methods
   * (then `open` gives its stream); false leaves it untouched.
   */
  serveCall(headers: IncomingHttpHeaders, open: () => UnaryCallStream): boolean {
    const method = this.methods.get(headers[':path'] ?? '');
    if (method === undefined) return false;
    const contentType = headers['content-type'];
    if (contentType === undefined || !SIMPLE_CONTENT_TYPES.has(contentType)) return false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    const timeout = headers['grpc-timeout'];
    // grpc-js answers a malformed or repeated one with its own error.
    if (Array.isArray(timeout)) return false;
    const timeoutMs = timeout === undefined ? undefined : parseTimeoutMs(timeout);
    if (timeoutMs === null) return false;
    this.callsServed++;
    new FastPathCall(open(), headers, method, this.maxReceiveMessageBytes, timeoutMs).start();
    return true;
  }
}

/** grpc-timeout in milliseconds (as grpc-js rounds it), or null if it does not parse. */
function parseTimeoutMs(header: string): number | null {
  const match = TIMEOUT_PATTERN.exec(header);
  if (match === null) return null;
  return (Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]!) | 0;
}

/** What a call needs of its stream: node:http2's, or the member's own HTTP/2 connection's (client-front.ts). */
export interface UnaryCallStream {
  /** Starts delivering the request: data, then the end, or that the stream is gone. */
  listen(listener: UnaryStreamListener): void;
  /** The answer: response headers, one framed message, trailers with status OK and `trailer`. */
  sendMessage(framedMessage: Buffer, trailer: Metadata | undefined): void;
  /** A status and no message (gRPC's trailers-only response); the rest of the request is dropped. */
  sendStatus(code: number, details: string, metadata: Metadata | null): void;
  /** The client cancelled, or the connection closed. */
  isGone(): boolean;
  /** The TLS peer, shaped as grpc-js's getAuthContext returns it. */
  authContext(): CallAuthContext;
}

export interface UnaryStreamListener {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onGone(): void;
}

export interface CallAuthContext {
  transportSecurityType?: string;
  sslPeerCertificate?: PeerCertificate;
}

/** grpc-js's response headers (it announces compression it can read, and sends none). */
export const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};
/** grpc-js's trailers-only response carries these beside the status. */
const TRAILERS_ONLY_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' };

/** grpc-js's trailers after a message: status OK, and the handler's trailing metadata. */
export function okTrailers(trailer: Metadata | undefined): OutgoingHttpHeaders {
  return { 'grpc-status': status.OK, 'grpc-message': 'OK', ...trailer?.toHttp2Headers() };
}

/** grpc-js's trailers-only response: a status (its details percent-encoded) and metadata, no message. */
export function trailersOnlyHeaders(code: number, details: string, metadata: Metadata | null): OutgoingHttpHeaders {
  return { 'grpc-status': code, 'grpc-message': encodeURI(details), ...TRAILERS_ONLY_HEADERS, ...metadata?.toHttp2Headers() };
}

/** A call on a node:http2 stream (the seam's, grpc-stream-seam.ts). */
class NodeHttp2CallStream implements UnaryCallStream {
  private readonly stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
  }

  listen(listener: UnaryStreamListener): void {
    const stream = this.stream;
    // A stream error always comes with 'close', which drops the call; the listener keeps it from being thrown.
    stream.on('error', () => {});
    stream.once('close', () => listener.onGone());
    stream.on('data', (chunk: Buffer) => listener.onData(chunk));
    stream.once('end', () => listener.onEnd());
  }

  sendMessage(framedMessage: Buffer, trailer: Metadata | undefined): void {
    const stream = this.stream;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(okTrailers(trailer)));
    stream.end(framedMessage);
  }

  sendStatus(code: number, details: string, metadata: Metadata | null): void {
    this.stream.respond(trailersOnlyHeaders(code, details, metadata), { endStream: true });
    // Whatever the client still sends is read and thrown away, so its flow-control window moves.
    this.stream.resume();
  }

  isGone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  authContext(): CallAuthContext {
    const socket = this.stream.session?.socket;
    if (!(socket instanceof TLSSocket) || !socket.authorized) return {};
    const certificate = socket.getPeerCertificate();
    return { transportSecurityType: 'ssl', sslPeerCertificate: certificate.raw ? certificate : undefined };
  }
}

/**
 * One call: reads the request message (at most one, at most the receive limit), runs the handler,
 * and answers once. Anything after the answer, or after the client went away, is dropped.
 */
class FastPathCall implements UnaryStreamListener {
  request: unknown = undefined;
  private readonly headers: IncomingHttpHeaders;
  /** Built when a handler first reads `metadata`: most calls only need their token (firstMetadataValue). */
  private builtMetadata: Metadata | undefined;
  private readonly stream: UnaryCallStream;
  private readonly method: UnaryMethod;
  private readonly reader: MessageReader;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Answered, or abandoned by the client: nothing more goes out. */
  private settled = false;

  constructor(stream: UnaryCallStream, headers: IncomingHttpHeaders, method: UnaryMethod, maxReceiveMessageBytes: number, timeoutMs: number | undefined) {
    this.stream = stream;
    this.method = method;
    this.reader = new MessageReader(maxReceiveMessageBytes);
    this.headers = headers;
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.finish({ code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: null }), timeoutMs);
    }
  }

  start(): void {
    this.stream.listen(this);
  }

  get metadata(): Metadata {
    this.builtMetadata ??= callMetadata(this.headers);
    return this.builtMetadata;
  }

  firstMetadataValue(key: string): string | Buffer | undefined {
    return this.builtMetadata === undefined ? firstMetadataValue(this.headers, key) : this.builtMetadata.get(key)[0];
  }

  /** The TLS peer, shaped as grpc-js's getAuthContext returns it (nothing without a verified certificate). */
  getAuthContext(): CallAuthContext {
    return this.stream.authContext();
  }

  onData(chunk: Buffer): void {
    if (this.settled) return;
    let messages: Buffer[];
    try {
      messages = this.reader.write(chunk);
    } catch (error) {
      this.finish({ code: status.RESOURCE_EXHAUSTED, details: (error as Error).message, metadata: null });
      return;
    }
    for (const message of messages) {
      // grpc-js deserializes every message as it arrives, and only then sees that it is a second one.
      let request: unknown;
      try {
        request = this.method.requestDeserialize(message);
      } catch (error) {
        const details = SEND_ERROR_DETAILS ? `Error deserializing request: ${(error as Error).message}` : 'Error deserializing request';
        this.finish({ code: status.INTERNAL, details, metadata: null });
        return;
      }
      if (this.hasRequest()) {
        // grpc-js's text for a unary call too.
        this.finish({ code: status.UNIMPLEMENTED, details: `Received a second request message for server streaming method ${this.method.path}`, metadata: null });
        return;
      }
      this.request = request;
    }
  }

  onEnd(): void {
    if (this.settled) return;
    if (!this.hasRequest()) {
      this.finish({ code: status.UNIMPLEMENTED, details: `Received no request message for server streaming method ${this.method.path}`, metadata: null });
      return;
    }
    try {
      // The KV handlers read only request, metadata and getAuthContext() of their call.
      this.method.handler(this as unknown as ServerUnaryCall<unknown, unknown>, (error, value, trailer) => this.respond(error, value, trailer));
    } catch (error) {
      const details = SEND_ERROR_DETAILS ? `Server method handler threw error ${(error as Error).message}` : 'Unknown error';
      this.finish({ code: status.UNKNOWN, details, metadata: null });
    }
  }

  /** The client cancelled, or the connection closed: a late answer goes nowhere. */
  onGone(): void {
    this.settled = true;
    this.clearDeadline();
  }

  /**
   * grpc-js counts a request that deserialized to a falsy value as none (never so for a protobuf
   * message, always an object); the same test keeps the answers the same.
   */
  private hasRequest(): boolean {
    return Boolean(this.request);
  }

  /** The handler's callback, read as grpc-js reads it (serverErrorToStatus). */
  private respond(error: unknown, value: unknown, trailer: Metadata | undefined): void {
    if (error !== null && error !== undefined) {
      this.finish(statusOfError(error as Error & { code?: unknown; details?: unknown; metadata?: Metadata }, trailer));
      return;
    }
    if (this.isGone()) return;
    let message: Buffer;
    try {
      message = this.method.responseSerialize(value as never);
    } catch (error) {
      const details = SEND_ERROR_DETAILS ? `Error serializing response: ${(error as Error).message}` : 'Error serializing response';
      this.finish({ code: status.INTERNAL, details, metadata: null });
      return;
    }
    this.settled = true;
    this.clearDeadline();
    const framed = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + message.byteLength);
    framed.writeUInt8(0, 0);
    framed.writeUInt32BE(message.byteLength, 1);
    message.copy(framed, MESSAGE_PREFIX_BYTES);
    this.stream.sendMessage(framed, trailer);
  }

  /** Answers with a status and no message (gRPC's trailers-only response), unless already answered. */
  private finish(callStatus: CallStatus): void {
    if (this.settled || this.isGone()) return;
    this.settled = true;
    this.clearDeadline();
    this.stream.sendStatus(callStatus.code, callStatus.details, callStatus.metadata);
  }

  private isGone(): boolean {
    if (this.stream.isGone()) this.onGone();
    return this.settled;
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }
}

/** grpc-js's serverErrorToStatus: an integer code and string details if the error has them. */
function statusOfError(error: Error & { code?: unknown; details?: unknown; metadata?: Metadata }, trailer: Metadata | undefined): CallStatus {
  const metadata = trailer ?? error.metadata ?? null;
  if (typeof error.code === 'number' && Number.isInteger(error.code)) {
    return { code: error.code, details: typeof error.details === 'string' ? error.details : error.message, metadata };
  }
  return { code: status.UNKNOWN, details: 'message' in error ? error.message : 'Unknown Error', metadata };
}
