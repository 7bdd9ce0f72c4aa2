// The store benchmark: Concord against etcd 3.4, one member or a 3-member cluster each (--members), in the same run.
//
//   npm run bench:store                         # full run (about 20 minutes)
//   npm run bench:store -- --quick              # smoke run, under 2 minutes, no check perf
//   node bench/store.ts --help
//
// Every measurement starts the system under test in a fresh data dir under --data-root (both on the
// same disk), waits until a linearizable range succeeds, runs one load, stops it and deletes the
// data dir. Durability is the same for both: fsync on (etcd's default; Concord's WAL default), one
// member, heartbeat 100 ms and election timeout 1 s (both defaults). Each repetition runs every
// measurement against both systems, etcd first in even repetitions and Concord first in odd ones,
// so drift on this shared machine falls on both; the summary reports medians over repetitions.
// With --members 3, the leader is put on member 1 before every measurement, for both systems
// (leader-placement.ts): at 1 and 64 clients the load has one connection, to member 1, and a
// write through a follower costs a forward, so a random first election must not decide the ratio.
//
// Loads:
// * `etcdctl check perf --load=s|m|l`: etcd's own pass/fail check (fixed 60 s each, see check-perf.ts).
// * gRPC put and range (linearizable get) at 1, 64 and 1000 concurrent clients, by one generator in
//   its own process, the same for both systems: by default the Go one, on etcd's own client
//   (go-load.ts, built from Debian's packaged sources on first use), or the Node.js one on grpc-js
//   (grpc-load.ts, `--generator node`), which saturates its core at 1000 clients (see go-load.ts).
//   Defaults follow the setup of etcd's published benchmark (`benchmark put --key-size=8
//   --val-size=256`): 8-byte keys, 256-byte values, and a key space of 10,000 keys chosen uniformly
//   at random (put overwrites them; range preloads them first, unmeasured). One HTTP/2 connection
//   per 64 logical clients, as `benchmark --conns`.
//
// Output: progress and a table on stderr; the last line on stdout is a JSON summary with, per load
// and client count, each system's median ops/s, p50 and p99 (from a log-linear histogram), and the
// Concord/etcd ratios; the check-perf verdicts; machine facts and the date. Logs of every member,
// generator and etcdctl run go to --out-dir, with summary.json.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CHECK_PERF_LOADS, isCheckPerfLoad, runCheckPerf, type CheckPerfLoad, type CheckPerfResult, type Verdict } from './check-perf.ts';
import { placeLeaderOnFirstMember } from './leader-placement.ts';
import { buildGoLoad, LOAD_GENERATORS, type LoadGenerator } from './go-load.ts';
import { runLoadInChildProcess, type LoadOp, type LoadResult } from './grpc-load.ts';
import { LatencyHistogram } from './latency-histogram.ts';
import { ETCD_BINARY, MEMBER_COUNTS, SYSTEM_NAMES, startSystem, type MemberCount, type RunningSystem, type SystemName } from './store-systems.ts';

const REQUEST_TIMEOUT_MS = 30_000;
/** Above this many logical clients per process the generator would need more processes; 1000 is the top. */
const CLIENTS_MAX = 10_000;

interface BenchOptions {
  loads: CheckPerfLoad[];
  ops: LoadOp[];
  clients: number[];
  systems: SystemName[];
  seconds: number;
  warmupSeconds: number;
  repeats: number;
  checkPerfRepeats: number;
  keys: number;
  keySizeBytes: number;
  valueSizeBytes: number;
  clientsPerChannel: number;
  generator: LoadGenerator;
  outDir: string;
  dataRoot: string;
  cpuProf: boolean;
  members: MemberCount;
}

type Measurement =
  | { kind: 'grpc'; op: LoadOp; clients: number }
  | { kind: 'check-perf'; load: CheckPerfLoad };

interface LoadRun {
  repeat: number;
  opsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  maxMs?: number;
  completed?: number;
  errors?: number;
  errorSamples?: string[];
  /** CPU cores the server and the generator used while the generator ran (1.0 = one core busy). */
  serverCpuCores?: number;
  generatorCpuCores?: number;
  /** 3 members: the member (1-based) that led before the leader was put on member 1 (see leader-placement.ts). */
  leaderBefore?: number;
  /** Set when the run produced no figures: the member did not start, the generator failed. */
  error?: string;
}

