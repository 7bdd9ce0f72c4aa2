// The traffic listener: plain HTTP/1.1 (node:http, with the fast path in front of it unless
// proxy.fastPath is false: fast-path.ts), or with TLS termination one listener that speaks
// HTTP/1.1 and HTTP/2 and lets the client choose by ALPN (node:http2's secure server with
// allowHTTP1). HTTP/2 requests reach the same handler through node:http2's compatibility API,
// whose request and response objects mirror node:http's.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createH2cServer, type Http2SecureServer, type Http2Server, type Http2Session } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { addressOf, ConfigError, type ProxySettings } from '../../control/config.ts';
import type { DeadlineSweeper } from './deadline-sweeper.ts';
import { FastPath, type FastPathHandler } from './fast-path.ts';

export interface TrafficHandlers {
  request(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** A connection or request refused by a resource limit (its config key), for the metrics. */
  refused(limit: 'maxClientConnections' | 'maxHeaderBytes'): void;
}

export interface TrafficListener {
  readonly proto: 'http' | 'https';
  listen(reusePort: boolean): Promise<void>;
  address(): AddressInfo;
  /** The h2c listener's address, when proxy.h2cListen is set. */
  h2cAddress(): AddressInfo | undefined;
  readonly listening: boolean;
  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void>;
  /** Closes connections with no request in progress (HTTP/2: a graceful GOAWAY). */
  closeIdle(): void;
  closeAll(): void;
}

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n';

/** The answer to a request head over proxy.maxHeaderBytes (node:http's parser stops at it). */
function headersTooLarge(maxHeaderBytes: number): string {
  const body = `CONCORD_E_PROXY_HEADERS_TOO_LARGE: request head over the proxy's limit of ${maxHeaderBytes} bytes (proxy.maxHeaderBytes)\n`;
  return 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n' +
    `x-concord-error: CONCORD_E_PROXY_HEADERS_TOO_LARGE\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * proxy.maxClientConnections on one listening server: Node closes a connection over the bound as
 * soon as it is accepted ('drop'), before any byte is read, so the refusal costs almost nothing.
 */
function boundConnections(server: { maxConnections: number; on(event: 'drop', listener: () => void): unknown }, settings: ProxySettings, handlers: TrafficHandlers): void {
  server.maxConnections = settings.maxClientConnections;
  server.on('drop', () => handlers.refused('maxClientConnections'));
}

/** What the fast path needs from the proxy, when proxy.fastPath is on. */
export interface FastPathWiring {
  readonly handler: FastPathHandler;
  readonly sweeper: DeadlineSweeper;
}

export function createTrafficListener(settings: ProxySettings, handlers: TrafficHandlers, fast: FastPathWiring | undefined): TrafficListener {
  const main = settings.tls === undefined ? plainListener(settings, handlers, fast) : tlsListener(settings, handlers);
  return settings.h2cListen === undefined ? main : withH2c(main, settings.h2cListen, settings, handlers);
}

/** Adds the cleartext HTTP/2 (prior knowledge) listener next to the main one. */
function withH2c(main: TrafficListener, address: string, settings: ProxySettings, handlers: TrafficHandlers): TrafficListener {
  const server = createH2cServer({ settings: { maxHeaderListSize: settings.maxHeaderBytes } });
  boundConnections(server, settings, handlers);
  const sessions = new Set<Http2Session>();
  server.on('request', (req, res) => handlers.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, false));
  server.on('checkContinue', (req, res) => handlers.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, true));
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return {
    proto: main.proto,
    listen: async (reusePort) => {
      await main.listen(reusePort);
      await listenOn(server, address, reusePort);
    },
    address: () => main.address(),
    h2cAddress: () => server.address() as AddressInfo,
    get listening() {
      return main.listening;
    },
    close: async () => {
      await Promise.all([main.close(), new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))]);
    },
    closeIdle: () => {
      main.closeIdle();
      for (const session of sessions) session.close();
    },
    closeAll: () => {
      main.closeAll();
      for (const session of sessions) session.destroy();
    },
  };
}

function listenOn(server: Server | Http2SecureServer | Http2Server, address: string, reusePort: boolean): Promise<void> {
  const { host, port } = addressOf(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // With several workers each binds its own SO_REUSEPORT socket (exclusive, so node:cluster does
    // not route accepts through the primary) and the kernel spreads connections over them.
    server.listen({ host, port, reusePort, exclusive: reusePort }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function plainListener(settings: ProxySettings, handlers: TrafficHandlers, fast: FastPathWiring | undefined): TrafficListener {
  const server = createServer({
    keepAliveTimeout: settings.clientIdleMs, headersTimeout: settings.headersTimeoutMs, requestTimeout: 0, maxHeaderSize: settings.maxHeaderBytes,
  }, (req, res) => handlers.request(req, res, false));
  boundConnections(server, settings, handlers);
  // The fast path takes every connection first and hands node:http what it does not serve itself.
  const fastPath = fast === undefined ? undefined : new FastPath(server, settings, fast.handler, fast.sweeper);
  server.on('checkContinue', (req, res) => handlers.request(req, res, true));
  server.on('upgrade', (req, socket, head) => handlers.upgrade(req, socket, head));
  server.on('clientError', (error: Error & { code?: string }, socket) => {
    if (!socket.writable) {
      socket.destroy(error);
      return;
    }
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      handlers.refused('maxHeaderBytes');
      socket.end(headersTooLarge(settings.maxHeaderBytes));
    } else {
      socket.end(BAD_REQUEST);
    }
  });
  return {
    proto: 'http',
    listen: (reusePort) => listenOn(server, settings.listen, reusePort),
    address: () => server.address() as AddressInfo,
    h2cAddress: () => undefined,
    get listening() {
      return server.listening;
    },
    close: () => {
      if (fastPath !== undefined) fastPath.stopping = true;
      return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
    closeIdle: () => {
      fastPath?.closeIdle();
      server.closeIdleConnections();
    },
    closeAll: () => {
      fastPath?.closeAll();
      server.closeAllConnections();
    },
  };
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`proxy.tls.${key}: cannot read ${path}: ${(error as Error).message}`);
  }
}

function tlsListener(settings: ProxySettings, handlers: TrafficHandlers): TrafficListener {
  const tls = settings.tls!;
  const server = createSecureServer({
    allowHTTP1: true, cert: readPem(tls.certFile, 'certFile'), key: readPem(tls.keyFile, 'keyFile'),
    maxHeaderSize: settings.maxHeaderBytes, settings: { maxHeaderListSize: settings.maxHeaderBytes },
  } as Parameters<typeof createSecureServer>[0]);
  boundConnections(server, settings, handlers);
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  server.on('request', (req, res) => handlers.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, false));
  server.on('checkContinue', (req, res) => handlers.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, true));
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.setTimeout(settings.clientIdleMs); // idle sessions and connections are closed
  return {
    proto: 'https',
    listen: (reusePort) => listenOn(server, settings.listen, reusePort),
    address: () => server.address() as AddressInfo,
    h2cAddress: () => undefined,
    get listening() {
      return server.listening;
    },
    close: () => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
    closeIdle: () => {
      for (const session of sessions) session.close();
    },
    closeAll: () => {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
