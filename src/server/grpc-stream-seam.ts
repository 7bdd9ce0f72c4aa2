// The one place that reaches into grpc-js's internals (pinned at 1.14.7 in package-lock.json): it
// puts the unary fast path (api/etcd/unary-fast-path.ts) in front of grpc-js on the HTTP/2 server
// behind a connection injector. grpc-js has no public hook for a stream before it takes it, so:
//
// * createConnectionInjector creates one http2 server and records it in the Server's private
//   `http2Servers` map; the server is the key that was not there before the call;
// * grpc-js listens to that server's 'stream' event with one listener (_setupHandlers); it is taken
//   out and called, with the same `this` and arguments, for every stream the fast path declines;
// * grpc-js counts open streams for its idle-connection timeout in onStreamOpened, called here too
//   for the streams the fast path serves;
// * server interceptors would not run on the fast path, so with any configured nothing is diverted.
//
// If any of this is not as expected (a grpc-js upgrade), every stream stays with grpc-js and the
// returned reason says why; the member logs it, and test/api/unary-fast-path.test.ts fails because
// the fast path's call count stays at zero.

import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';

type ConnectionInjector = ReturnType<GrpcServer['createConnectionInjector']>;
type StreamListener = (this: unknown, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/** What the seam reads of grpc-js's Server, none of it public. */
interface GrpcServerInternals {
  http2Servers?: unknown;
  interceptors?: unknown;
  onStreamOpened?: unknown;
}

export interface DivertedInjector {
  injector: ConnectionInjector;
  /** Why the streams could not be diverted (all of them go to grpc-js), or undefined if they are. */
  notDiverted?: string;
}

/**
 * Creates grpc-js's connection injector for `credentials`, with `serve` offered every stream first:
 * it answers true for a stream it took, false to leave it to grpc-js.
 */
export function createDivertedConnectionInjector(
  grpc: GrpcServer, credentials: ServerCredentials,
  serve: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean,
): DivertedInjector {
  const internals = grpc as unknown as GrpcServerInternals;
  const serversBefore = internals.http2Servers instanceof Map ? new Set(internals.http2Servers.keys()) : undefined;
  const injector = grpc.createConnectionInjector(credentials);
  if (serversBefore === undefined || !(internals.http2Servers instanceof Map)) {
    return { injector, notDiverted: 'grpc-js Server has no http2Servers map' };
  }
  const created = [...(internals.http2Servers as Map<unknown, unknown>).keys()].filter((server) => !serversBefore.has(server));
  if (created.length !== 1) return { injector, notDiverted: `createConnectionInjector added ${created.length} http2 servers, expected 1` };
  const http2Server = created[0] as Http2Server;
  if (!Array.isArray(internals.interceptors) || internals.interceptors.length > 0) {
    return { injector, notDiverted: 'grpc-js server interceptors are configured (or unknown) and would be skipped' };
  }
  if (typeof internals.onStreamOpened !== 'function') return { injector, notDiverted: 'grpc-js Server has no onStreamOpened' };
  const onStreamOpened = internals.onStreamOpened as (this: unknown, stream: ServerHttp2Stream) => void;
  const grpcListeners = http2Server.listeners('stream') as StreamListener[];
  if (grpcListeners.length !== 1) return { injector, notDiverted: `grpc-js listens to 'stream' ${grpcListeners.length} times, expected once` };
  const grpcListener = grpcListeners[0]!;
  http2Server.removeListener('stream', grpcListener);
  http2Server.on('stream', function divert(this: unknown, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) {
    if (serve(stream, headers)) {
      onStreamOpened.call(grpc, stream);
      return;
    }
    grpcListener.call(this, stream, headers, ...rest);
  });
  return { injector };
}
