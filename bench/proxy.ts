// The proxy benchmark: Concord (one worker) against HAProxy 2.6 (one thread, health checks on),
// nginx (one worker, keepalive upstream), a naive Node proxy, and the backends directly, in one run.
// `concord` is the default configuration (its fast path on); `concord-node` is the same proxy with
// proxy.fastPath: false (node:http and undici), to show what the fast path buys.
//
//   npx concord bench proxy [--json] [--quick] [--seconds 8] [--repeats 3] [--rates 1000,10000]
//
// Pinning: the proxy under test runs alone on core 0; wrk, the open-loop generator and the nginx
// backends (two servers, a 6-byte body, as in shared/BENCHMARKS.md) share core 1. Per repetition,
// every system is started fresh (the order rotates between repetitions, so drift on this shared
// machine falls on all of them), warmed up for 1 s, then measured:
// * saturation: wrk -t1 -c64 for --seconds: requests/s, p50, p99 (wrk's own percentiles);
// * fixed rates: the open-loop generator (open-loop.ts) at each --rates value: p50 and p99, and the
//   latency added over going to the backends directly at the same rate.
// Medians over repetitions are reported, with Concord's ratios to HAProxy, nginx and the naive
// proxy, and the issue's goals checked. Progress and a table go to stderr; the last stdout line is
// the JSON summary. Logs and generated configs go to --out-dir.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { LatencyHistogram } from './latency-histogram.ts';
import type { OpenLoopResult } from './open-loop.ts';
import { parseWrk } from './wrk-output.ts';
import { PROXY_SYSTEMS as PEER_SYSTEMS, pinned, startNginxBackends, startProxySystem, stopChild, waitForHttp, type Running } from './proxy-systems.ts';

const PROXY_SYSTEMS = [...PEER_SYSTEMS, 'concord-node'] as const;
type ProxySystem = (typeof PROXY_SYSTEMS)[number];
const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Concord with proxy.fastPath: false, configured as proxy-systems.ts configures `concord` otherwise. */
async function startConcordNodePath(port: number, adminPort: number, backendPorts: number[], dir: string): Promise<Running> {
  const config = {
    proxy: { listen: `127.0.0.1:${port}`, admin: `127.0.0.1:${adminPort}`, accessLog: false, fastPath: false },
    pools: [{
      name: 'bench', balance: 'p2c', backends: backendPorts.map((backendPort) => ({ address: `127.0.0.1:${backendPort}` })),
      health: { http: { path: '/' }, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 },
    }],
  };
  const path = join(dir, `concord-node-${port}.yaml`);
  writeFileSync(path, JSON.stringify(config, null, 2)); // JSON is YAML
  const child = pinned(PROXY_CORE, process.execPath, [join(REPO, 'src/cli/entry.ts'), 'proxy', '--config', path], join(dir, `concord-node-${port}.log`));
  await waitForHttp(port, 10_000, child);
  return { port, pid: child.pid, stop: () => stopChild(child) };
}

const OPEN_LOOP = fileURLToPath(new URL('./open-loop.ts', import.meta.url));
const PROXY_CORE = 0;
const LOAD_CORE = 1;
const BASE_PORT = 28_000;

interface Options {
  json: boolean;
  quick: boolean;
  seconds: number;
  rateSeconds: number;
  repeats: number;
  rates: number[];
  systems: ProxySystem[];
  outDir: string;
}

