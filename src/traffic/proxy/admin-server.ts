// The admin port (separate from traffic, never shed): /metrics (Prometheus), /backends (JSON),
// /events (JSON, ?after=SEQ for only newer ones), /ready, and POST .../drain and .../undrain;
// extensions answer first (load shedding's GET /shed and PUT /shed/override). Mutating requests
// pass the proxy's admin gate first, when it has one (a store-fed proxy on a store with
// authentication on asks for a store user allowed to make the change: admin-auth.ts).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ProxyServer } from './proxy-server.ts';

const DRAIN_PATH = /^\/pools\/([^/]+)\/backends\/([^/]+)\/(drain|undrain)$/;

export function createAdminServer(proxy: ProxyServer): Server {
  return createServer((request, response) => {
    handle(proxy, request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`internal error: ${(error as Error).message}\n`);
    });
  });
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
}

async function handle(proxy: ProxyServer, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const method = request.method ?? 'GET';
  if (proxy.adminGate !== undefined && method !== 'GET' && method !== 'HEAD') {
    try {
      await proxy.adminGate(request, new URL(request.url ?? '/', 'http://admin').pathname);
    } catch (error) {
      const refusal = error as { status?: unknown; code?: unknown; message: string; headers?: Record<string, string> };
      if (typeof refusal.status !== 'number' || typeof refusal.code !== 'string') throw error;
      response.writeHead(refusal.status, { ...refusal.headers, 'content-type': 'application/json' }).end(`${JSON.stringify({ error: { code: refusal.code, message: refusal.message } })}\n`);
      return;
    }
  }
  for (const extension of proxy.extensions) if (extension.handleAdmin?.(request, response) === true) return;
  const url = new URL(request.url ?? '/', 'http://admin');
  const drain = DRAIN_PATH.exec(url.pathname);
  if (drain !== null) {
    if (method !== 'POST') {
      response.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST to drain or undrain a backend\n');
      return;
    }
    const [, pool, backend, action] = drain.map((part) => decodeURIComponent(part)) as [string, string, string, string];
    const result = action === 'drain' ? proxy.drainBackend(pool, backend) : proxy.undrainBackend(pool, backend);
    if (typeof result === 'string') json(response, 404, { error: result });
    else json(response, 202, result);
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD are served here (POST for drain)\n');
    return;
  }
  switch (url.pathname) {
    case '/metrics': {
      const text = await proxy.metricsText();
      response.writeHead(200, { 'content-type': proxy.metrics.registry.contentType }).end(text);
      return;
    }
    case '/backends':
      json(response, 200, await proxy.backendsView());
      return;
    case '/events': {
      const after = Number(url.searchParams.get('after') ?? '0');
      if (!Number.isSafeInteger(after) || after < 0) {
        json(response, 400, { error: "'after' must be a non-negative whole number (the last seq you have)" });
        return;
      }
      json(response, 200, proxy.events.since(after));
      return;
    }
    case '/ready':
      if (proxy.isStopping) response.writeHead(503, { 'content-type': 'text/plain' }).end('draining\n');
      else response.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      return;
    default:
      response.writeHead(404, { 'content-type': 'text/plain' })
        .end(`no such endpoint ${url.pathname}; try /metrics, /backends, /events, /ready, POST /pools/POOL/backends/HOST:PORT/drain\n`);
  }
}
