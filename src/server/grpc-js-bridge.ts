// The streams the member's own HTTP/2 server (client-front.ts) does not serve itself, relayed to
// grpc-js: Watch, LeaseKeepAlive, Snapshot, the other services, and any KV call that is not simple
// (see unary-fast-path.ts). Each client connection that has such a stream gets one internal HTTP/2
// connection to grpc-js, over loopback TCP, and each of its streams one internal stream; headers,
// data, trailers and resets are relayed both ways, with flow control carried through (the client's
// data is acknowledged once the internal stream has sent it; grpc-js's data is read only while the
// client's windows take it).
//
// Why a real TCP connection and not an in-memory pair: grpc-js tells connections apart by their
// socket's peer address (call.getPeer(), which the Watch service uses for
// --max-watches-per-connection); an in-memory pair has none, so every client would look like one.
// Through loopback each client connection has its own internal peer address.
//
// The internal listener is bound to 127.0.0.1 on a port of the system's choosing, and serves only
// the connections this bridge opened: an accepted connection whose peer port is not one of them is
// closed (after BRIDGE_MATCH_TIMEOUT_MS, since an accept can be seen before the connect).

import { connect as connectHttp2, constants as http2Constants } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { connect as connectTcp, createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { ServerCredentials, status } from '@grpc/grpc-js';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { encodeHeaderBlock } from '../api/http2/hpack-encoder.ts';
import { headerFields } from '../api/http2/header-fields.ts';
import { trailersOnlyHeaders } from '../api/etcd/unary-fast-path.ts';
import { asBuffer } from './client-front.ts';
import { ErrorCode } from '../api/http2/frame.ts';
import type { ServerStream } from '../api/http2/server-stream.ts';

/** How long an accepted internal connection may wait to be matched with one this bridge opened. */
export const BRIDGE_MATCH_TIMEOUT_MS = 5_000;
/** Accepted internal connections waiting to be matched, at most (more are closed at once). */
const MAX_UNMATCHED_CONNECTIONS = 1_024;
const INTERNAL_HOST = '127.0.0.1';
const EMPTY = Buffer.alloc(0);
/** The answer to a stream the internal connection could not take: a trailers-only UNAVAILABLE. */
const UNAVAILABLE_BLOCK = encodeHeaderBlock(headerFields(trailersOnlyHeaders(status.UNAVAILABLE,
  'concord: the member could not relay the call to its gRPC server; retry', null)));

type ConnectionInjector = ReturnType<GrpcServer['createConnectionInjector']>;

export class GrpcJsBridge {
  private readonly server: NetServer;
  private readonly injector: ConnectionInjector;
  /** The internal listener's port, once it listens. */
  private port = 0;
  /** Local ports of connections this bridge opened, whose accept has not been seen yet. */
  private readonly expectedPorts = new Set<number>();
  /** Accepted connections whose connect has not been seen yet, by peer port. */
  private readonly unmatched = new Map<number, { socket: Socket; timer: NodeJS.Timeout }>();
  private readonly sessions = new Set<BridgeSession>();
  /** Every internal connection, both ends, until it closes: close() destroys what is left. */
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(injector: ConnectionInjector) {
    this.injector = injector;
    this.server = createServer({ noDelay: true }, (socket) => {
      this.track(socket);
      this.onAccepted(socket);
    });
  }

  static async start(grpc: GrpcServer): Promise<GrpcJsBridge> {
    const bridge = new GrpcJsBridge(grpc.createConnectionInjector(ServerCredentials.createInsecure()));
    await bridge.listen();
    return bridge;
  }

  /** A relay for one client connection; its internal connection is opened at its first stream. */
  openSession(): BridgeSession {
    const session = new BridgeSession(() => this.connect(), () => this.sessions.delete(session));
    this.sessions.add(session);
    return session;
  }

  /**
   * Closes every internal connection, both ends, whatever state grpc-js has them in (the
   * listener's close waits for its accepted connections, so none may be left).
   */
  async close(): Promise<void> {
    this.closed = true;
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of [...this.sessions]) session.close();
    for (const { timer } of this.unmatched.values()) clearTimeout(timer);
    this.unmatched.clear();
    this.expectedPorts.clear();
    this.injector.destroy();
    for (const socket of this.sockets) socket.destroy();
    await serverClosed;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, INTERNAL_HOST, () => resolve());
    });
    const address = this.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the grpc-js bridge listener has no port');
    this.port = address.port;
  }

  private connect(): ClientHttp2Session {
    if (this.closed) throw new Error('the grpc-js bridge is closed');
    const socket = connectTcp({ host: INTERNAL_HOST, port: this.port, noDelay: true });
    this.track(socket);
    socket.once('connect', () => this.onConnected(socket.localPort));
    return connectHttp2(`http://${INTERNAL_HOST}:${this.port}`, { createConnection: () => socket });
  }

  private onConnected(localPort: number | undefined): void {
    if (localPort === undefined || this.closed) return;
    const accepted = this.unmatched.get(localPort);
    if (accepted === undefined) {
      this.expectedPorts.add(localPort);
      return;
    }
    this.unmatched.delete(localPort);
    clearTimeout(accepted.timer);
    this.injector.injectConnection(accepted.socket);
  }

  private onAccepted(socket: Socket): void {
    const peerPort = socket.remotePort;
    if (this.closed || peerPort === undefined || socket.remoteAddress !== INTERNAL_HOST) return void socket.destroy();
    if (this.expectedPorts.delete(peerPort)) return this.injector.injectConnection(socket);
    if (this.unmatched.size >= MAX_UNMATCHED_CONNECTIONS || this.unmatched.has(peerPort)) return void socket.destroy();
    const timer = setTimeout(() => {
      this.unmatched.delete(peerPort);
      socket.destroy();
    }, BRIDGE_MATCH_TIMEOUT_MS);
    timer.unref();
    this.unmatched.set(peerPort, { socket, timer });
    return undefined;
  }
}

