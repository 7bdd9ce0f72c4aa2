// The system under test of the overload benchmark: a real `concord proxy` process whose one pool
// (the benchmark's backend) has the `shed:` section under test. Refused requests are answered
// (503/429 with x-concord-shed) without touching the backend.
//
// startFront({ shed, backendUrl, ... }) -> { url, state, stop }: the proxy is started from a
// generated config file (no retries: a benchmark row measures admission, not retries; no passive
// ejection of the only backend; no access log), warmed up, and its admission state read from the
// admin port (GET /shed). The proxy's first requests open upstream connections and compile code;
// without a warm-up the gradient's first minRTT window, taken from the first 50 requests, would
// measure that and keep the inflated baseline for a whole benchmark row.

import { spawn } from 'node:child_process';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { AdmissionEvent } from '../src/traffic/admission/admission.ts';
import type { AdmissionSnapshot } from '../src/traffic/shed/admission-core.ts';
import { freeLoopbackPorts, stopProcess } from '../test/support/child-processes.ts';
import { processCpuSeconds } from './store-systems.ts';

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

const ENTRY = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_BOUNDS = { graceMs: 3000, killWaitMs: 2000 };
/** Requests sent through the proxy before the benchmark starts, so connections and compiled code are warm. */
const WARM_UP_REQUESTS = 40;
const WARM_UP_CONCURRENCY = 4;

/** The proxy's configuration for one benchmark row. */
export function frontConfig(spec: FrontSpec, listenPort: number, adminPort: number): Record<string, unknown> {
  return {
    proxy: { listen: `127.0.0.1:${listenPort}`, admin: `127.0.0.1:${adminPort}`, accessLog: false, shutdownDrainMs: 1000 },
    pools: [{
      name: 'bench',
      backends: [{ address: new URL(spec.backendUrl).host }],
      shed: spec.shed,
      timeouts: { firstByteMs: spec.upstreamTimeoutMs },
      maxConnectionsPerBackend: spec.upstreamConnections,
      retries: { attempts: 0, unansweredAttempts: 0 },
      outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0, successRate: { requestVolume: 0 } },
      slowStart: { windowMs: 0 },
    }],
  };
}

export async function startFront(spec: FrontSpec, logPath: string): Promise<RunningFront> {
  const [listenPort, adminPort] = await freeLoopbackPorts(2);
  const configPath = join(dirname(logPath), `front-${listenPort}.yaml`);
  writeFileSync(configPath, stringify(frontConfig(spec, listenPort!, adminPort!)));
  const logFd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [ENTRY, 'proxy', '--config', configPath], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const url = `http://127.0.0.1:${listenPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitUntilReady(`${adminUrl}/ready`, child);
    await warmUp(url);
  } catch (error) {
    await stopProcess(child, STOP_BOUNDS);
    throw new Error(`${(error as Error).message}; see ${logPath}`);
  }
  return {
    url,
    state: async () => {
      const shed = (await (await fetch(`${adminUrl}/shed`)).json()) as { pools: (AdmissionSnapshot & { pool: string })[]; events: AdmissionEvent[] };
      const { pool: _pool, ...snapshot } = shed.pools[0]!;
      return { snapshot: snapshot as AdmissionSnapshot, events: shed.events, cpuSeconds: processCpuSeconds(child.pid) };
    },
    stop: () => stopProcess(child, STOP_BOUNDS),
  };
}

async function waitUntilReady(readyUrl: string, child: ReturnType<typeof spawn>): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`concord proxy exited with code ${child.exitCode} before it was ready`);
    const ready = await fetch(readyUrl).then((response) => response.ok, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`concord proxy did not answer ${readyUrl} within ${READY_TIMEOUT_MS} ms`);
}

async function warmUp(url: string): Promise<void> {
  for (let round = 0; round < WARM_UP_REQUESTS / WARM_UP_CONCURRENCY; round++) {
    await Promise.all(Array.from({ length: WARM_UP_CONCURRENCY }, async () => {
      const response = await fetch(`${url}/warm-up`);
      await response.arrayBuffer();
    }));
  }
}
