// Several worker processes on one listen port (node:cluster; each worker binds its own
// SO_REUSEPORT socket, so the kernel spreads connections and the primary never touches traffic).
//
// Health is checked once, by the primary: it runs every active probe and broadcasts each result to
// the workers, which feed it to their own copy of the health core, so all processes reach the same
// verdicts. Passive outlier detection sees only a worker's own traffic, so it stays per worker (as
// in Envoy per worker thread); its events are forwarded to the primary's /events. The primary
// serves the admin port for all: /metrics sums the workers' counters (gathered over IPC at scrape
// time), /backends adds up their requests in flight, and drains are broadcast. A worker that dies
// is replaced. SIGTERM drains every worker (each finishes its in-flight requests up to
// proxy.shutdownDrainMs), then the primary exits.

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { ConcordConfig } from '../../control/config.ts';
import type { ProbeResult } from '../health/active-check.ts';
import type { HealthEvent } from '../health/events.ts';
import { PoolAdmissions } from './pool-admissions.ts';
import { StaticPoolSource } from './pool-source.ts';
import { ProxyServer, type PoolsReport } from './proxy-server.ts';

/** How long the primary waits for a worker's answer to a scrape before leaving it out. */
const WORKER_REPORT_TIMEOUT_MS = 2000;

type ToWorker =
  | { type: 'probe'; pool: string; backend: string; result: ProbeResult }
  | { type: 'drain'; pool: string; backend: string; draining: boolean }
  | { type: 'report'; id: number };

type ToPrimary =
  | { type: 'event'; event: HealthEvent }
  | { type: 'report'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[]; backends: PoolsReport }
  | { type: 'listening' };

export async function runProxyWorkers(config: ConcordConfig): Promise<number> {
  return cluster.isPrimary ? runPrimary(config) : runWorker(config);
}