interface CheckPerfRun extends CheckPerfResult {
  /** 3 members: the member (1-based) that led before the leader was put on member 1 (see leader-placement.ts). */
  leaderBefore?: number;
  repeat: number;
}

// ---- Command line ----

function listOf<T>(parse: (item: string) => T) {
  return (text: string): T[] => text.split(',').map((item) => item.trim()).filter((item) => item !== '' && item !== 'none').map(parse);
}

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`'${text}' is not a positive whole number`);
  return value;
}

function nonNegativeNumber(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`'${text}' is not a number >= 0`);
  return value;
}

function checkPerfLoad(text: string): CheckPerfLoad {
  if (!isCheckPerfLoad(text)) throw new InvalidArgumentError(`'${text}' is not a check perf load; use ${CHECK_PERF_LOADS.join(', ')} or none`);
  return text;
}

function loadOp(text: string): LoadOp {
  if (text !== 'put' && text !== 'range') throw new InvalidArgumentError(`'${text}' is not a gRPC load; use put, range or none`);
  return text;
}

function systemName(text: string): SystemName {
  if (!(SYSTEM_NAMES as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not a system; use etcd, concord`);
  return text as SystemName;
}

function clientCount(text: string): number {
  const value = positiveInteger(text);
  if (value > CLIENTS_MAX) throw new InvalidArgumentError(`${value} clients is above the generator's bound of ${CLIENTS_MAX}`);
  return value;
}

function listOption<T>(flags: string, description: string, parse: (item: string) => T, defaults: T[]): Option {
  return new Option(flags, description).argParser(listOf(parse)).default(defaults, defaults.join(','));
}

function buildProgram(): Command {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return new Command('bench:store')
    .description('Concord vs etcd 3.4 (one member or three each, fsync on): etcdctl check perf and a gRPC put/range load. JSON summary on the last stdout line.')
    .option('--quick', 'smoke run under ~2 minutes: no check perf, 3 s per run, 1 repetition (explicit options still win)')
    .addOption(listOption('--loads <list>', `etcdctl check perf loads (${CHECK_PERF_LOADS.join(',')}; 'none' to skip); 60 s each per system`, checkPerfLoad, ['s', 'm', 'l']))
    .addOption(listOption('--ops <list>', "gRPC loads: put, range ('none' to skip)", loadOp, ['put', 'range']))
    .addOption(listOption('--clients <list>', 'concurrent logical gRPC clients per run', clientCount, [1, 64, 1000]))
    .addOption(listOption('--systems <list>', 'systems to measure; ratios need both', systemName, [...SYSTEM_NAMES]))
    .option('--seconds <n>', 'measured seconds per gRPC run', positiveInteger, 10)
    .option('--warmup-seconds <n>', 'unmeasured seconds before each gRPC run (default: seconds / 5, at most 2)', nonNegativeNumber)
    .option('--repeats <n>', 'repetitions of each gRPC run per system (etcd and Concord alternate going first); medians are reported', positiveInteger, 3)
    .option('--check-perf-repeats <n>', 'repetitions of each check perf load per system', positiveInteger, 1)
    .option('--keys <n>', 'key space: distinct keys the load picks from uniformly', positiveInteger, 10_000)
    .option('--key-size <bytes>', 'key size (zero-padded decimal)', positiveInteger, 8)
    .option('--value-size <bytes>', 'value size', positiveInteger, 256)
    .option('--clients-per-channel <n>', 'logical clients sharing one HTTP/2 connection', positiveInteger, 64)
    .addOption(new Option('--generator <name>', 'the gRPC load generator: go (etcd\'s Go client, built by scripts/build-go-load.sh) or node (@grpc/grpc-js; saturates its core at 1000 clients)').choices([...LOAD_GENERATORS]).default('go'))
    .option('--out-dir <dir>', 'where logs, profiles and summary.json go', join(tmpdir(), `concord-bench-store-${stamp}`))
    .option('--data-root <dir>', 'parent of the fresh data dirs (same disk for both systems)', tmpdir())
    .option('--cpu-prof', 'write a V8 CPU profile of every Concord server process into <out-dir>/profiles')
    .addOption(new Option('--members <n>', 'members per system: 1, or a 3-member cluster of each (the load spreads its connections over the members; the leader is put on member 1 before every run)').choices(MEMBER_COUNTS.map(String)).default('1'))
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
}

function resolveOptions(program: Command): BenchOptions {
  const raw = program.opts<Record<string, unknown>>();
  const quick = raw.quick === true;
  const pick = <T>(name: string, quickValue: T): T => (quick && program.getOptionValueSource(name) === 'default' ? quickValue : raw[name] as T);
  const seconds = pick<number>('seconds', 3);
  const options: BenchOptions = {
    loads: pick<CheckPerfLoad[]>('loads', []),
    ops: raw.ops as LoadOp[],
    clients: raw.clients as number[],
    systems: [...new Set(raw.systems as SystemName[])],
    seconds,
    warmupSeconds: (raw.warmupSeconds as number | undefined) ?? Math.min(2, seconds / 5),
    repeats: pick<number>('repeats', 1),
    checkPerfRepeats: raw.checkPerfRepeats as number,
    keys: raw.keys as number,
    keySizeBytes: raw.keySize as number,
    valueSizeBytes: raw.valueSize as number,
    clientsPerChannel: raw.clientsPerChannel as number,
    generator: raw.generator as LoadGenerator,
    outDir: raw.outDir as string,
    dataRoot: raw.dataRoot as string,
    cpuProf: raw.cpuProf === true,
    members: Number(raw.members) as MemberCount,
  };
  if (options.systems.length === 0) throw new InvalidArgumentError('--systems is empty: give etcd, concord or both');
  if (String(options.keys - 1).length > options.keySizeBytes) {
    throw new InvalidArgumentError(`--keys ${options.keys} do not fit in --key-size ${options.keySizeBytes}: raise the key size`);
  }
  return options;
}

// ---- Running ----

function planRepeat(options: BenchOptions, repeat: number): Measurement[] {
  const plan: Measurement[] = [];
  if (repeat < options.checkPerfRepeats) for (const load of options.loads) plan.push({ kind: 'check-perf', load });
  if (repeat < options.repeats) {
    for (const op of options.ops) for (const clients of options.clients) plan.push({ kind: 'grpc', op, clients });
  }
  return plan;
}

function labelOf(measurement: Measurement): string {
  return measurement.kind === 'grpc' ? `${measurement.op}-c${measurement.clients}` : `check-perf-${measurement.load}`;
}

class Results {
  readonly grpc = new Map<string, Record<SystemName, LoadRun[]>>();
  readonly checkPerf = new Map<CheckPerfLoad, Record<SystemName, CheckPerfRun[]>>();

  addLoad(op: LoadOp, clients: number, system: SystemName, run: LoadRun): void {
    const key = `${op}/${clients}`;
    const entry = this.grpc.get(key) ?? { etcd: [], concord: [] };
    entry[system].push(run);
    this.grpc.set(key, entry);
  }

  addCheckPerf(load: CheckPerfLoad, system: SystemName, run: CheckPerfRun): void {
    const entry = this.checkPerf.get(load) ?? { etcd: [], concord: [] };
    entry[system].push(run);
    this.checkPerf.set(load, entry);
  }
}

function loadRunFrom(result: LoadResult, repeat: number, serverCpuCores: number): LoadRun {
  const histogram = LatencyHistogram.fromJSON(result.histogram);
  return {
    repeat,
    opsPerSecond: result.opsPerSecond,
    p50Ms: histogram.percentileMs(50),
    p99Ms: histogram.percentileMs(99),
    p999Ms: histogram.percentileMs(99.9),
    maxMs: histogram.maxMs,
    completed: result.completed,
    errors: result.errors,
    errorSamples: result.errorSamples,
    serverCpuCores,
    generatorCpuCores: result.generatorCpuCores,
  };
}

async function runMeasurement(options: BenchOptions, measurement: Measurement, system: SystemName, repeat: number, results: Results): Promise<string> {
  const label = `${labelOf(measurement)}-r${repeat + 1}`;
  const cpuProfileDir = options.cpuProf && system === 'concord' ? join(options.outDir, 'profiles', label) : undefined;
  if (cpuProfileDir !== undefined) mkdirSync(cpuProfileDir, { recursive: true });
  let running: RunningSystem;
  try {
    running = await startSystem(system, { dataRoot: options.dataRoot, logPath: join(options.outDir, `${system}-${label}.log`), cpuProfileDir, members: options.members });
  } catch (error) {
    return `did not start: ${recordUnmeasured(results, measurement, system, repeat, error as Error)}`;
  }
  try {
    let leaderBefore: number | undefined;
    try {
      if (options.members > 1) leaderBefore = (await placeLeaderOnFirstMember(running.endpoint.split(','))).leaderBefore;
    } catch (error) {
      return `not measured: ${recordUnmeasured(results, measurement, system, repeat, error as Error)}`;
    }
    const placement = leaderBefore === undefined ? '' : ` [leader was member ${leaderBefore}]`;
    if (measurement.kind === 'check-perf') {
      const result = await runCheckPerf(measurement.load, running.endpoint, join(options.outDir, `etcdctl-${system}-${label}.log`));
      results.addCheckPerf(measurement.load, system, { ...result, repeat, leaderBefore });
      return describeCheckPerf(result) + placement;
    }
    const spec = {
      endpoint: running.endpoint, op: measurement.op, clients: measurement.clients, clientsPerChannel: options.clientsPerChannel,
      warmupSeconds: options.warmupSeconds, seconds: options.seconds, keyCount: options.keys,
      keySizeBytes: options.keySizeBytes, valueSizeBytes: options.valueSizeBytes, requestTimeoutMs: REQUEST_TIMEOUT_MS,
    };
    try {
      const cpuBefore = running.cpuSeconds();
      const wallBefore = performance.now();
      const result = await runLoadInChildProcess(spec, join(options.outDir, `load-${system}-${label}.log`), options.generator);
      const serverCpuCores = (running.cpuSeconds() - cpuBefore) / ((performance.now() - wallBefore) / 1000);
      const run = { ...loadRunFrom(result, repeat, serverCpuCores), leaderBefore };
      results.addLoad(measurement.op, measurement.clients, system, run);
      const errors = run.errors ? `, ${run.errors} errors (${run.errorSamples?.[0] ?? ''})` : '';
      const cpu = `cpu: server ${formatCores(run.serverCpuCores)}, generator ${formatCores(run.generatorCpuCores)}`;
      return `${formatRate(run.opsPerSecond)} ${unitOf(measurement.op)}, p50 ${formatMs(run.p50Ms)}, p99 ${formatMs(run.p99Ms)}${errors}; ${cpu}${placement}`;
    } catch (error) {
      results.addLoad(measurement.op, measurement.clients, system, { repeat, error: (error as Error).message });
      return `failed: ${(error as Error).message}`;
    }
  } finally {
    await running.stop();
  }
}

/** Records a measurement that produced no figures (the system did not start, the leader could not be placed); returns why. */
function recordUnmeasured(results: Results, measurement: Measurement, system: SystemName, repeat: number, error: Error): string {
  const message = error.message;
  if (measurement.kind === 'grpc') results.addLoad(measurement.op, measurement.clients, system, { repeat, error: message });
  else results.addCheckPerf(measurement.load, system, { load: measurement.load, verdict: 'ERROR', elapsedSeconds: 0, error: message, repeat });
  return message;
}

function describeCheckPerf(result: Pick<CheckPerfResult, 'verdict' | 'throughputWritesPerSecond' | 'slowestSeconds' | 'stddevSeconds' | 'error'>): string {
  const part = (name: string, criterion: { pass: boolean; value: number } | undefined, unit: string) =>
    criterion === undefined ? `${name} ?` : `${name} ${criterion.value}${unit} ${criterion.pass ? 'ok' : 'FAIL'}`;
  return `${result.verdict}: ${part('throughput', result.throughputWritesPerSecond, ' writes/s')}, ` +
    `${part('slowest', result.slowestSeconds, ' s')}, ${part('stddev', result.stddevSeconds, ' s')}` +
    (result.error ? ` (${result.error})` : '');
}

// ---- Summary ----

function median(values: number[]): number | null {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function round(value: number | null | undefined, digits: number): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function ratio(concord: number | null, etcd: number | null): number | null {
  return concord === null || etcd === null || etcd === 0 ? null : round(concord / etcd, 3);
}

function unitOf(op: LoadOp): string {
  return op === 'put' ? 'writes/s' : 'reads/s';
}

function summarizeSystem(runs: LoadRun[]) {
  const ok = runs.filter((run) => run.error === undefined);
  const pick = (field: 'opsPerSecond' | 'p50Ms' | 'p99Ms' | 'p999Ms' | 'serverCpuCores' | 'generatorCpuCores') => median(ok.map((run) => run[field] ?? Number.NaN));
  return {
    opsPerSecond: round(pick('opsPerSecond'), 1),
    p50Ms: round(pick('p50Ms'), 3),
    p99Ms: round(pick('p99Ms'), 3),
    p999Ms: round(pick('p999Ms'), 3),
    serverCpuCores: round(pick('serverCpuCores'), 2),
    generatorCpuCores: round(pick('generatorCpuCores'), 2),
    errors: ok.reduce((sum, run) => sum + (run.errors ?? 0), 0),
    failedRuns: runs.length - ok.length,
    runs: runs.map((run) => run.error === undefined
      ? { repeat: run.repeat + 1, opsPerSecond: round(run.opsPerSecond, 1), p50Ms: round(run.p50Ms, 3), p99Ms: round(run.p99Ms, 3), maxMs: round(run.maxMs, 3), errors: run.errors }
      : { repeat: run.repeat + 1, error: run.error }),
  };
}

const VERDICT_RANK: Record<Verdict, number> = { PASS: 2, FAIL: 1, ERROR: 0 };

function worstVerdict(runs: CheckPerfRun[]): Verdict | null {
  if (runs.length === 0) return null;
  return runs.reduce<Verdict>((worst, run) => (VERDICT_RANK[run.verdict] < VERDICT_RANK[worst] ? run.verdict : worst), 'PASS');
}

function summarize(options: BenchOptions, results: Results, startedAt: Date, loadBefore: number[]) {
  const grpc = [...results.grpc.entries()].map(([key, bySystem]) => {
    const [op, clients] = key.split('/') as [LoadOp, string];
    const etcd = summarizeSystem(bySystem.etcd);
    const concord = summarizeSystem(bySystem.concord);
    return {
      op, clients: Number(clients), unit: unitOf(op), etcd, concord,
      ratio: {
        opsPerSecond: ratio(concord.opsPerSecond, etcd.opsPerSecond),
        p50: ratio(concord.p50Ms, etcd.p50Ms),
        p99: ratio(concord.p99Ms, etcd.p99Ms),
      },
    };
  });
  const checkPerf = [...results.checkPerf.entries()].map(([load, bySystem]) => {
    const etcdWorst = worstVerdict(bySystem.etcd);
    const concordWorst = worstVerdict(bySystem.concord);
    const strip = (runs: CheckPerfRun[]) => runs.map((run) => ({ ...run, repeat: run.repeat + 1, elapsedSeconds: round(run.elapsedSeconds, 1) }));
    return {
      load,
      etcd: { verdict: etcdWorst, runs: strip(bySystem.etcd) },
      concord: { verdict: concordWorst, runs: strip(bySystem.concord) },
      concordNeverWorse: etcdWorst === null || concordWorst === null ? null : VERDICT_RANK[concordWorst] >= VERDICT_RANK[etcdWorst],
    };
  });
  const cpuList = cpus();
  return {
    benchmark: 'store',
    date: startedAt.toISOString(),
    finished: new Date().toISOString(),
    machine: {
      cores: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 1024 ** 3, 1),
      kernel: release(),
      node: process.version,
      etcd: etcdVersion(),
      loadAverageBefore: loadBefore.map((value) => round(value, 2)),
      loadAverageAfter: loadavg().map((value) => round(value, 2)),
    },
    settings: {
      seconds: options.seconds, warmupSeconds: options.warmupSeconds, repeats: options.repeats, checkPerfRepeats: options.checkPerfRepeats,
      keys: options.keys, keySizeBytes: options.keySizeBytes, valueSizeBytes: options.valueSizeBytes,
      clientsPerChannel: options.clientsPerChannel, generator: options.generator, fsync: true, members: options.members, dataRoot: options.dataRoot,
    },
    grpc,
    checkPerf,
    outDir: options.outDir,
  };
}

function etcdVersion(): string {
  const result = spawnSync(ETCD_BINARY, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(result.stdout ?? '')?.[1] ?? 'unknown';
}

function formatRate(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : Math.round(value).toLocaleString('en-US');
}

function formatMs(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

function formatCores(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '?' : value.toFixed(2);
}

function formatRatio(value: number | null): string {
  return value === null ? '—' : `${value.toFixed(2)}×`;
}

function printTable(summary: ReturnType<typeof summarize>): void {
  const rows: string[][] = [['load', 'clients', 'etcd ops/s', 'concord ops/s', 'ratio', 'etcd p50', 'concord p50', 'etcd p99', 'concord p99', 'p99 ratio']];
  for (const row of summary.grpc) {
    rows.push([
      row.op, String(row.clients), formatRate(row.etcd.opsPerSecond), formatRate(row.concord.opsPerSecond), formatRatio(row.ratio.opsPerSecond),
      formatMs(row.etcd.p50Ms), formatMs(row.concord.p50Ms), formatMs(row.etcd.p99Ms), formatMs(row.concord.p99Ms), formatRatio(row.ratio.p99),
    ]);
  }
  if (rows.length === 1) rows.length = 0; // no gRPC loads ran: skip the table
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));
  if (lines.length > 0) {
    process.stderr.write(`\nMedians over repetitions (ratio = Concord / etcd; ops are writes for put, linearizable reads for range):\n${lines.join('\n')}\n`);
  }
  for (const row of summary.checkPerf) {
    const verdicts = (runs: Parameters<typeof describeCheckPerf>[0][]) => runs.map(describeCheckPerf).join('; ') || '—';
    process.stderr.write(`\ncheck perf --load=${row.load}\n  etcd:    ${verdicts(row.etcd.runs)}\n  concord: ${verdicts(row.concord.runs)}\n`);
  }
  process.stderr.write(`\nlogs: ${summary.outDir}\n`);
}

// ---- Main ----

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  let options: BenchOptions;
  try {
    program.parse(argv, { from: 'user' });
    options = resolveOptions(program);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    process.stderr.write(`bench:store: ${(error as Error).message}\n`);
    return 2;
  }
  if (options.generator === 'go' && options.ops.length > 0) {
    try {
      buildGoLoad(); // before any run, so a missing compiler is said once, up front
    } catch (error) {
      process.stderr.write(`bench:store: ${(error as Error).message}\n(or run with --generator node)\n`);
      return 1;
    }
  }
  mkdirSync(options.outDir, { recursive: true });
  const startedAt = new Date();
  const loadBefore = loadavg();
  const results = new Results();
  const repeatCount = Math.max(options.repeats, options.loads.length > 0 ? options.checkPerfRepeats : 0);
  const total = Array.from({ length: repeatCount }, (_, repeat) => planRepeat(options, repeat).length).reduce((a, b) => a + b, 0) * options.systems.length;
  process.stderr.write(`bench:store: ${total} runs, ${cpus().length} cores, load average ${loadBefore.map((v) => v.toFixed(2)).join(' ')}; logs in ${options.outDir}\n`);
  let done = 0;
  for (let repeat = 0; repeat < repeatCount; repeat++) {
    // Even repetitions measure etcd first, odd ones Concord first.
    const order = repeat % 2 === 0 ? options.systems : [...options.systems].reverse();
    for (const measurement of planRepeat(options, repeat)) {
      for (const system of order) {
        const outcome = await runMeasurement(options, measurement, system, repeat, results);
        done += 1;
        process.stderr.write(`[${done}/${total}] ${system.padEnd(7)} ${labelOf(measurement)} r${repeat + 1}: ${outcome}\n`);
      }
    }
  }
  const summary = summarize(options, results, startedAt, loadBefore);
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  printTable(summary);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
