// `concord demo`: a load pattern through a running `concord up`, so a newcomer sees the system act
// within two minutes: a warm-up at low load, a ramp past what the minimum instances can serve (the
// autoscaler adds instances; they take traffic after their checks pass, through slow start), a
// spike past what even the maximum can serve at once (the proxy sheds the excess, critical requests
// keep being served), a crash of one backend (the health checks mark it down, traffic moves away,
// the autoscaler replaces it), then quiet (scale-in, draining first). Then it points at the timeline.
//
// Load is open-loop (requests start at the phase's rate whether or not earlier ones finished), as
// real users send it, and bounded: at most maxInFlight requests at once (beyond that, a request is
// counted as not sent rather than queued without limit), for a fixed total duration.

import { Pool } from 'undici';

export interface DemoPhase {
  name: string;
  durationMs: number;
  /** Requests per second at the phase's start and end (linear in between). */
  fromRps: number;
  toRps: number;
  /** Crash one healthy backend this far into the phase. */
  crashAtMs?: number;
}

/** The built-in pattern, for examples/concord.yaml's pool (about 80 requests/s per instance). */
export const DEMO_PHASES: readonly DemoPhase[] = [
  { name: 'warm-up', durationMs: 15_000, fromRps: 20, toRps: 20 },
  { name: 'ramp', durationMs: 30_000, fromRps: 20, toRps: 260 },
  { name: 'spike', durationMs: 15_000, fromRps: 700, toRps: 700 },
  { name: 'backend failure', durationMs: 25_000, fromRps: 150, toRps: 150, crashAtMs: 3_000 },
  { name: 'quiet', durationMs: 20_000, fromRps: 20, toRps: 20 },
];

/** Share of requests sent as critical (never shed while others can be). */
const CRITICAL_SHARE = 0.1;
const TICK_MS = 50;
/** Keep-alive connections the generator opens to the proxy. */
const PROXY_CONNECTIONS = 128;
/** Default cap on requests in flight (beyond it a request is counted as not sent). */
const DEFAULT_MAX_IN_FLIGHT = 512;
/** How long the end of the run waits for requests still in flight. */
const IN_FLIGHT_WAIT_MS = 10_000;
/** Timeout of each call to the admin API or a backend's fault endpoint. */
export const ADMIN_CALL_TIMEOUT_MS = 5_000;

export interface DemoOptions {
  proxyUrl: string;
  /** The control plane's admin API (to find a backend to crash). */
  adminUrl: string;
  /** Sent with every admin API call (Basic credentials, when the store has authentication on). */
  adminHeaders?: Record<string, string>;
  phases?: readonly DemoPhase[];
  /** Multiplies every phase's duration (tests run a short version). */
  timeScale?: number;
  maxInFlight?: number;
  /** Called about 4 times a second with the progress. */
  onProgress?: (progress: DemoProgress) => void;
  onNote?: (text: string) => void;
  signal?: AbortSignal;
}

export interface Tally {
  sent: number;
  ok: number;
  /** 503 with x-concord-shed: refused on purpose by the proxy's load shedding. */
  shed: number;
  /** Any other non-2xx answer or a transport error. */
  failed: number;
  /** Not sent: maxInFlight requests were already waiting. */
  notSent: number;
}

export interface DemoProgress {
  phase: string;
  elapsedMs: number;
  totalMs: number;
  rps: number;
  byPriority: { critical: Tally; default: Tally };
}

export interface DemoResult {
  startedAtMs: number;
  endedAtMs: number;
  byPriority: { critical: Tally; default: Tally };
  crashed: string[];
}

