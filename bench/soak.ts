// The soak benchmark: does anything grow without bound under steady, mixed load?
//
//   npx concord bench soak                      # an hour (the figure that counts)
//   npx concord bench soak --duration 240       # a short look (warm-up: 2 minutes, then judged)
//   npx concord bench soak -- --help
//
// In one run: a 1-member Concord store and a 1-member etcd 3.4 (the peer), both with periodic
// auto-compaction keeping a minute of history (so history is bounded on both), each under the same
// bounded-rate load from this process through the etcd3 client: puts, ranges, transactions, a set of
// watchers (one replaced every 30 s) and leases with keep-alives (one revoked and granted anew every
// 5 s, each with a key attached). Beside them a Concord proxy in front of two nginx backends takes a
// bounded rate of HTTP requests. Every --sample-interval seconds each process's resident memory
// (/proc/PID/status VmRSS), open file descriptors (/proc/PID/fd) and, where it exposes it, heap
// (Concord's nodejs_heap_size_used_bytes, etcd's go_memstats_heap_inuse_bytes) are recorded.
//
// Output: a table on stderr; the last stdout line is JSON with, per process and resource, the growth
// after warm-up (least-squares slope per hour, medians of the first and last tenth of the samples;
// see soak-analysis.ts), the load actually served, and whether everything stayed flat. The goal is
// flat after warm-up. A short run's slope extrapolates minutes to an hour: trust the decile medians
// there, and the hour-long run for slow leaks.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import { Pool } from 'undici';
import { freeLoopbackPorts } from '../test/support/child-processes.ts';
import { startNginxBackends, startProxySystem, type Running } from './proxy-systems.ts';
import { growthAfterWarmup, isFlat, type FlatnessTolerance, type Growth, type Sample } from './soak-analysis.ts';
import { startSystem, type RunningSystem, type SystemName } from './store-systems.ts';

/** Load is issued in slices this often, so a rate is spread over each second. */
const TICK_MS = 100;
/** Store requests in flight per system at most; a slower system gets fewer, not an unbounded queue. */
const MAX_IN_FLIGHT = 64;
const KEY_COUNT = 1_000;
const VALUE_BYTES = 256;
const WATCHER_COUNT = 10;
const WATCHER_CHURN_MS = 30_000;
const LEASE_COUNT = 10;
const LEASE_TTL_SECONDS = 10;
const LEASE_ROTATE_MS = 5_000;
const HTTP_CONNECTIONS = 8;
/** History of the last minute is kept (compacted every minute on both), so a steady load has a steady history. */
const AUTO_COMPACTION_FLAGS = ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1m'];
const TOLERANCE: FlatnessTolerance = { maxGrowthPercent: 10, maxSlopePercentPerHour: 20 };

interface SoakOptions {
  durationSeconds: number;
  warmupSeconds: number;
  sampleIntervalSeconds: number;
  storeRate: number;
  httpRate: number;
  json: boolean;
  outDir: string;
}

// ---- load -----------------------------------------------------------------------------------------

interface StoreCounts {
  puts: number; ranges: number; txns: number; watchEvents: number; watchersReplaced: number;
  leasesGranted: number; leasesRevoked: number; keepAlives: number; errors: number; skipped: number;
  errorSamples: string[];
}

