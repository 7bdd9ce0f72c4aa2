// The system under test of the overload benchmark: an HTTP front that applies Concord's admission
// control (src/traffic/admission) to every request and forwards the admitted ones to the backend.
// Refused requests are answered (503/429 with x-concord-shed) without touching the backend.
//
// The real proxy (`concord proxy`, issue 5) is not on this branch, so the front is a minimal
// node:http server with an undici Pool as forwarder, behind the interface the benchmark uses:
// startFront({ shed, backendUrl, ... }) -> { url, state, stop }. When the proxy is merged, the lead
// switches startFront to start `concord proxy` with the shed section in its pool's config; nothing
// else in the benchmark changes.
//
// Forwarding: an admitted request goes to the backend with a timeout of upstreamTimeoutMs (504 on
// expiry, as a proxy's request timeout); its RTT and whether it dropped (timeout, 503, 504) are
// the sample the limiter learns from. GET /__front/state returns the admission snapshot and events,
// GET /__front/metrics the admission metrics.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { parseShedConfig } from '../src/control/shed-config.ts';
import { createAdmission, type AdmissionEvent, type AdmittedRequest } from '../src/traffic/admission/admission.ts';
import { ShedMetrics } from '../src/traffic/admission/shed-metrics.ts';
import type { AdmissionSnapshot } from '../src/traffic/shed/admission-core.ts';
import { isMainModule, specFromArgv, startChild } from './overload-processes.ts';

export interface FrontSpec {
  /** The pool's `shed:` section, as in a config file. */
  shed: unknown;
  backendUrl: string;
  upstreamTimeoutMs: number;
  /** Upstream connections to the backend (Envoy's default circuit breaker allows 1024). */
  upstreamConnections: number;
}

export interface FrontState {
  snapshot: AdmissionSnapshot;
  events: AdmissionEvent[];
  /** CPU time the front process has used since it started (user + system). */
  cpuSeconds: number;
}

export interface RunningFront {
  url: string;
  state(): Promise<FrontState>;
  stop(): Promise<void>;
}

export const FRONT_STATE_PATH = '/__front/state';
export const FRONT_METRICS_PATH = '/__front/metrics';

export async function startFront(spec: FrontSpec, logPath: string): Promise<RunningFront> {
  const running = await startChild<{ url: string }>(fileURLToPath(import.meta.url), spec, logPath);
  return {
    url: running.ready.url,
    state: async () => (await (await fetch(`${running.ready.url}${FRONT_STATE_PATH}`)).json()) as FrontState,
    stop: running.stop,
  };
}

async function serve(spec: FrontSpec): Promise<string> {
  const metrics = new ShedMetrics();
  const admission = createAdmission({ pool: 'bench', settings: parseShedConfig(spec.shed), metrics });
  const upstream = new Pool(spec.backendUrl, { connections: spec.upstreamConnections, keepAliveTimeout: 60_000 });
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === FRONT_STATE_PATH) {
      const cpu = process.cpuUsage();
      const body = JSON.stringify({ snapshot: admission.snapshot(), events: admission.recentEvents(), cpuSeconds: (cpu.user + cpu.system) / 1e6 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    if (req.url === FRONT_METRICS_PATH) {
      void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': 'text/plain' }).end(text));
      return;
    }
    const clientGone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
    admission
      .admit({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, clientKey: req.socket.remoteAddress ?? '' }, { signal: clientGone.signal })
      .then((decision) => {
        if (decision.admitted) return forward(req, res, decision, clientGone.signal);
        res.writeHead(decision.status, decision.headers).end();
      })
      .catch((error: unknown) => {
        process.stderr.write(`front: ${String(error)}\n`);
        if (!res.headersSent) res.writeHead(500, { 'content-length': 0 }).end();
      });
  });

  async function forward(req: IncomingMessage, res: ServerResponse, decision: AdmittedRequest, clientGone: AbortSignal): Promise<void> {
    const startedMs = performance.now();
    const timeout = AbortSignal.timeout(spec.upstreamTimeoutMs);
    try {
      const response = await upstream.request({ path: req.url ?? '/', method: 'GET', signal: AbortSignal.any([clientGone, timeout]) });
      const body = Buffer.from(await response.body.arrayBuffer());
      const status = response.statusCode;
      decision.release({ rttMs: performance.now() - startedMs, dropped: status === 503 || status === 504 });
      res.writeHead(status, { 'content-length': body.length }).end(body);
    } catch {
      if (clientGone.aborted) {
        decision.release({ ignored: true });
        return;
      }
      decision.release({ rttMs: performance.now() - startedMs, dropped: true });
      if (!res.headersSent) res.writeHead(timeout.aborted ? 504 : 502, { 'content-length': 0 }).end();
    }
  }

  await warmUp(upstream);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

/** Requests sent to the backend before the front listens, so connections and compiled code are warm. */
const WARM_UP_REQUESTS = 40;
const WARM_UP_CONCURRENCY = 4;

/**
 * A proxy meets its first request with upstream connections open and its code compiled (health
 * checks ran before traffic). Without this the gradient's first minRTT window, taken from the first
 * 50 requests, would measure connection setup and cold code, and keep that inflated baseline for a
 * whole benchmark row.
 */
async function warmUp(upstream: Pool): Promise<void> {
  for (let round = 0; round < WARM_UP_REQUESTS / WARM_UP_CONCURRENCY; round++) {
    await Promise.all(Array.from({ length: WARM_UP_CONCURRENCY }, async () => {
      const response = await upstream.request({ path: '/warm-up', method: 'GET' });
      await response.body.arrayBuffer();
    }));
  }
}


if (isMainModule(import.meta.url)) {
  const spec = specFromArgv<FrontSpec>(process.argv.slice(2));
  process.on('SIGTERM', () => process.exit(0)); // exits through Node's exit hooks (so --cpu-prof can write its profile)
  process.stdout.write(`${JSON.stringify({ url: await serve(spec) })}\n`);
}
