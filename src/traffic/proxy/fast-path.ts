// The fast path of a plain HTTP/1.1 listener: it takes every accepted connection first and serves
// the common case itself (fast-path-connection.ts); what it does not serve is handed, at a request
// boundary, to node:http's own connection handling, on the same server, as if node:http had
// accepted the connection itself.
//
// How the hand-off works: node:http's Server registers one 'connection' listener that sets up its
// parser on a socket. The listener is taken off the server and called by the fast path for the
// connections it hands off, followed by the bytes the fast path read but did not handle (as a
// 'data' event, before any newer bytes can arrive). Everything else about the server (listening,
// reusePort, closing, idle tracking and timeouts for connections it handles) stays node:http's.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientRequest } from './client-request.ts';
import type { DeadlineSweeper } from './deadline-sweeper.ts';
import { FastConnection } from './fast-path-connection.ts';
import { DEFAULT_REQUEST_HEAD_LIMITS, RequestHeadParser } from './http1/request-head.ts';

export interface FastPathSettings {
  /** A request head must be complete this long after its first byte. */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive client connection is closed after this long. */
  readonly clientIdleMs: number;
  readonly requestIdHeader: string;
  /** proxy.maxHeaderBytes: a longer head goes to node:http, whose parser answers it with 431. */
  readonly maxHeaderBytes: number;
}

/** The request flow, as the fast path uses it. */
export interface FastPathHandler {
  /** Routes, admits and forwards a request the fast path parsed; false to hand the connection to node:http instead. */
  handleFast(request: ClientRequest): boolean;
  /** A connection was handed to node:http, and why (the parser's reason, or 'pool-protocol'). */
  handedOff(reason: string): void;
}

type ConnectionListener = (this: Server, socket: Socket) => void;

export class FastPath {
  readonly settings: FastPathSettings;
  readonly handler: FastPathHandler;
  readonly sweeper: DeadlineSweeper;
  /** One parser for every connection: heads are parsed synchronously, one at a time. */
  readonly parser: RequestHeadParser;
  /** While the proxy stops, every response closes its connection. */
  stopping = false;
  private readonly server: Server;
  private readonly nodeConnectionListener: ConnectionListener;
  private readonly connections = new Set<FastConnection>();

  /** Puts the fast path in front of `server`'s own connection handling. */
  constructor(server: Server, settings: FastPathSettings, handler: FastPathHandler, sweeper: DeadlineSweeper) {
    const listeners = server.listeners('connection') as ConnectionListener[];
    if (listeners.length !== 1) throw new Error(`bug: node:http server has ${listeners.length} connection listeners, expected its own one`);
    this.server = server;
    this.settings = settings;
    this.handler = handler;
    this.sweeper = sweeper;
    this.parser = new RequestHeadParser(settings.requestIdHeader, {
      ...DEFAULT_REQUEST_HEAD_LIMITS, maxHeadBytes: Math.min(DEFAULT_REQUEST_HEAD_LIMITS.maxHeadBytes, settings.maxHeaderBytes),
    });
    this.nodeConnectionListener = listeners[0]!;
    server.removeListener('connection', this.nodeConnectionListener);
    server.on('connection', (socket: Socket) => this.accept(socket));
  }

  private accept(socket: Socket): void {
    this.connections.add(new FastConnection(this, socket));
  }

  /** A connection left the fast path (closed, or handed off). */
  forget(connection: FastConnection): void {
    this.connections.delete(connection);
    this.sweeper.remove(connection);
  }

  /** Gives a connection to node:http, with the bytes read and not handled yet. */
  handOff(socket: Socket, unhandled: Buffer, clientEnded: boolean, reason: string): void {
    this.handler.handedOff(reason);
    this.nodeConnectionListener.call(this.server, socket);
    // Emitted at once, so that these bytes reach node:http's parser before anything read later.
    socket.emit('data', unhandled);
    if (clientEnded) socket.emit('end');
    socket.resume();
  }

  /** Closes the connections with no request in progress. */
  closeIdle(): void {
    for (const connection of this.connections) if (connection.idle) connection.destroy();
  }

  closeAll(): void {
    for (const connection of this.connections) connection.destroy();
  }
}
