// A tiny HTTP front for the admission tests: admission control in front of a forwarder, on loopback,
// and a backend whose responses the test releases by hand, so that what is in flight is known.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import type { PoolAdmission } from '../../../src/traffic/admission/admission.ts';
import { handleShedAdmin } from '../../../src/traffic/admission/admin-routes.ts';

const WAIT_STEP_MS = 5;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Waits until `condition` holds, polling, or fails after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
  }
}

export interface HeldBackend {
  url: string;
  /** Requests that reached the backend, in arrival order (their paths). */
  readonly arrivals: string[];
  /** Responses not yet sent. */
  readonly held: number;
  /** Sends the oldest held response (status 200, body 'ok'). */
  respondOne(status?: number): void;
  respondAll(): void;
  close(): Promise<void>;
}

export async function startHeldBackend(): Promise<HeldBackend> {
  const arrivals: string[] = [];
  const held: { res: ServerResponse }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrivals.push(req.url ?? '/');
    held.push({ res });
  });
  const url = await listen(server);
  const respond = (status: number) => {
    const next = held.shift();
    if (next === undefined) throw new Error('no held response to send');
    next.res.writeHead(status, { 'content-length': 2 }).end('ok');
  };
  return {
    url,
    arrivals,
    get held() {
      return held.length;
    },
    respondOne: (status = 200) => respond(status),
    respondAll: () => {
      while (held.length > 0) respond(200);
    },
    close: () => closeServer(server),
  };
}

export interface TestFront {
  url: string;
  adminUrl: string;
  close(): Promise<void>;
}

/** Admission, then forwarding to `backendUrl`; refusals are answered without touching the backend. */
export async function startTestFront(admissions: ReadonlyMap<string, PoolAdmission>, backendUrl: string): Promise<TestFront> {
  const admission = [...admissions.values()][0]!;
  const upstream = new Agent({ connections: 64 });
  const server = createServer((req, res) => {
    const clientGone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
    void admission.admit({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, clientKey: req.socket.remoteAddress ?? '' }, { signal: clientGone.signal })
      .then(async (decision) => {
        if (!decision.admitted) {
          res.writeHead(decision.status, decision.headers).end();
          return;
        }
        const startedMs = performance.now();
        try {
          const response = await request(`${backendUrl}${req.url}`, { method: 'GET', dispatcher: upstream, signal: clientGone.signal });
          const body = await response.body.text();
          decision.release({ rttMs: performance.now() - startedMs, dropped: response.statusCode === 503 });
          res.writeHead(response.statusCode, { 'content-length': Buffer.byteLength(body) }).end(body);
        } catch {
          decision.release({ ignored: true });
          if (!res.headersSent) res.writeHead(502, { 'content-length': 0 }).end();
        }
      });
  });
  const admin = createServer((req, res) => {
    if (!handleShedAdmin(req, res, admissions)) res.writeHead(404).end();
  });
  const url = await listen(server);
  const adminUrl = await listen(admin);
  return {
    url,
    adminUrl,
    close: async () => {
      await Promise.all([closeServer(server), closeServer(admin)]);
      await upstream.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One client request through its own agent, so tests control their connections. */
export async function get(agent: Agent, url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Reply> {
  const response = await request(url, { dispatcher: agent, headers, signal });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}
