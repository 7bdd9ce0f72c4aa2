// The member's client listeners: plain TCP servers that count their connections and hand each one
// to gRPC (grpc-js's connection injector, which also does TLS). A listener owns its socket so that
// it can bound the connections it holds: gRPC itself accepts without limit, and every connection
// costs a file descriptor and an HTTP/2 session's buffers.
//
// A connection over --max-client-connections is closed as soon as it is accepted (Node's
// net.Server maxConnections): the client sees the connection end and, like every etcd client,
// retries with backoff. Nothing can be said on the wire before the HTTP/2 handshake, so the code
// CONCORD_E_CLIENT_CONNECTION_LIMIT goes to the log (at most once a second) and the refusal to
// concord_store_refused_total{limit="max-client-connections"}.
//
// With a fast path given, its methods' simple calls are served before grpc-js sees them: on a
// plaintext listener by the member's own HTTP/2 server (client-front.ts), which relays every other
// stream to grpc-js; on a TLS listener on node:http2's stream (grpc-stream-seam.ts).

import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import type { ServerMetrics } from '../observe/server-metrics.ts';
import type { UnaryFastPath } from '../api/etcd/unary-fast-path.ts';
import { createDivertedConnectionInjector } from './grpc-stream-seam.ts';
import { GrpcJsBridge } from './grpc-js-bridge.ts';
import { serveClientConnection } from './client-front.ts';
import { ConfigError } from './server-config.ts';

/** Refusals are logged at most this often; the metric counts every one. */
const REFUSAL_LOG_INTERVAL_MS = 1_000;

export interface ClientListenerOptions {
  grpc: GrpcServer;
  credentials: ServerCredentials;
  host: string;
  port: number;
  maxClientConnections: number;
  metrics: ServerMetrics;
  warn: (message: string) => void;
  /** Unary calls served before grpc-js; without one, grpc-js serves every call. */
  fastPath?: UnaryFastPath;
  /**
   * With a fast path on a plaintext listener: serve the connections with the member's own HTTP/2
   * server (true, the default) or with node:http2 (false).
   */
  ownHttp2?: boolean;
  /** The listener is TLS (https:): its connections always go to node:http2 and grpc-js. */
  tls: boolean;
  /** --max-concurrent-streams, for the member's own HTTP/2 server (grpc-js has it in its options). */
  maxConcurrentStreams: number;
}

export class ClientListener {
  /** host:port actually bound (port 0 resolves to a real port). */
  readonly address: string;
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();
  private readonly destroyInjector: () => void;
  private readonly bridge: GrpcJsBridge | undefined;

  private constructor(address: string, server: NetServer, sockets: Set<Socket>, destroyInjector: () => void, bridge: GrpcJsBridge | undefined) {
    this.address = address;
    this.server = server;
    this.sockets = sockets;
    this.destroyInjector = destroyInjector;
    this.bridge = bridge;
  }

  static async listen(options: ClientListenerOptions): Promise<ClientListener> {
    const { grpc, credentials, host, port, maxClientConnections, metrics, warn, fastPath } = options;
    const ownHttp2 = fastPath !== undefined && !options.tls && options.ownHttp2 !== false;
    const clientWarning = atMostOncePer(REFUSAL_LOG_INTERVAL_MS, (message: string, leftOut) =>
      warn(leftOut > 0 ? `${message} (and ${leftOut} more like it since the last)` : message));
    const bridge = ownHttp2 ? await GrpcJsBridge.start(grpc) : undefined;
    const injector = fastPath === undefined || ownHttp2 ? grpc.createConnectionInjector(credentials) : fastInjector(grpc, credentials, fastPath, warn);
    const serve = bridge !== undefined && fastPath !== undefined
      ? (socket: Socket) => serveClientConnection(socket, { fastPath, bridge, warn: clientWarning, maxConcurrentStreams: options.maxConcurrentStreams })
      : (socket: Socket) => injector.injectConnection(socket);
    const sockets = new Set<Socket>();
    const server = createServer({ noDelay: true }, (socket) => {
      sockets.add(socket);
      metrics.clientConnections.inc();
      socket.once('close', () => {
        sockets.delete(socket);
        metrics.clientConnections.dec();
      });
      serve(socket);
    });
    server.maxConnections = maxClientConnections;
    const refusalWarning = atMostOncePer(REFUSAL_LOG_INTERVAL_MS, (_: undefined, leftOut) => warn(
      `CONCORD_E_CLIENT_CONNECTION_LIMIT: closed ${leftOut + 1} client connection(s) to ${host}:${port}: ` +
      `${maxClientConnections} are open (--max-client-connections); close idle clients or raise the limit`));
    server.on('drop', () => {
      metrics.refused.inc({ limit: 'max-client-connections' });
      refusalWarning(undefined);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error) => reject(new ConfigError(`cannot listen for clients on ${host}:${port}: ${error.message}`)));
        server.listen(port, host, () => resolve());
      });
    } catch (error) {
      injector.destroy();
      await bridge?.close();
      throw error;
    }
    const bound = server.address();
    const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
    return new ClientListener(`${host}:${boundPort}`, server, sockets, () => injector.destroy(), bridge);
  }

  /** Stops accepting, ends gRPC's sessions on this listener, and closes what is left. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.destroyInjector();
    for (const socket of this.sockets) socket.destroy();
    await this.bridge?.close();
    await closed;
  }
}

/** grpc-js's injector with the fast path in front; if that cannot be done, grpc-js alone, and a warning. */
function fastInjector(grpc: GrpcServer, credentials: ServerCredentials, fastPath: UnaryFastPath, warn: (message: string) => void) {
  const { injector, notDiverted } = createDivertedConnectionInjector(grpc, credentials, (stream, headers) => fastPath.serve(stream, headers));
  if (notDiverted !== undefined) {
    warn(`CONCORD_W_NO_UNARY_FAST_PATH: every KV call goes through grpc-js (slower, same answers): ${notDiverted}`);
  }
  return injector;
}

/**
 * `log`, at most once per interval (refusals, clients' protocol errors and cut-offs: a hostile
 * client must not flood the log); each call that goes out is told how many were left out before it.
 */
function atMostOncePer<T>(intervalMs: number, log: (what: T, leftOut: number) => void): (what: T) => void {
  let lastMs = 0;
  let leftOut = 0;
  return (what) => {
    const nowMs = Date.now();
    if (nowMs - lastMs < intervalMs) {
      leftOut++;
      return;
    }
    log(what, leftOut);
    leftOut = 0;
    lastMs = nowMs;
  };
}
