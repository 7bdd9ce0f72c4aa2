// Test plumbing for the proxy: in-process backends on loopback, a proxy started from a config
// document with ephemeral ports and a fixed seed, and an access-log sink the test can read.

import { createServer, type RequestListener, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { validateConfig } from '../../src/control/config.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import type { Admission } from '../../src/traffic/proxy/admission.ts';
import { StaticPoolSource } from '../../src/traffic/proxy/pool-source.ts';
import { ProxyServer } from '../../src/traffic/proxy/proxy-server.ts';
import { delay } from '../support/child-processes.ts';

export interface TestBackend {
  readonly port: number;
  readonly address: string;
  readonly server: Server;
  /** Requests received, by path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

export async function startBackend(handler: RequestListener): Promise<TestBackend> {
  const sockets = new Set<Socket>();
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    handler(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port, address: `127.0.0.1:${port}`, server, hits,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Collects the proxy's JSON log lines. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
    callback();
  }
}

export interface TestProxy {
  readonly proxy: ProxyServer;
  readonly url: string;
  readonly adminUrl: string;
  readonly log: LogSink;
  stop(): Promise<void>;
}

/** Starts a proxy from a config document (listen and admin on ephemeral ports unless given). */
export async function startProxy(document: Record<string, unknown>, options: { admission?: Admission; seed?: number } = {}): Promise<TestProxy> {
  const proxySection = { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...(document.proxy as Record<string, unknown> | undefined) };
  const config = validateConfig({ ...document, proxy: proxySection });
  const log = new LogSink();
  const proxy = await ProxyServer.start({
    settings: config.proxy, source: new StaticPoolSource({ pools: config.pools, routes: config.routes }),
    admission: options.admission, seed: options.seed ?? 1, log: new AccessLog(log as unknown as ConstructorParameters<typeof AccessLog>[0]),
  });
  return {
    proxy, log,
    url: `http://127.0.0.1:${proxy.trafficAddress.port}`,
    adminUrl: `http://127.0.0.1:${proxy.adminAddress.port}`,
    stop: () => proxy.stop(2000),
  };
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await delay(20);
  }
  return condition();
}

export function pool(name: string, backends: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, backends: backends.map((address) => ({ address })), ...extra };
}

/** Writes `bytes` (optionally in pieces), reads until the proxy closes the connection or `idleMs` passes without a byte. */
export function rawExchange(port: number, pieces: (string | Buffer)[], options: { idleMs?: number; gapMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearTimeout(idle);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => done(false), options.idleMs ?? 1500);
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      armIdle();
    });
    socket.on('close', () => done(true));
    socket.on('error', () => {});
    socket.on('connect', async () => {
      armIdle();
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (options.gapMs !== undefined) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    });
  });
}