function emptyTally(): Tally {
  return { sent: 0, ok: 0, shed: 0, failed: 0, notSent: 0 };
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const phases = (options.phases ?? DEMO_PHASES).map((phase) => scalePhase(phase, options.timeScale ?? 1));
  const totalMs = phases.reduce((sum, phase) => sum + phase.durationMs, 0);
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const pool = new Pool(options.proxyUrl, { connections: PROXY_CONNECTIONS, pipelining: 1 });
  const byPriority = { critical: emptyTally(), default: emptyTally() };
  const crashed: string[] = [];
  let inFlight = 0;
  const startedAtMs = Date.now();
  const send = (critical: boolean) => {
    const tally = critical ? byPriority.critical : byPriority.default;
    if (inFlight >= maxInFlight) {
      tally.notSent += 1;
      return;
    }
    inFlight += 1;
    tally.sent += 1;
    pool.request({ path: '/', method: 'GET', headers: critical ? { 'x-concord-priority': 'critical' } : {} }).then(async (response) => {
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) tally.ok += 1;
      else if (response.statusCode === 503 && response.headers['x-concord-shed'] !== undefined) tally.shed += 1;
      else tally.failed += 1;
    }, () => {
      tally.failed += 1;
    }).finally(() => {
      inFlight -= 1;
    });
  };
  try {
    let phaseStartMs = 0;
    let owed = 0;
    let sentCount = 0;
    let lastProgressMs = -Infinity;
    for (const phase of phases) {
      let crashPending = phase.crashAtMs !== undefined;
      for (let atMs = 0; atMs < phase.durationMs; atMs += TICK_MS) {
        if (options.signal?.aborted) return { startedAtMs, endedAtMs: Date.now(), byPriority, crashed };
        const rps = phase.fromRps + ((phase.toRps - phase.fromRps) * atMs) / phase.durationMs;
        owed += (rps * TICK_MS) / 1000;
        while (owed >= 1) {
          owed -= 1;
          sentCount += 1;
          send(sentCount % Math.round(1 / CRITICAL_SHARE) === 0);
        }
        if (crashPending && atMs >= phase.crashAtMs!) {
          crashPending = false;
          const victim = await crashOneBackend(options.adminUrl, options.adminHeaders ?? {}).catch((error: unknown) => `none (${(error as Error).message})`);
          crashed.push(victim);
          options.onNote?.(`crashed backend ${victim}: watch it being marked down and replaced`);
        }
        const elapsedMs = phaseStartMs + atMs;
        if (elapsedMs - lastProgressMs >= 250) {
          lastProgressMs = elapsedMs;
          options.onProgress?.({ phase: phase.name, elapsedMs, totalMs, rps, byPriority });
        }
        await sleepUntil(startedAtMs + elapsedMs + TICK_MS);
      }
      phaseStartMs += phase.durationMs;
    }
    await waitForInFlight(() => inFlight, IN_FLIGHT_WAIT_MS);
    return { startedAtMs, endedAtMs: Date.now(), byPriority, crashed };
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}

function scalePhase(phase: DemoPhase, scale: number): DemoPhase {
  return { ...phase, durationMs: Math.max(TICK_MS, Math.round(phase.durationMs * scale)), ...(phase.crashAtMs === undefined ? {} : { crashAtMs: Math.round(phase.crashAtMs * scale) }) };
}

/** Asks one healthy backend of the first pool to crash (the example app's --faults 1); returns its address. */
async function crashOneBackend(adminUrl: string, headers: Record<string, string>): Promise<string> {
  const overview = await (await fetch(`${adminUrl}/api/overview`, { headers, signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS) })).json() as { pools: { backends: { address: string; state: string }[] }[] };
  const victim = overview.pools.flatMap((pool) => pool.backends).find((backend) => backend.state === 'healthy');
  if (victim === undefined) throw new Error('no healthy backend to crash');
  const response = await fetch(`http://${victim.address}/fault/crash`, { method: 'POST', signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS) }).catch((error: unknown) => ({ status: 0, error }));
  if (response.status !== 202) throw new Error(`${victim.address} did not accept POST /fault/crash (status ${response.status}: start the example app with --faults 1)`);
  return victim.address;
}

function sleepUntil(deadlineMs: number): Promise<void> {
  const waitMs = deadlineMs - Date.now();
  return waitMs <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, waitMs));
}

async function waitForInFlight(count: () => number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