/** The mixed store load against one system, at `rate` requests per second, with watchers and leases beside it. */
class StoreLoad {
  readonly counts: StoreCounts = {
    puts: 0, ranges: 0, txns: 0, watchEvents: 0, watchersReplaced: 0, leasesGranted: 0, leasesRevoked: 0, keepAlives: 0, errors: 0, skipped: 0, errorSamples: [],
  };
  private readonly client: Etcd3;
  private readonly rate: number;
  private readonly watchers: Watcher[] = [];
  private readonly leases: Lease[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private inFlight = 0;
  private sequence = 0;
  private stopped = false;

  constructor(endpoint: string, rate: number) {
    this.client = new Etcd3({ hosts: endpoint });
    this.rate = rate;
  }

  async start(): Promise<void> {
    for (let i = 0; i < WATCHER_COUNT; i++) this.watchers.push(await this.newWatcher());
    for (let i = 0; i < LEASE_COUNT; i++) this.leases.push(await this.newLease());
    let carry = 0;
    this.timers.push(setInterval(() => {
      carry += (this.rate * TICK_MS) / 1000;
      for (; carry >= 1; carry--) this.issue();
    }, TICK_MS));
    this.timers.push(setInterval(() => void this.replaceWatcher(), WATCHER_CHURN_MS));
    this.timers.push(setInterval(() => void this.rotateLease(), LEASE_ROTATE_MS));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled(this.watchers.map((watcher) => watcher.cancel()));
    await Promise.allSettled(this.leases.map((lease) => lease.revoke()));
    this.client.close();
  }

  private issue(): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.counts.skipped++;
      return;
    }
    const n = this.sequence++;
    const key = `soak/k${n % KEY_COUNT}`;
    const kind = n % 4;
    const run = kind <= 1
      ? this.client.put(key).value('v'.repeat(VALUE_BYTES)).then(() => this.counts.puts++)
      : kind === 2
        ? this.client.getAll().prefix(`soak/k${n % 10}`).limit(10).keys().then(() => this.counts.ranges++)
        : this.client.if(key, 'Version', '>', 0).then(this.client.put(key).value('t')).else(this.client.put(key).value('e')).commit().then(() => this.counts.txns++);
    this.inFlight++;
    run.catch((error: unknown) => this.failed(error)).finally(() => this.inFlight--);
  }

  private failed(error: unknown): void {
    if (this.stopped) return;
    this.counts.errors++;
    const message = (error as Error).message ?? String(error);
    if (this.counts.errorSamples.length < 5 && !this.counts.errorSamples.includes(message)) this.counts.errorSamples.push(message);
  }

  private async newWatcher(): Promise<Watcher> {
    const watcher = await this.client.watch().prefix('soak/').create();
    watcher.on('put', () => this.counts.watchEvents++);
    watcher.on('error', (error) => this.failed(error));
    return watcher;
  }

  private async replaceWatcher(): Promise<void> {
    try {
      await this.watchers.shift()?.cancel();
      this.watchers.push(await this.newWatcher());
      this.counts.watchersReplaced++;
    } catch (error) {
      this.failed(error);
    }
  }

  private async newLease(): Promise<Lease> {
    const lease = this.client.lease(LEASE_TTL_SECONDS);
    lease.on('keepaliveSucceeded', () => this.counts.keepAlives++);
    lease.on('lost', (error) => this.failed(error));
    await lease.put(`soak/lease/${this.counts.leasesGranted % 100}`).value('alive');
    this.counts.leasesGranted++;
    return lease;
  }

  private async rotateLease(): Promise<void> {
    try {
      await this.leases.shift()?.revoke();
      this.counts.leasesRevoked++;
      this.leases.push(await this.newLease());
    } catch (error) {
      this.failed(error);
    }
  }
}

/** HTTP GETs through the proxy at `rate` per second over a few keep-alive connections. */
class HttpLoad {
  readonly counts = { requests: 0, ok: 0, errors: 0, skipped: 0 };
  private readonly pool: Pool;
  private readonly rate: number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(url: string, rate: number) {
    this.pool = new Pool(url, { connections: HTTP_CONNECTIONS });
    this.rate = rate;
  }

  start(): void {
    let carry = 0;
    this.timer = setInterval(() => {
      carry += (this.rate * TICK_MS) / 1000;
      for (; carry >= 1; carry--) this.issue();
    }, TICK_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pool.close();
  }

  private issue(): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.counts.skipped++;
      return;
    }
    this.inFlight++;
    this.counts.requests++;
    this.pool.request({ path: `/soak/${this.counts.requests % 100}`, method: 'GET' })
      .then(async (response) => {
        await response.body.dump();
        if (response.statusCode === 200) this.counts.ok++;
        else this.counts.errors++;
      }, () => this.counts.errors++)
      .finally(() => this.inFlight--);
  }
}

// ---- sampling -------------------------------------------------------------------------------------

interface SampledProcess {
  readonly name: string;
  readonly pid: number;
  /** Heap bytes in use, from the process's own metrics; undefined where it exposes none. */
  readonly heapBytes?: () => Promise<number>;
}

type Resource = 'rssBytes' | 'heapBytes' | 'openFds';
type Series = Record<Resource, Sample[]>;

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A gauge's value from a Prometheus text endpoint. */
async function scrapeGauge(url: string, name: string): Promise<number> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).text();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match === null ? Number.NaN : Number(match[1]);
}

