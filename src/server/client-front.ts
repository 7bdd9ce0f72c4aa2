// A plaintext client connection served by the member's own HTTP/2 server (api/http2): the KV
// service's simple unary calls go to the unary fast path on the connection's own streams, every
// other stream to grpc-js through the bridge (grpc-js-bridge.ts). TLS connections stay with
// node:http2 and grpc-js (client-listener.ts), where the fast path is in front as well.
//
// What the client sees is what grpc-js would send (the same status codes, texts and metadata;
// test/api/unary-fast-path.test.ts compares them byte for byte), minus the `date` response header,
// which grpc-go (etcd) does not send either.

import type { Socket } from 'node:net';
import type { Metadata } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { ServerConnection } from '../api/http2/server-connection.ts';
import type { ConnectionHandler } from '../api/http2/server-connection.ts';
import type { ServerStream } from '../api/http2/server-stream.ts';
import { encodeHeaderBlock } from '../api/http2/hpack-encoder.ts';
import { headerFields, headerObject } from '../api/http2/header-fields.ts';
import { RESPONSE_HEADERS, okTrailers, trailersOnlyHeaders } from '../api/etcd/unary-fast-path.ts';
import type { CallAuthContext, UnaryCallStream, UnaryFastPath, UnaryStreamListener } from '../api/etcd/unary-fast-path.ts';
import type { BridgeSession, GrpcJsBridge } from './grpc-js-bridge.ts';

/**
 * Per connection: streams open at once, at most (--max-concurrent-streams, etcd's default 2^32-1,
 * is taken when lower). Clients keep their streams within it; one over it is refused
 * (REFUSED_STREAM, which clients retry).
 */
export const MAX_CONCURRENT_STREAMS = 4_096;
/** Per stream: request bytes in flight before the consumer takes them (SETTINGS_INITIAL_WINDOW_SIZE). */
const STREAM_WINDOW_BYTES = 1_048_576;
/** Per connection: request bytes in flight on all streams together. */
const CONNECTION_WINDOW_BYTES = 16_777_216;
/** Per connection: the largest request header list answered (grpc-go's and grpc-js's default is 16 KiB). */
const MAX_HEADER_LIST_BYTES = 16_384;
/**
 * Per connection: answers written and not yet taken by the client's socket, and answers waiting
 * for the client's flow-control windows (each bounded by this); past it the client is cut off.
 */
export const MAX_UNSENT_BYTES = 64 * 1_048_576;
/** After a GOAWAY, how long the client has to close its side before its socket is destroyed. */
const CLOSE_GRACE_MS = 5_000;

/** grpc-js's response headers and its trailers after a message without metadata: encoded once. */
const RESPONSE_HEADER_BLOCK = encodeHeaderBlock(headerFields(RESPONSE_HEADERS));
const OK_TRAILER_BLOCK = encodeHeaderBlock(headerFields(okTrailers(undefined)));

export interface ClientFrontOptions {
  fastPath: UnaryFastPath;
  bridge: GrpcJsBridge;
  /** --max-concurrent-streams. */
  maxConcurrentStreams: number;
  /** A connection's protocol error or cut-off, for the log. */
  warn: (message: string) => void;
}

/** Serves one accepted plaintext client connection until it closes. */
export function serveClientConnection(socket: Socket, options: ClientFrontOptions): void {
  const { fastPath, bridge, warn, maxConcurrentStreams } = options;
  let bridgeSession: BridgeSession | undefined;
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  const handler: ConnectionHandler = {
    onStream(stream) {
      const headers = headerObject(stream.headers);
      if (fastPath.serveCall(headers, () => new FrontCallStream(stream))) return;
      bridgeSession ??= bridge.openSession();
      bridgeSession.forward(stream, headers);
    },
    onHeaderListTooLarge(stream, limitBytes) {
      stream.sendHeaders(encodeHeaderBlock(headerFields(trailersOnlyHeaders(status.RESOURCE_EXHAUSTED,
        `CONCORD_E_HEADER_LIST_TOO_LARGE: the request's headers are over ${limitBytes} bytes; send less metadata`, null))), true);
    },
    onConnectionError(errorCode, message, byPeer) {
      warn(`CONCORD_W_CLIENT_HTTP2_ERROR: client ${peer}: ${byPeer ? '' : 'closed for '}HTTP/2 error ${errorCode}: ${message}`);
    },
  };
  const connection = new ServerConnection({
    write(bytes) {
      socket.write(bytes);
      if (socket.writableLength > MAX_UNSENT_BYTES) {
        warn(`CONCORD_W_CLIENT_NOT_READING: client ${peer} left ${socket.writableLength} bytes of answers unread (limit ${MAX_UNSENT_BYTES}); closed its connection`);
        socket.destroy();
      }
    },
    end() {
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    },
    defer: queueMicrotask,
  }, handler, {
    maxConcurrentStreams: Math.min(maxConcurrentStreams, MAX_CONCURRENT_STREAMS),
    streamWindowBytes: STREAM_WINDOW_BYTES,
    connectionWindowBytes: CONNECTION_WINDOW_BYTES,
    maxHeaderListBytes: MAX_HEADER_LIST_BYTES,
    maxWaitingBytes: MAX_UNSENT_BYTES,
    nowMs: Date.now,
  });
  socket.on('data', (chunk: Buffer) => connection.receive(chunk));
  socket.on('error', () => {}); // 'close' follows
  socket.once('close', () => {
    connection.destroy('the client connection closed');
    bridgeSession?.close();
  });
}

/** A unary call on one of the connection's streams (the unary fast path's view of it). */
class FrontCallStream implements UnaryCallStream {
  private readonly stream: ServerStream;

  constructor(stream: ServerStream) {
    this.stream = stream;
  }

  listen(listener: UnaryStreamListener): void {
    this.stream.consumer = {
      onData: (chunk) => listener.onData(asBuffer(chunk)),
      onEnd: () => listener.onEnd(),
      onClose: () => listener.onGone(),
    };
  }

  sendMessage(framedMessage: Buffer, trailer: Metadata | undefined): void {
    const stream = this.stream;
    stream.sendHeaders(RESPONSE_HEADER_BLOCK, false);
    stream.sendData(framedMessage);
    stream.sendTrailers(trailer === undefined ? OK_TRAILER_BLOCK : encodeHeaderBlock(headerFields(okTrailers(trailer))));
  }

  sendStatus(code: number, details: string, metadata: Metadata | null): void {
    this.stream.sendHeaders(encodeHeaderBlock(headerFields(trailersOnlyHeaders(code, details, metadata))), true);
  }

  isGone(): boolean {
    return this.stream.closed;
  }

  authContext(): CallAuthContext {
    return {}; // plaintext: no peer certificate
  }
}

/** A Buffer over the same bytes (the fast path's reader and the relay take Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
