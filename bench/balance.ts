// The stall benchmark: five backends, one of which stalls completely for 10 s (every request it
// holds waits until the stall ends), under a steady open-loop load. Reports p50, p99 and p99.9 for
// each Concord algorithm next to HAProxy's leastconn and roundrobin, in one run.
//
//   npx concord bench balance [--json] [--quick] [--rps 500] [--seconds 30] [--stall-ms 10000]
//
// Latency-aware balancing should keep the stall out of p99 (round robin cannot: one request in five
// goes to the stalled backend while it lasts). The proxy runs on core 0, the backends (one process,
// 2 ms service time) and the generator on core 1. Each system gets a fresh proxy and the same
// schedule: warm-up, then the measured run, with the stall starting a third of the way in.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { LatencyHistogram } from './latency-histogram.ts';
import type { OpenLoopResult } from './open-loop.ts';
import { pinned, startProxySystem, stopChild, waitForHttp } from './proxy-systems.ts';

const OPEN_LOOP = fileURLToPath(new URL('./open-loop.ts', import.meta.url));
const STALL_BACKENDS = fileURLToPath(new URL('./stall-backends.ts', import.meta.url));
const BASE_PORT = 29_000;
const SERVICE_MS = 2;

const CONTENDERS = [
  { name: 'concord round-robin', system: 'concord', balance: 'round-robin' },
  { name: 'concord p2c', system: 'concord', balance: 'p2c' },
  { name: 'concord ewma', system: 'concord', balance: 'ewma' },
  { name: 'haproxy leastconn', system: 'haproxy', balance: 'leastconn' },
  { name: 'haproxy roundrobin', system: 'haproxy', balance: 'roundrobin' },
] as const;

interface Options {
  json: boolean;
  quick: boolean;
  rps: number;
  seconds: number;
  stallMs: number;
  outDir: string;
}

function openLoop(port: number, rps: number, seconds: number): Promise<OpenLoopResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', process.execPath, OPEN_LOOP, '--port', String(port), '--rps', String(rps), '--seconds', String(seconds), '--connections', '64', '--drain-seconds', '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as OpenLoopResult) : reject(new Error(`open-loop exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const program = new Command('bench balance')
    .option('--json', 'print only the JSON summary on stdout', false)
    .option('--quick', 'smoke run: 9 s with a 3 s stall', false)
    .option('--rps <n>', 'offered load in requests/s', (text) => Number(text), 500)
    .option('--seconds <n>', 'measured seconds per contender', (text) => Number(text), 30)
    .option('--stall-ms <n>', 'how long the stalled backend holds every request', (text) => Number(text), 10_000)
    .option('--out-dir <dir>', 'logs and configs', join(tmpdir(), `concord-bench-balance-${Date.now()}`))
    .parse(process.argv.slice(2), { from: 'user' });
  const raw = program.opts() as Options;
  const options = raw.quick ? { ...raw, seconds: 9, stallMs: 3000 } : raw;
  mkdirSync(options.outDir, { recursive: true });
  const backendPorts = [1, 2, 3, 4, 5].map((i) => BASE_PORT + i);
  const backends = pinned(1, process.execPath, [STALL_BACKENDS, String(SERVICE_MS), ...backendPorts.map(String)], join(options.outDir, 'backends.log'));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const port of backendPorts) await waitForHttp(port, 5000, backends);
    for (const [index, contender] of CONTENDERS.entries()) {
      const port = BASE_PORT + 10 + index * 2;
      const proxy = await startProxySystem(contender.system, {
        port, adminPort: port + 1, backendPorts, core: 0, dir: options.outDir, balance: contender.balance, serverTimeoutSeconds: 60,
        // Passive ejection and retries would hide what the algorithm itself does; the stall is not a failure anyway.
        concordPool: { outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 }, timeouts: { firstByteMs: 60_000 } },
      });
      try {
        await openLoop(port, options.rps, 2); // warm-up
        const stallAtMs = (options.seconds * 1000) / 3;
        const stall = setTimeout(() => void fetch(`http://127.0.0.1:${backendPorts[2]}/__stall?ms=${options.stallMs}`, { method: 'POST' }), stallAtMs + 50);
        const result = await openLoop(port, options.rps, options.seconds);
        clearTimeout(stall);
        const histogram = LatencyHistogram.fromJSON(result.histogram);
        const row = {
          contender: contender.name, p50Ms: histogram.percentileMs(50), p99Ms: histogram.percentileMs(99), p999Ms: histogram.percentileMs(99.9),
          maxMs: histogram.maxMs, completed: result.completed, errors: result.errors + result.non2xx, achievedRps: result.achievedRps,
        };
        rows.push(row);
        process.stderr.write(`${contender.name.padEnd(20)} p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, p99.9 ${row.p999Ms} ms, max ${row.maxMs} ms, errors ${row.errors}\n`);
        // Let the stall end before the next contender starts.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, options.stallMs - (options.seconds * 1000 - stallAtMs)) + 500));
      } finally {
        await proxy.stop();
      }
    }
  } finally {
    await stopChild(backends);
  }
  const summary = {
    benchmark: 'balance', date: new Date().toISOString(), rps: options.rps, seconds: options.seconds, stallMs: options.stallMs, backends: 5, serviceMs: SERVICE_MS,
    machine: { cores: cpus().length, loadavg: loadavg().map((value) => Number(value.toFixed(2))) }, rows,
  };
  writeFileSync(join(options.outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
