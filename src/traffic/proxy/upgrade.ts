// WebSocket (and any other HTTP/1.1 Upgrade) pass-through: the request goes to a backend picked by
// the pool's balancer over a fresh TCP connection, and from then on bytes flow both ways untouched
// (the backend's 101 answer included). The connection counts as a request in flight to that
// backend until either side closes.

import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { monotonicMs } from './clocks.ts';
import { upstreamRequestHeaders, type ForwardedFacts } from './forwarded-headers.ts';
import type { PoolRuntime } from './pool-runtime.ts';

export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 503 ? 'Service Unavailable' : 'Bad Gateway'}\r\n` +
    `content-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export function passUpgrade(req: IncomingMessage, clientSocket: Duplex, head: Buffer, pool: PoolRuntime, facts: ForwardedFacts, onClose: () => void): void {
  const picked = pool.balancer.pick({ nowMs: monotonicMs(), hashKey: pool.hashKeyOf?.(req.headers, req.url ?? '/') });
  const backend = picked === undefined ? undefined : pool.backend(picked.id);
  if (backend === undefined) {
    refuseUpgrade(clientSocket, 503, `no healthy backend in pool ${pool.name}`);
    onClose();
    return;
  }
  const startedMs = monotonicMs();
  pool.balancer.requestStarted(backend.load, startedMs);
  // Upgrade and Connection are hop-by-hop, but an upgrade request must carry them to the next hop.
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers, facts);
  headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade));
  let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
  const upstream: Socket = connect({ host: backend.address.host, port: backend.address.port });
  let connected = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    pool.balancer.requestFinished(backend.load, startedMs, monotonicMs(), undefined);
    upstream.destroy();
    clientSocket.destroy();
    onClose();
  };
  const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), pool.config.timeouts.connectMs);
  upstream.once('connect', () => {
    connected = true;
    clearTimeout(connectTimer);
    upstream.write(`${lines}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(clientSocket);
    clientSocket.pipe(upstream);
  });
  upstream.on('error', (error) => {
    clearTimeout(connectTimer);
    if (!connected) {
      pool.recordOutcome(backend.id, { kind: 'failure', reason: (error as { code?: string }).code === 'ETIMEDOUT' ? 'timeout' : 'connect' });
      refuseUpgrade(clientSocket, 502, `backend ${backend.id} unreachable: ${(error as Error).message}`);
    }
    close();
  });
  // HTTP server sockets allow half-open connections, so an 'end' from either side would leave the
  // tunnel half alive; a tunnel whose one side finished is over.
  upstream.on('end', close);
  upstream.on('close', close);
  clientSocket.on('error', close);
  clientSocket.on('end', close);
  clientSocket.on('close', close);
}