async function runPrimary(config: ConcordConfig): Promise<number> {
  const workers = new Set<Worker>();
  let stopping = false;
  let nextReportId = 1;
  const pendingReports = new Map<number, { worker: Worker; resolve: (reply: Extract<ToPrimary, { type: 'report' }> | undefined) => void }>();
  const broadcast = (message: ToWorker) => {
    for (const worker of workers) if (worker.isConnected()) worker.send(message);
  };
  const primary = await ProxyServer.start({
    settings: config.proxy, source: new StaticPoolSource({ pools: config.pools, routes: config.routes }), serveTraffic: false,
    onProbeResult: (pool, backend, result) => broadcast({ type: 'probe', pool, backend, result }),
  });
  const askWorkers = (): Promise<Extract<ToPrimary, { type: 'report' }>[]> => Promise.all([...workers].map((worker) => new Promise<Extract<ToPrimary, { type: 'report' }> | undefined>((resolve) => {
    const id = nextReportId++;
    const timer = setTimeout(() => {
      pendingReports.delete(id);
      resolve(undefined);
    }, WORKER_REPORT_TIMEOUT_MS);
    pendingReports.set(id, { worker, resolve: (reply) => {
      clearTimeout(timer);
      resolve(reply);
    } });
    worker.send({ type: 'report', id } satisfies ToWorker);
  }))).then((replies) => replies.filter((reply) => reply !== undefined));
  primary.setAdminAggregation({
    metricsText: async () => {
      const replies = await askWorkers();
      const own = await primary.metrics.registry.getMetricsAsJSON();
      return AggregatorRegistry.aggregate([own, ...replies.map((reply) => reply.metrics)]).metrics();
    },
    backends: async () => {
      const report = primary.backendsReport();
      for (const reply of await askWorkers()) {
        for (const pool of reply.backends.pools) {
          const own = report.pools.find((candidate) => candidate.name === pool.name);
          if (own === undefined) continue;
          own.activeRequests += pool.activeRequests;
          for (const backend of pool.backends) {
            const mine = own.backends.find((candidate) => candidate.address === backend.address);
            if (mine !== undefined) mine.activeRequests += backend.activeRequests;
          }
        }
      }
      return report;
    },
    drainChanged: (pool, backend, draining) => broadcast({ type: 'drain', pool, backend, draining }),
  });
  const fork = () => {
    const worker = cluster.fork();
    workers.add(worker);
    // A send to a worker whose channel is closing (it is exiting: SIGTERM, a crash) fails with
    // EPIPE. Without a listener that error would be thrown and stop the primary; its 'exit' comes
    // next and is handled there (a replacement, unless stopping).
    worker.on('error', (error: Error) => {
      if (!stopping) primary.log.notice('message to a worker failed; it is exiting', { pid: worker.process.pid, error: error.message });
    });
    worker.on('message', (message: ToPrimary) => {
      if (message.type === 'event') primary.recordForeignEvent(message.event);
      else if (message.type === 'report') {
        const pending = pendingReports.get(message.id);
        pendingReports.delete(message.id);
        pending?.resolve(message);
      }
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (!stopping) {
        primary.log.notice('worker exited; starting a new one', { pid: worker.process.pid, code, signal });
        fork();
      }
    });
    return worker;
  };
  const listening = Array.from({ length: config.proxy.workers }, () => fork()).map((worker) => new Promise<void>((resolve) => {
    worker.on('message', (message: ToPrimary) => {
      if (message.type === 'listening') resolve();
    });
  }));
  await Promise.all(listening);
  primary.log.notice('proxy started', { listen: config.proxy.listen, admin: config.proxy.admin, workers: config.proxy.workers, pools: config.pools.map((pool) => pool.name) });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      primary.log.notice(`${signal} received: draining ${workers.size} workers`, { deadlineMs: config.proxy.shutdownDrainMs });
      const exits = [...workers].map((worker) => new Promise<void>((done) => {
        worker.once('exit', () => done());
        worker.process.kill('SIGTERM');
      }));
      const deadline = new Promise<void>((done) => setTimeout(done, config.proxy.shutdownDrainMs + 2000).unref());
      Promise.race([Promise.all(exits), deadline]).then(async () => {
        for (const worker of workers) worker.process.kill('SIGKILL');
        await primary.stop(0);
        resolve(0);
      }).catch((error: unknown) => {
        process.stderr.write(`concord proxy: error while stopping: ${(error as Error).message}\n`);
        resolve(1);
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}

async function runWorker(config: ConcordConfig): Promise<number> {
  // Each worker sheds load on its own (a pool's concurrency limit applies per worker, as Envoy's per
  // worker thread); the override on the primary's admin port does not reach them.
  const started: { proxy?: ProxyServer } = {};
  const admissions = new PoolAdmissions({ onEvent: (event) => started.proxy?.recordEvent(event) });
  admissions.setPools(config.pools);
  const proxy = await ProxyServer.start({
    settings: config.proxy, source: new StaticPoolSource({ pools: config.pools, routes: config.routes }), runHealthChecks: false, serveAdmin: false, admission: admissions,
  });
  started.proxy = proxy;
  const send = (message: ToPrimary) => process.send?.(message);
  proxy.onHealthEvent((event) => {
    // Active-check events come from the primary's own verdicts; only this worker's passive ones are news there.
    if (event.cause.startsWith('passive:') || event.cause === 'pool:shedding') send({ type: 'event', event });
  });
  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'probe':
        proxy.applyProbeResult(message.pool, message.backend, message.result);
        break;
      case 'drain':
        if (message.draining) proxy.drainBackend(message.pool, message.backend);
        else proxy.undrainBackend(message.pool, message.backend);
        break;
      case 'report':
        void proxy.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: 'report', id: message.id, metrics, backends: proxy.backendsReport() }));
        break;
    }
  });
  send({ type: 'listening' });
  return new Promise<number>((resolve) => {
    process.once('SIGTERM', () => {
      // The IPC channel to the primary would keep this process alive once the proxy has stopped.
      proxy.stop().then(() => resolve(0), () => resolve(1)).finally(() => process.disconnect?.());
    });
    // Ctrl-C in a terminal reaches every process of the group; the primary coordinates the drain.
    process.on('SIGINT', () => {});
  });
}
