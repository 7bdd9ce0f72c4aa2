// The overload benchmark's backend: a server with a known capacity, as a real one has. A fixed
// number of workers each serve one request at a time for a fixed service time; requests wait in an
// unbounded FIFO queue for a worker, so latency grows without bound when more arrives than the
// workers can serve. Capacity = workers × 1000 / serviceMs requests per second.
//
// Service is simulated with timers, not CPU (the machine has two shared cores), and on a virtual
// schedule: a worker's next request starts when its previous one was due to end, not when the
// timer happened to fire, so timer lateness delays responses but never lowers the capacity.
// Like many real servers, it does not notice that a client gave up: a queued request is served
// even if its connection closed, which is the wasted work that makes overload collapse.

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isMainModule, specFromArgv, startChild, type RunningChild } from './overload-processes.ts';

export interface BackendSpec {
  workers: number;
  serviceMs: number;
}

export interface BackendStats {
  served: number;
  /** Served after the client had closed the connection: wasted work. */
  servedToClosedConnections: number;
  maxQueueLength: number;
  /**
   * p99 of how late the service timers fired, in ms. The backend uses almost no CPU, so on a quiet
   * machine this is about a millisecond; tens of milliseconds mean other work starved the machine.
   */
  timerLatenessP99Ms: number;
}

export interface RunningBackend {
  url: string;
  stats(): Promise<BackendStats>;
  stop(): Promise<void>;
}

const BODY = Buffer.from('ok');
/** Timer lateness is kept for this many recent requests (a run's worth at the benchmark's rates). */
const LATENESS_SAMPLES = 50_000;

export async function startBackend(spec: BackendSpec, logPath: string): Promise<RunningBackend> {
  const running: RunningChild<{ url: string }> = await startChild(fileURLToPath(import.meta.url), spec, logPath);
  return {
    url: running.ready.url,
    stats: async () => (await (await fetch(`${running.ready.url}/__stats`)).json()) as BackendStats,
    stop: running.stop,
  };
}

function serve(spec: BackendSpec): Promise<string> {
  const queue: { res: ServerResponse; arrivedMs: number }[] = [];
  /** Per worker: when its current request is due to end (virtual time, ms); undefined when idle. */
  const busyUntilMs: (number | undefined)[] = new Array<number | undefined>(spec.workers).fill(undefined);
  const stats: BackendStats = { served: 0, servedToClosedConnections: 0, maxQueueLength: 0, timerLatenessP99Ms: 0 };
  /** Lateness of the last LATENESS_SAMPLES timers, a ring. */
  const lateness = new Float64Array(LATENESS_SAMPLES);
  let latenessCount = 0;

  const startNext = (worker: number, freeAtMs: number) => {
    const next = queue.shift();
    if (next === undefined) {
      busyUntilMs[worker] = undefined;
      return;
    }
    // Service starts when both the worker and the request were there: a late timer does not steal capacity.
    const endMs = Math.max(freeAtMs, next.arrivedMs) + spec.serviceMs;
    busyUntilMs[worker] = endMs;
    setTimeout(() => finish(worker, next.res, endMs), Math.max(0, Math.ceil(endMs - performance.now())));
  };
  const finish = (worker: number, res: ServerResponse, endMs: number) => {
    lateness[latenessCount++ % LATENESS_SAMPLES] = Math.max(0, performance.now() - endMs);
    stats.served += 1;
    if (res.destroyed) stats.servedToClosedConnections += 1;
    else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY);
    startNext(worker, endMs);
  };

  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/__stats') {
      const recent = Array.from(lateness.subarray(0, Math.min(latenessCount, LATENESS_SAMPLES))).sort((a, b) => a - b);
      stats.timerLatenessP99Ms = recent.length === 0 ? 0 : recent[Math.ceil(0.99 * recent.length) - 1]!;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    queue.push({ res, arrivedMs: performance.now() });
    stats.maxQueueLength = Math.max(stats.maxQueueLength, queue.length);
    const idle = busyUntilMs.indexOf(undefined);
    if (idle >= 0) startNext(idle, performance.now());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

if (isMainModule(import.meta.url)) {
  const spec = specFromArgv<BackendSpec>(process.argv.slice(2));
  process.on('SIGTERM', () => process.exit(0)); // exits through Node's exit hooks (so --cpu-prof can write its profile)
  process.stdout.write(`${JSON.stringify({ url: await serve(spec) })}\n`);
}
