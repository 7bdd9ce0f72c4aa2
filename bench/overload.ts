// The overload benchmark: does goodput hold when offered load goes past capacity?
//
//   npx concord bench overload [--json]        # full run (about 9 minutes)
//   npx concord bench overload --quick         # one repetition of short rows (about 2 minutes)
//   npx concord bench overload -- --help
//
// A backend with a known capacity (workers × 1000 / serviceMs requests/s, FIFO queue, see
// overload-backend.ts) sits behind an HTTP front that applies admission control (overload-front.ts);
// an open-loop generator (overload-load.ts) offers Poisson arrivals at 0.5×, 1×, 1.4×, 3× and 10×
// capacity, 5 % critical, 40 % sheddable, the rest default (x-concord-priority). In one run, for
// each limiter: none (no shedding: the peer), fixed (a hand-tuned concurrency limit: the other
// peer), aimd, vegas, gradient. Each row gets a fresh backend and front, a warm-up, then a measured
// window. The 1.4× row starts at 1× for a lead time and steps to 1.4× when the window opens; its
// settle time comes from that step. Repetitions rotate the limiter order; rows report medians.
//
// Measures per row (over requests scheduled in the measured window):
// * goodputFraction: responses 2xx within the SLO (sloMs) per second, over capacity;
// * admitted p50/p99: latency of every request not refused by admission (2xx, 5xx, timeouts);
// * unloadedP99Ms: p99 of the same system at 0.1× capacity without shedding (once per repetition);
// * criticalSuccess: critical requests answered 2xx within the SLO, over critical requests sent;
// * settleMs (1.4× row): time from the step until the run stays near its own final state: 200 ms
//   bins whose goodput is within 20 % of capacity of the final goodput and whose admitted p90 is
//   within a factor 1.5 of the final p90, for at least 80 % of the bins from there to the end
//   (null: never; the final state is the median of the last half; see settleTime);
// * offered load achieved; a run below 95 % of its target is invalid and not counted, and so is a
//   run whose generator sent late by more than 20 ms at p99 (it offered bursts, not the load), or
//   whose backend fired its service timers late by more than 10 ms at p99 (the backend stands for an
//   ideal server and uses almost no CPU: other work on this shared machine starved it, and likely
//   the front too). Rows report medians over valid runs.
// Output: progress on stderr; the table and, as the last line, the JSON summary on stdout (with
// --json, only the JSON line; the table goes to stderr).

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { LIMITER_ALGORITHMS, type LimiterAlgorithm } from '../src/traffic/shed/limiter.ts';
import { aggregate, formatNumber as fixed, goals, median, settleTime, STEP_LOAD, summarize, table, type RunSummary } from './overload-analysis.ts';
import { startBackend } from './overload-backend.ts';
import { startFront } from './overload-front.ts';
import { runLoad, type LoadSpec } from './overload-load.ts';

/** The load of the baseline run without shedding whose p99 is the "unloaded p99". */
const UNLOADED_LOAD = 0.1;

interface Options {
  quick: boolean;
  json: boolean;
  limiters: LimiterAlgorithm[];
  loads: number[];
  seconds: number;
  warmupSeconds: number;
  stepLeadSeconds: number;
  repeats: number;
  workers: number;
  serviceMs: number;
  sloMs: number;
  fixedLimit: number | undefined;
  upstreamTimeoutMs: number;
  requestTimeoutMs: number;
  criticalShare: number;
  sheddableShare: number;
  maxConnections: number;
  seed: number;
  outDir: string;
  /** Keys merged into every limiter's shed section but none's (e.g. {"gradient": {"percentile": 90}}). */
  shedOverrides: Record<string, unknown>;
}

// ---- Command line ----

function listOf<T>(parse: (item: string) => T) {
  return (text: string): T[] => text.split(',').map((item) => item.trim()).filter((item) => item !== '').map(parse);
}

function positiveNumber(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`'${text}' is not a number > 0`);
  return value;
}

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`'${text}' is not a whole number > 0`);
  return value;
}

function share(text: string): number {
  const value = Number(text);
  if (!(value >= 0 && value <= 1)) throw new InvalidArgumentError(`'${text}' is not a share between 0 and 1`);
  return value;
}

function jsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`'${text}' is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`'${text}' is not a JSON object`);
  return value as Record<string, unknown>;
}

function limiterName(text: string): LimiterAlgorithm {
  if (!(LIMITER_ALGORITHMS as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not a limiter; use ${LIMITER_ALGORITHMS.join(', ')}`);
  return text as LimiterAlgorithm;
}

function parseOptions(argv: string[]): Options | undefined {
  const program = new Command('overload')
    .description('Goodput, latency and critical success of admission control under 0.5×–10× overload, against no shedding and a fixed limit.')
    .option('--quick', 'one repetition of 2 s rows (about 2 minutes)', false)
    .option('--json', 'print only the JSON summary line on stdout (the table goes to stderr)', false)
    .option('--limiters <list>', `limiters to compare (${LIMITER_ALGORITHMS.join(',')})`, listOf(limiterName))
    .option('--loads <list>', 'offered loads as multiples of capacity', listOf(positiveNumber))
    .option('--seconds <n>', 'measured seconds per row (default 4, quick 2)', positiveNumber)
    .option('--warmup-seconds <n>', 'unmeasured seconds before each row (default 1.5, quick 1)', positiveNumber)
    .option('--step-lead-seconds <n>', `seconds at 1× before the ${STEP_LOAD}× row steps up (default 2, quick 1.5)`, positiveNumber)
    .option('--repeats <n>', 'repetitions; rows report medians (default 3, quick 1)', positiveInteger)
    .option('--workers <n>', 'backend workers', positiveInteger, 8)
    .option('--service-ms <n>', 'backend service time per request', positiveNumber, 20)
    .option('--slo-ms <n>', 'a response within this is good (and slower ones count as drops for the limiters)', positiveNumber, 100)
    .option('--fixed-limit <n>', 'the fixed limiter\'s limit (default workers + 2)', positiveInteger)
    .option('--upstream-timeout-ms <n>', 'the front\'s timeout for a backend response (504 after it)', positiveInteger, 1000)
    .option('--request-timeout-ms <n>', 'the generator\'s timeout for a response', positiveInteger, 2000)
    .option('--critical-share <x>', 'share of critical requests', share, 0.05)
    .option('--sheddable-share <x>', 'share of sheddable requests', share, 0.4)
    .option('--max-connections <n>', 'most connections the generator opens', positiveInteger, 12_000)
    .option('--seed <n>', 'seed of the arrival schedules', positiveInteger, 20_260_601)
    .option('--shed <json>', 'keys merged into the shed section of every limiter but none, e.g. \'{"gradient":{"percentile":90}}\'', jsonObject, {})
    .option('--out-dir <dir>', 'where logs and summary.json go (default: a new directory under the temp dir)')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return undefined;
    }
    throw error;
  }
  const o = program.opts();
  const quick = o.quick as boolean;
  return {
    quick,
    json: o.json as boolean,
    limiters: (o.limiters as LimiterAlgorithm[] | undefined) ?? ['none', 'fixed', 'aimd', 'vegas', 'gradient'],
    loads: (o.loads as number[] | undefined) ?? [0.5, 1, STEP_LOAD, 3, 10],
    seconds: (o.seconds as number | undefined) ?? (quick ? 2 : 4),
    warmupSeconds: (o.warmupSeconds as number | undefined) ?? (quick ? 1 : 1.5),
    stepLeadSeconds: (o.stepLeadSeconds as number | undefined) ?? (quick ? 1.5 : 2),
    repeats: (o.repeats as number | undefined) ?? (quick ? 1 : 3),
    workers: o.workers as number,
    serviceMs: o.serviceMs as number,
    sloMs: o.sloMs as number,
    fixedLimit: o.fixedLimit as number | undefined,
    upstreamTimeoutMs: o.upstreamTimeoutMs as number,
    requestTimeoutMs: o.requestTimeoutMs as number,
    criticalShare: o.criticalShare as number,
    sheddableShare: o.sheddableShare as number,
    maxConnections: o.maxConnections as number,
    seed: o.seed as number,
    shedOverrides: o.shed as Record<string, unknown>,
    outDir: (o.outDir as string | undefined) ?? join(tmpdir(), `concord-bench-overload-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  };
}

// ---- Configuration of each limiter ----

function capacityRps(options: Options): number {
  return (options.workers * 1000) / options.serviceMs;
}

/** The pool's shed section for a limiter: the issue's example, with drops at the SLO. */
export function shedSectionFor(limiter: LimiterAlgorithm, options: Options): unknown {
  const common = {
    minLimit: 4,
    maxLimit: 1000,
    queue: { maxLength: 100, maxWaitMs: 50 },
    priority: { header: 'x-concord-priority', default: 'default' },
    dropLatencyMs: options.sloMs,
  };
  if (limiter === 'none') return { algorithm: 'none' };
  const section = limiter === 'fixed'
    ? { ...common, algorithm: 'fixed', fixed: { limit: options.fixedLimit ?? options.workers + 2 } }
    : { ...common, algorithm: limiter };
  return mergeDeep(section, options.shedOverrides);
}

function mergeDeep(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = merged[key];
    const bothObjects = typeof value === 'object' && value !== null && !Array.isArray(value) && typeof current === 'object' && current !== null;
    merged[key] = bothObjects ? mergeDeep(current as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return merged;
}

// ---- One run ----

async function runOnce(limiter: RunSummary['limiter'], load: number, repeat: number, options: Options): Promise<RunSummary> {
  const algorithm: LimiterAlgorithm = limiter === 'unloaded' ? 'none' : limiter;
  const name = `${limiter}-${load}x-r${repeat}`;
  const capacity = capacityRps(options);
  const loadAverage = loadavg()[0]!;
  const backend = await startBackend({ workers: options.workers, serviceMs: options.serviceMs }, join(options.outDir, `${name}.backend.log`));
  try {
    const front = await startFront({
      shed: shedSectionFor(algorithm, options), backendUrl: backend.url, upstreamTimeoutMs: options.upstreamTimeoutMs, upstreamConnections: 1024,
    }, join(options.outDir, `${name}.front.log`));
    try {
      const step = load === STEP_LOAD && limiter !== 'unloaded';
      const lead = step ? { rateRps: capacity, durationMs: options.stepLeadSeconds * 1000 } : { rateRps: load * capacity, durationMs: options.warmupSeconds * 1000 };
      const url = new URL(front.url);
      const spec: LoadSpec = {
        host: url.hostname, port: Number(url.port), path: '/work',
        phases: [{ ...lead, measured: false }, { rateRps: load * capacity, durationMs: options.seconds * 1000, measured: true }],
        mix: { critical: options.criticalShare, sheddable: options.sheddableShare },
        seed: options.seed + Math.round(load * 1000),
        requestTimeoutMs: options.requestTimeoutMs,
        maxConnections: options.maxConnections,
        maxRequests: Math.ceil(load * capacity * (options.seconds + options.stepLeadSeconds + options.warmupSeconds) * 2 + 1000),
      };
      const before = await front.state();
      const runStartedMs = performance.now();
      const result = await runLoad(spec, join(options.outDir, `${name}.load.log`));
      const runSeconds = (performance.now() - runStartedMs) / 1000;
      const state = await front.state();
      const frontCpuSeconds = state.cpuSeconds - before.cpuSeconds;
      const stats = await backend.stats();
      const measure = { capacityRps: capacity, sloMs: options.sloMs };
      const summary = summarize({ limiter, load, repeat }, result, measure, {
        frontCpuMicrosPerRequest: (frontCpuSeconds * 1e6) / Math.max(1, result.sentTotal),
        frontCpuCores: frontCpuSeconds / runSeconds,
        finalLimit: state.snapshot.limit,
        minRttMs: state.snapshot.minRttMs,
        sheddingEvents: state.events.length,
        backendWastedShare: stats.served === 0 ? 0 : stats.servedToClosedConnections / stats.served,
        backendTimerLatenessP99Ms: stats.timerLatenessP99Ms,
        loadAverage,
      });
      if (step) Object.assign(summary, settleTime(result, measure));
      // The step row's requests are kept, to look at the transient behind its settle time.
      const detail = step ? { requests: result.requests } : {};
      writeFileSync(join(options.outDir, `${name}.json`), JSON.stringify({ summary, events: state.events, ...detail }));
      return summary;
    } finally {
      await front.stop();
    }
  } finally {
    await backend.stop();
  }
}

// ---- Report ----

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === undefined) return process.exitCode === 0 ? 0 : 2;
  if (options.criticalShare + options.sheddableShare > 1) {
    process.stderr.write('overload: --critical-share plus --sheddable-share must be at most 1\n');
    return 2;
  }
  mkdirSync(options.outDir, { recursive: true });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`overload: capacity ${capacityRps(options)} req/s (${options.workers} workers × ${options.serviceMs} ms), SLO ${options.sloMs} ms, ` +
    `${options.repeats} repetition(s), logs in ${options.outDir}`);
  const runs: RunSummary[] = [];
  const unloaded: RunSummary[] = [];
  const startedMs = performance.now();
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const base = await runOnce('unloaded', UNLOADED_LOAD, repeat, { ...options, seconds: Math.max(options.seconds, 3) });
    unloaded.push(base);
    log(`repeat ${repeat + 1}: unloaded p99 ${fixed(base.admittedP99Ms, 1)} ms (p50 ${fixed(base.admittedP50Ms, 1)} ms)` +
      `  lag p99 ${fixed(base.generatorLagP99Ms, 1)} ms  backend late p99 ${fixed(base.backendTimerLatenessP99Ms, 1)} ms` +
      `  load avg ${fixed(base.loadAverage, 1)}${base.valid ? '' : '  INVALID'}`);
    const order = options.limiters.map((_, i) => options.limiters[(i + repeat) % options.limiters.length]!);
    for (const limiter of order) {
      for (const load of options.loads) {
        const run = await runOnce(limiter, load, repeat, options);
        runs.push(run);
        log(`  ${limiter.padEnd(8)} ${String(load).padStart(4)}×  offered ${fixed(run.offeredRps, 0)}/s  goodput ${fixed(run.goodputFraction, 3)}  ` +
          `p99 ${fixed(run.admittedP99Ms, 1)} ms  critical ${fixed(run.criticalSuccess, 4)}  shed ${fixed(run.shedFraction, 3)}` +
          `${run.load === STEP_LOAD ? `  settle ${run.settleMs ?? 'never'} ${run.binsInBand}` : ''}  limit ${fixed(run.finalLimit, 0)}` +
          `  front ${fixed(run.frontCpuMicrosPerRequest, 0)} µs/req  lag p99 ${fixed(run.generatorLagP99Ms, 1)} ms` +
          `  backend late p99 ${fixed(run.backendTimerLatenessP99Ms, 1)} ms  load avg ${fixed(run.loadAverage, 1)}` +
          `${run.valid ? '' : '  INVALID'}`);
      }
    }
  }
  const validUnloaded = unloaded.filter((run) => run.valid);
  const unloadedP99Ms = median((validUnloaded.length > 0 ? validUnloaded : unloaded).map((run) => run.admittedP99Ms));
  const rows = options.limiters.flatMap((limiter) => options.loads.map((load) => aggregate(runs.filter((r) => r.limiter === limiter && r.load === load), unloadedP99Ms)));
  // The table goes to stdout for a reader, to stderr with --json so stdout holds the JSON line only.
  const report = options.json ? log : (line: string) => process.stdout.write(`${line}\n`);
  report('');
  report(`medians over valid runs of ${options.repeats} repetition(s); goodput = 2xx within ${options.sloMs} ms per second / capacity; ` +
    `unloaded p99 ${fixed(unloadedP99Ms, 1)} ms`);
  report(table(rows));
  const summary = {
    benchmark: 'overload',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, loadavg: loadavg() },
    capacityRps: capacityRps(options),
    backend: { workers: options.workers, serviceMs: options.serviceMs },
    sloMs: options.sloMs,
    repeats: options.repeats,
    seconds: options.seconds,
    durationSeconds: Math.round((performance.now() - startedMs) / 1000),
    goals: goals(rows),
    rows,
  };
  writeFileSync(join(options.outDir, 'summary.json'), JSON.stringify({ ...summary, runs: [...unloaded, ...runs] }, null, 2));
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