/** One client connection's relay: an internal HTTP/2 connection to grpc-js, opened when first needed. */
export class BridgeSession {
  private readonly connect: () => ClientHttp2Session;
  private readonly onClosed: () => void;
  /** The internal connection new streams go to. */
  private internal: ClientHttp2Session | undefined;
  /** Every internal connection still open (an older one may still carry long streams). */
  private readonly open = new Set<ClientHttp2Session>();
  private closed = false;

  constructor(connect: () => ClientHttp2Session, onClosed: () => void) {
    this.connect = connect;
    this.onClosed = onClosed;
  }

  /** Relays `stream` (whose request headers are `headers`) to grpc-js until either side ends it. */
  forward(stream: ServerStream, headers: IncomingHttpHeaders): void {
    let internal: ClientHttp2Stream;
    try {
      internal = this.session().request(headers, { endStream: false });
    } catch {
      stream.sendHeaders(UNAVAILABLE_BLOCK, true);
      return;
    }
    relay(stream, internal);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const internal of this.open) internal.destroy();
    this.open.clear();
    this.internal = undefined;
    this.onClosed();
  }

  private session(): ClientHttp2Session {
    if (this.closed) throw new Error('the client connection is closed');
    if (this.internal === undefined || this.internal.closed || this.internal.destroyed) {
      const internal = this.connect();
      // Its streams fail with it ('close' on each); the next stream opens a new one.
      internal.on('error', () => {});
      internal.once('close', () => {
        this.open.delete(internal);
        if (this.internal === internal) this.internal = undefined;
      });
      this.open.add(internal);
      this.internal = internal;
    }
    return this.internal;
  }
}

function relay(stream: ServerStream, internal: ClientHttp2Stream): void {
  stream.manualFlowControl = true;
  stream.consumer = {
    onData: (chunk) => {
      const bytes = chunk.byteLength;
      internal.write(asBuffer(chunk), () => stream.acknowledge(bytes));
    },
    onEnd: () => internal.end(),
    // Whatever closed the client's stream (its reset, this side's, both sides done, the
    // connection), the internal stream goes too, so the handler stops and grpc-js forgets it.
    onClose: (reason) => {
      if (internal.destroyed || internal.closed) return;
      internal.close(reason.errorCode === ErrorCode.NO_ERROR ? http2Constants.NGHTTP2_NO_ERROR : http2Constants.NGHTTP2_CANCEL);
    },
  };
  stream.onWritable = () => internal.resume();
  let responded = false;
  internal.on('response', (headers: IncomingHttpHeaders, flags: number) => {
    responded = true;
    stream.sendHeaders(encodeHeaderBlock(headerFields(headers)), (flags & http2Constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  });
  internal.on('data', (chunk: Buffer) => {
    if (!stream.sendData(chunk)) internal.pause();
  });
  // The trailers come as soon as their frame arrives, even while data that came before them is
  // still held in the paused stream: they go out at 'end', after the last of that data.
  let trailers: IncomingHttpHeaders | undefined;
  internal.on('trailers', (received: IncomingHttpHeaders) => {
    trailers = received;
  });
  // A stream that ends without trailers (not grpc-js's way) is ended as it is; one that ends
  // without even response headers was cut short ('close' resets it).
  internal.on('end', () => {
    if (trailers !== undefined) stream.sendTrailers(encodeHeaderBlock(headerFields(trailers)));
    else if (responded) stream.sendData(EMPTY, true);
  });
  internal.on('error', () => {}); // 'close' follows, and resets the client's stream
  // Closed without an answer: the internal connection failed (the member is stopping, or grpc-js
  // refused it); UNAVAILABLE, which etcd clients retry elsewhere, as grpc-js's own clients get it.
  internal.on('close', () => {
    if (stream.localEnded) return;
    if (!responded) stream.sendHeaders(UNAVAILABLE_BLOCK, true);
    else stream.reset(internal.rstCode > 0 ? internal.rstCode : ErrorCode.INTERNAL_ERROR);
  });
}
