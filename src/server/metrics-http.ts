// /metrics (Prometheus text format) and /health on their own HTTP port (etcd's
// --listen-metrics-urls), so a scraper or load balancer never competes with gRPC clients.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ServerMetrics } from '../observe/server-metrics.ts';

export interface HealthReport {
  healthy: boolean;
  /** Why the member is unhealthy (e.g. 'no leader', 'NOSPACE alarm'); empty when healthy. */
  reason: string;
}

export interface MetricsHttpOptions {
  metrics: ServerMetrics;
  health: () => HealthReport;
}

export function createMetricsHttpServer(options: MetricsHttpOptions): Server {
  return createServer((request, response) => {
    handle(request, response, options).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${(error as Error).message}\n`);
    });
  });
}

async function handle(request: IncomingMessage, response: ServerResponse, options: MetricsHttpOptions): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD are served here\n');
    return;
  }
  if (path === '/metrics') {
    const body = await options.metrics.text();
    response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(body);
    return;
  }
  if (path === '/health') {
    // The same body etcd serves, so existing health checks work unchanged.
    const report = options.health();
    response.writeHead(report.healthy ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify({ health: String(report.healthy), reason: report.reason }));
    return;
  }
  response.writeHead(404, { 'content-type': 'text/plain' }).end(`no such endpoint ${path}; try /metrics or /health\n`);
}