interface Sample {
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  rates: Record<string, { p50Ms: number; p99Ms: number; achievedRps: number; errors: number; non2xx: number }>;
  error?: string;
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${err.trim()}`));
    });
  });
}

async function wrk(port: number, seconds: number): Promise<{ rps: number; p50Ms: number; p99Ms: number }> {
  const output = await run('taskset', ['-c', String(LOAD_CORE), 'wrk', '-t1', '-c64', `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`], (seconds + 30) * 1000);
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  if (errors) process.stderr.write(`  (wrk saw ${errors[1]} non-2xx responses)\n`);
  return parseWrk(output);
}

async function openLoop(port: number, rps: number, seconds: number): Promise<OpenLoopResult> {
  const output = await run('taskset', ['-c', String(LOAD_CORE), process.execPath, OPEN_LOOP, '--port', String(port), '--rps', String(rps), '--seconds', String(seconds)], (seconds + 40) * 1000);
  return JSON.parse(output.trim().split('\n').pop()!) as OpenLoopResult;
}

function median(values: number[]): number | undefined {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const round = (value: number | undefined, digits = 3) => (value === undefined ? undefined : Number(value.toFixed(digits)));

async function measure(system: ProxySystem, backendPorts: number[], options: Options, port: number): Promise<Sample> {
  let proxy: Running | undefined;
  try {
    if (system === 'concord-node') proxy = await startConcordNodePath(port, port + 1, backendPorts, options.outDir);
    else if (system !== 'direct') proxy = await startProxySystem(system, { port, adminPort: port + 1, backendPorts, core: PROXY_CORE, dir: options.outDir });
    const target = proxy?.port ?? backendPorts[0]!;
    await wrk(target, 1); // warm-up: connections, JIT, health checks
    const saturation = await wrk(target, options.seconds);
    const sample: Sample = { ...saturation, rates: {} };
    for (const rate of options.rates) {
      const result = await openLoop(target, rate, options.rateSeconds);
      const histogram = LatencyHistogram.fromJSON(result.histogram);
      sample.rates[rate] = { p50Ms: histogram.percentileMs(50), p99Ms: histogram.percentileMs(99), achievedRps: result.achievedRps, errors: result.errors, non2xx: result.non2xx };
    }
    return sample;
  } catch (error) {
    return { rates: {}, error: (error as Error).message };
  } finally {
    await proxy?.stop();
  }
}

function buildProgram(): Command {
  return new Command('bench proxy')
    .description('Concord vs HAProxy, nginx, a naive Node proxy and the backends directly: saturation (wrk) and fixed-rate latency (open loop).')
    .option('--json', 'print only the JSON summary on stdout (progress still on stderr)', false)
    .option('--quick', 'smoke run: 3 s per wrk run, 2 s per rate, 1 repetition', false)
    .option('--seconds <n>', 'seconds per wrk saturation run', (text) => Number(text), 8)
    .option('--rate-seconds <n>', 'seconds per fixed-rate run', (text) => Number(text), 5)
    .option('--repeats <n>', 'repetitions (medians reported)', (text) => Number(text), 3)
    .option('--rates <list>', 'fixed rates in requests/s for the open-loop runs', (text) => text.split(',').map(Number), [1000, 10000])
    .option('--systems <list>', `systems (${PROXY_SYSTEMS.join(',')})`, (text) => text.split(',') as ProxySystem[], [...PROXY_SYSTEMS])
    .option('--out-dir <dir>', 'logs and generated configs', join(tmpdir(), `concord-bench-proxy-${Date.now()}`));
}

async function main(): Promise<void> {
  const program = buildProgram().parse(process.argv.slice(2), { from: 'user' });
  const raw = program.opts() as Options;
  const options: Options = raw.quick ? { ...raw, seconds: 3, rateSeconds: 2, repeats: 1 } : raw;
  for (const system of options.systems) if (!PROXY_SYSTEMS.includes(system)) throw new Error(`unknown system '${system}'; use ${PROXY_SYSTEMS.join(', ')}`);
  if (cpus().length < 2) process.stderr.write('warning: fewer than 2 cores; pinning to cores 0 and 1 will not isolate the proxy\n');
  mkdirSync(options.outDir, { recursive: true });
  const backendPorts = [BASE_PORT + 1, BASE_PORT + 2];
  const backends = await startNginxBackends(backendPorts, LOAD_CORE, options.outDir);
  const samples = new Map<ProxySystem, Sample[]>(options.systems.map((system) => [system, []]));
  try {
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const order = options.systems.map((_, i) => options.systems[(i + repeat) % options.systems.length]!);
      for (const system of order) {
        process.stderr.write(`[${repeat + 1}/${options.repeats}] ${system}: `);
        const sample = await measure(system, backendPorts, options, BASE_PORT + 10 + repeat * 20 + options.systems.indexOf(system) * 2);
        samples.get(system)!.push(sample);
        process.stderr.write(sample.error !== undefined ? `error: ${sample.error}\n`
          : `${Math.round(sample.rps!)} rps, p50 ${sample.p50Ms} ms, p99 ${sample.p99Ms} ms; ${Object.entries(sample.rates).map(([rate, r]) => `@${rate}: p50 ${r.p50Ms} p99 ${r.p99Ms} ms`).join('; ')}\n`);
      }
    }
  } finally {
    await backends.stop();
  }
  const summary = summarize(samples, options);
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  printTable(summary);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

interface SystemSummary {
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  rates: Record<string, { p50Ms?: number; p99Ms?: number; addedP50Ms?: number; addedP99Ms?: number; errors: number }>;
  failedRuns: number;
}

function summarize(samples: Map<ProxySystem, Sample[]>, options: Options) {
  const systems: Partial<Record<ProxySystem, SystemSummary>> = {};
  for (const [system, runs] of samples) {
    const ok = runs.filter((run) => run.error === undefined);
    const rates: SystemSummary['rates'] = {};
    for (const rate of options.rates) {
      rates[rate] = {
        p50Ms: round(median(ok.map((run) => run.rates[rate]?.p50Ms ?? Number.NaN))),
        p99Ms: round(median(ok.map((run) => run.rates[rate]?.p99Ms ?? Number.NaN))),
        errors: ok.reduce((sum, run) => sum + (run.rates[rate]?.errors ?? 0) + (run.rates[rate]?.non2xx ?? 0), 0),
      };
    }
    systems[system] = {
      rps: round(median(ok.map((run) => run.rps!)), 0), p50Ms: round(median(ok.map((run) => run.p50Ms!))), p99Ms: round(median(ok.map((run) => run.p99Ms!))),
      rates, failedRuns: runs.length - ok.length,
    };
  }
  const direct = systems.direct;
  for (const summary of Object.values(systems)) {
    for (const rate of options.rates) {
      const own = summary!.rates[rate]!;
      const base = direct?.rates[rate];
      if (base?.p50Ms !== undefined && own.p50Ms !== undefined) own.addedP50Ms = round(own.p50Ms - base.p50Ms);
      if (base?.p99Ms !== undefined && own.p99Ms !== undefined) own.addedP99Ms = round(own.p99Ms - base.p99Ms);
    }
  }
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : round(a / b, 2));
  const concord = systems.concord;
  const ratios = {
    concordToHaproxy: ratio(concord?.rps, systems.haproxy?.rps),
    concordToNginx: ratio(concord?.rps, systems.nginx?.rps),
    concordToNaive: ratio(concord?.rps, systems.naive?.rps),
    fastPathGain: ratio(concord?.rps, systems['concord-node']?.rps),
  };
  const addedP99At1000 = concord?.rates['1000']?.addedP99Ms;
  const goals = {
    throughputAtLeastHalfOfHaproxy: ratios.concordToHaproxy === undefined ? undefined : ratios.concordToHaproxy >= 0.5,
    throughputAtLeastThreeTimesNaive: ratios.concordToNaive === undefined ? undefined : ratios.concordToNaive >= 3,
    addedP99Below1msAt1000Rps: addedP99At1000 === undefined ? undefined : addedP99At1000 < 1,
  };
  return {
    benchmark: 'proxy', date: new Date().toISOString(), repeats: options.repeats, wrkSeconds: options.seconds, rateSeconds: options.rateSeconds,
    machine: { cores: cpus().length, model: cpus()[0]?.model, loadavg: loadavg().map((value) => round(value, 2)) }, systems, ratios, goals,
  };
}

function printTable(summary: ReturnType<typeof summarize>): void {
  const lines = ['', 'system       | req/s (wrk -c64) | p50 ms | p99 ms | ' + Object.keys(Object.values(summary.systems)[0]?.rates ?? {}).map((rate) => `@${rate}/s p50 / p99 (added p99)`).join(' | ')];
  for (const [name, system] of Object.entries(summary.systems)) {
    const rates = Object.values(system!.rates).map((rate) => `${rate.p50Ms ?? '-'} / ${rate.p99Ms ?? '-'} (${rate.addedP99Ms ?? '-'})`);
    lines.push(`${name.padEnd(12)} | ${String(system!.rps ?? '-').padStart(16)} | ${String(system!.p50Ms ?? '-').padStart(6)} | ${String(system!.p99Ms ?? '-').padStart(6)} | ${rates.join(' | ')}`);
  }
  lines.push('', `ratios: ${JSON.stringify(summary.ratios)}`, `goals: ${JSON.stringify(summary.goals)}`, '');
  process.stderr.write(`${lines.join('\n')}\n`);
}

await main();