async function sampleOnce(processes: readonly SampledProcess[], series: Map<string, Series>, atMs: number): Promise<void> {
  for (const process of processes) {
    const entry = series.get(process.name)!;
    let heap = Number.NaN;
    try {
      if (process.heapBytes !== undefined) heap = await process.heapBytes();
    } catch {
      // a scrape that fails once leaves a gap, not a zero
    }
    entry.rssBytes.push({ atMs, value: rssBytes(process.pid) });
    entry.openFds.push({ atMs, value: openFds(process.pid) });
    entry.heapBytes.push({ atMs, value: heap });
  }
}

// ---- the run --------------------------------------------------------------------------------------

function positiveNumber(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`'${text}' is not a positive number`);
  return value;
}

function parseOptions(argv: string[]): SoakOptions {
  const program = new Command('soak')
    .description('Mixed store and HTTP load at a bounded rate; reports memory and file-descriptor growth after warm-up (Concord and etcd in the same run).')
    .option('--duration <seconds>', 'length of the run', positiveNumber, 3600)
    .option('--warmup <seconds>', 'samples before this are not judged (default: a fifth of the run, at least 120 so compaction has begun, at most 600)', positiveNumber)
    .option('--sample-interval <seconds>', 'time between samples', positiveNumber, 5)
    .option('--store-rate <requests/s>', 'puts, ranges and txns per second against each store', positiveNumber, 100)
    .option('--http-rate <requests/s>', 'HTTP requests per second through the proxy', positiveNumber, 100)
    .option('--json', 'print only the JSON summary on stdout (the table still goes to stderr)', false)
    .option('--out-dir <dir>', 'logs and summary.json', join(tmpdir(), 'concord-bench-soak'));
  program.parse(argv, { from: 'user' });
  const raw = program.opts<{ duration: number; warmup?: number; sampleInterval: number; storeRate: number; httpRate: number; json: boolean; outDir: string }>();
  // History grows until the first compaction (a minute in) and settles after the second: judging earlier measures the fill, not a leak.
  const warmupSeconds = raw.warmup ?? Math.min(600, Math.max(120, raw.duration / 5), raw.duration / 2);
  if (warmupSeconds >= raw.duration) throw new InvalidArgumentError(`--warmup (${warmupSeconds} s) must be shorter than --duration (${raw.duration} s)`);
  return {
    durationSeconds: raw.duration, warmupSeconds, sampleIntervalSeconds: raw.sampleInterval,
    storeRate: raw.storeRate, httpRate: raw.httpRate, json: raw.json, outDir: raw.outDir,
  };
}

interface Started {
  stores: Map<SystemName, RunningSystem>;
  backends: Running;
  proxy: Running;
  proxyPort: number;
  processes: SampledProcess[];
}

async function startEverything(options: SoakOptions, dataRoot: string): Promise<Partial<Started> & { stop(): Promise<void> }> {
  const started: Partial<Started> = { stores: new Map() };
  const stop = async () => {
    await started.proxy?.stop();
    await started.backends?.stop();
    for (const store of started.stores!.values()) await store.stop();
  };
  try {
    const [metricsPort, proxyPort, adminPort, backendA, backendB] = await freeLoopbackPorts(5);
    const concord = await startSystem('concord', {
      dataRoot, logPath: join(options.outDir, 'concord.log'), members: 1, extraFlags: AUTO_COMPACTION_FLAGS,
      concordFlags: ['--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`],
    });
    started.stores!.set('concord', concord);
    const etcd = await startSystem('etcd', { dataRoot, logPath: join(options.outDir, 'etcd.log'), members: 1, extraFlags: AUTO_COMPACTION_FLAGS });
    started.stores!.set('etcd', etcd);
    started.backends = await startNginxBackends([backendA!, backendB!], 1, options.outDir);
    started.proxy = await startProxySystem('concord', { port: proxyPort!, adminPort: adminPort!, backendPorts: [backendA!, backendB!], core: 0, dir: options.outDir });
    started.proxyPort = proxyPort!;
    started.processes = [
      { name: 'concord-store', pid: concord.pids[0]!, heapBytes: () => scrapeGauge(`http://127.0.0.1:${metricsPort}/metrics`, 'nodejs_heap_size_used_bytes') },
      { name: 'etcd', pid: etcd.pids[0]!, heapBytes: () => scrapeGauge(`http://${etcd.endpoint}/metrics`, 'go_memstats_heap_inuse_bytes') },
      { name: 'concord-proxy', pid: started.proxy.pid! },
    ];
    return { ...started, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function run(options: SoakOptions): Promise<Record<string, unknown>> {
  mkdirSync(options.outDir, { recursive: true });
  const dataRoot = mkdtempSync(join(tmpdir(), 'concord-soak-'));
  const everything = await startEverything(options, dataRoot);
  const { stores, processes, proxyPort } = everything as Started;
  const loads = new Map([...stores].map(([name, system]) => [name, new StoreLoad(system.endpoint, options.storeRate)]));
  const http = new HttpLoad(`http://127.0.0.1:${proxyPort}`, options.httpRate);
  const series = new Map(processes.map((process) => [process.name, { rssBytes: [], heapBytes: [], openFds: [] } as Series]));
  const startedMs = performance.now();
  try {
    for (const load of loads.values()) await load.start();
    http.start();
    const endMs = startedMs + options.durationSeconds * 1000;
    while (performance.now() < endMs) {
      const atMs = performance.now() - startedMs;
      await sampleOnce(processes, series, atMs);
      progress(options, atMs, series);
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.sampleIntervalSeconds * 1000, Math.max(0, endMs - performance.now()))));
    }
    await sampleOnce(processes, series, performance.now() - startedMs);
  } finally {
    await http.stop();
    for (const load of loads.values()) await load.stop();
    await everything.stop();
    rmSync(dataRoot, { recursive: true, force: true });
  }
  return summarize(options, series, loads, http);
}

function summarize(options: SoakOptions, series: Map<string, Series>, loads: Map<SystemName, StoreLoad>, http: HttpLoad): Record<string, unknown> {
  const warmupMs = options.warmupSeconds * 1000;
  const growth: Record<string, Partial<Record<Resource, Growth & { flat: boolean }>>> = {};
  let flat = true;
  for (const [name, entry] of series) {
    growth[name] = {};
    for (const resource of ['rssBytes', 'heapBytes', 'openFds'] as const) {
      const figures = growthAfterWarmup(entry[resource], warmupMs);
      if (figures === undefined) continue;
      const resourceFlat = isFlat(figures, TOLERANCE);
      flat &&= resourceFlat;
      growth[name][resource] = { ...figures, flat: resourceFlat };
    }
  }
  const rss = (name: string) => growth[name]?.rssBytes?.lastDecileMedian ?? Number.NaN;
  return {
    benchmark: 'soak',
    durationSeconds: options.durationSeconds,
    warmupSeconds: options.warmupSeconds,
    sampleIntervalSeconds: options.sampleIntervalSeconds,
    rates: { storeRequestsPerSecond: options.storeRate, httpRequestsPerSecond: options.httpRate },
    load: { ...Object.fromEntries([...loads].map(([name, load]) => [name, load.counts])), http: http.counts },
    growth,
    tolerance: TOLERANCE,
    flat,
    ratios: { storeRssConcordToEtcd: rss('concord-store') / rss('etcd') },
    note: options.durationSeconds < 3600 ? 'shorter than the hour-long soak: the slope extrapolates a few minutes to an hour' : undefined,
  };
}

function progress(options: SoakOptions, atMs: number, series: Map<string, Series>): void {
  const parts = [...series].map(([name, entry]) => {
    const rss = entry.rssBytes.at(-1)?.value ?? Number.NaN;
    return `${name} rss ${(rss / 1048576).toFixed(1)} MiB fds ${entry.openFds.at(-1)?.value ?? '?'}`;
  });
  process.stderr.write(`[${(atMs / 1000).toFixed(0)}/${options.durationSeconds} s] ${parts.join(' | ')}\n`);
}

function table(summary: Record<string, unknown>): string {
  const growth = summary.growth as Record<string, Partial<Record<Resource, Growth & { flat: boolean }>>>;
  const lines = ['process        resource   first-decile  last-decile  growth%  slope/h       flat'];
  for (const [name, resources] of Object.entries(growth)) {
    for (const [resource, g] of Object.entries(resources)) {
      lines.push(`${name.padEnd(15)}${resource.padEnd(11)}${g.firstDecileMedian.toFixed(0).padStart(12)}  ${g.lastDecileMedian.toFixed(0).padStart(11)}  ` +
        `${g.growthPercent.toFixed(1).padStart(7)}  ${g.slopePerHour.toFixed(0).padStart(12)}  ${g.flat}`);
    }
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const summary = await run(options);
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stderr.write(`${table(summary)}\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
