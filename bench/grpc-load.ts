// A closed-loop gRPC load generator for etcd's KV API, used unchanged against etcd and Concord.
//
// N logical clients each keep exactly one request in flight: put (a random key of the key space,
// a fixed value) or range (a linearizable get of one random key, after the key space is preloaded).
// Latencies go into a log-linear histogram; percentiles come from it, never from averages.
//
// Connections: logical clients share a pool of channels, one @grpc/grpc-js channel (one HTTP/2
// connection) per `clientsPerChannel` logical clients (64 by default), like etcd's own
// `benchmark --conns`. A thousand connections from one Node.js process would make the generator the
// bottleneck, and HTTP/2 multiplexes many streams per connection anyway. Each channel gets a local
// subchannel pool, because grpc-js otherwise shares one connection among clients with equal options.
//
// The generator runs in its own process (`runLoadInChildProcess`), so it never shares an event loop
// with an in-process server, and the orchestrator's own work never disturbs the measurement. Run
// directly, this file reads a LoadSpec from `--spec JSON` and prints a LoadResult as its last line.
//
// Being closed-loop, it measures the latency a client sees at a given concurrency, not at a fixed
// offered rate: a stall delays the next requests instead of queueing them (coordinated omission).
// That is how `etcdctl check perf` and etcd's `benchmark` tool measure too.

import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { credentials, type CallOptions, type Client, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos, type Encodable, type PutRequest, type RangeRequest, type RequestOp, type TxnRequest } from '../src/api/etcd/proto-loader.ts';
import { buildGoLoad, type LoadGenerator } from './go-load.ts';
import { LatencyHistogram, type HistogramJson } from './latency-histogram.ts';

export type LoadOp = 'put' | 'range';

export interface LoadSpec {
  /** host:port of the server under test, or several comma-separated (channels are spread over them). */
  endpoint: string;
  op: LoadOp;
  clients: number;
  clientsPerChannel: number;
  warmupSeconds: number;
  seconds: number;
  keyCount: number;
  keySizeBytes: number;
  valueSizeBytes: number;
  requestTimeoutMs: number;
}

export interface LoadResult {
  op: LoadOp;
  clients: number;
  channels: number;
  measuredSeconds: number;
  /** Successful requests that started and completed inside the measured window. */
  completed: number;
  opsPerSecond: number;
  errors: number;
  /** A few distinct error messages, to say what went wrong without flooding the log. */
  errorSamples: string[];
  /** Latencies of every successful request started in the measured window. */
  histogram: HistogramJson;
  preloadSeconds: number;
  /** CPU the generator process used per wall-clock second of warmup and measurement: near 1 means it may be the bottleneck. */
  generatorCpuCores: number;
}

/** Puts per transaction when preloading keys for the range load; both servers allow 128 (--max-txn-ops). */
const PRELOAD_PUTS_PER_TXN = 100;
const PRELOAD_TXNS_IN_FLIGHT = 16;
const CONNECT_TIMEOUT_MS = 10_000;
const ERROR_SAMPLES_MAX = 5;
/** What the orchestrator allows beyond warmup + measurement for connecting, preloading and draining. */
const CHILD_OVERHEAD_MS = 90_000;

type UnaryCallback<Response> = (error: ServiceError | null, response?: Response) => void;

interface KvClient extends Client {
  Put(request: Encodable<PutRequest>, options: CallOptions, callback: UnaryCallback<unknown>): ClientUnaryCall;
  Range(request: Encodable<RangeRequest>, options: CallOptions, callback: UnaryCallback<unknown>): ClientUnaryCall;
  Txn(request: Encodable<TxnRequest>, options: CallOptions, callback: UnaryCallback<unknown>): ClientUnaryCall;
}

export function validateLoadSpec(spec: LoadSpec): void {
  const positive: (keyof LoadSpec)[] = ['clients', 'clientsPerChannel', 'seconds', 'keyCount', 'keySizeBytes', 'valueSizeBytes', 'requestTimeoutMs'];
  for (const field of positive) {
    const value = spec[field];
    if (typeof value !== 'number' || !(value > 0)) throw new RangeError(`load spec: ${field} must be a positive number, got ${String(value)}`);
  }
  if (!(spec.warmupSeconds >= 0)) throw new RangeError(`load spec: warmupSeconds must be >= 0, got ${spec.warmupSeconds}`);
  if (String(spec.keyCount - 1).length > spec.keySizeBytes) {
    throw new RangeError(`load spec: ${spec.keyCount} keys do not fit in ${spec.keySizeBytes}-byte keys; raise the key size or lower the key count`);
  }
}

/** Keys are the key's number in zero-padded decimal, `keySizeBytes` long: readable in etcdctl, all the same size. */
function keyOf(index: number, keySizeBytes: number): Buffer {
  return Buffer.from(String(index).padStart(keySizeBytes, '0'));
}

function callUnary<Response>(
  start: (options: CallOptions, callback: UnaryCallback<Response>) => void, timeoutMs: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    start({ deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response as Response)));
  });
}

async function connectAll(clients: KvClient[]): Promise<void> {
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  await Promise.all(clients.map((client) => new Promise<void>((resolve, reject) => {
    client.waitForReady(deadline, (error) => (error ? reject(new Error(`cannot connect: ${error.message}`)) : resolve()));
  })));
}

async function preloadKeys(client: KvClient, spec: LoadSpec, value: Buffer): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < spec.keyCount) {
      const first = next;
      next = Math.min(spec.keyCount, next + PRELOAD_PUTS_PER_TXN);
      const success: Encodable<RequestOp>[] = [];
      for (let index = first; index < next; index++) {
        success.push({ request_put: { key: keyOf(index, spec.keySizeBytes), value } });
      }
      await callUnary((options, callback) => client.Txn({ success }, options, callback), spec.requestTimeoutMs);
    }
  };
  await Promise.all(Array.from({ length: PRELOAD_TXNS_IN_FLIGHT }, worker));
}

/** Runs the load in this process. Use runLoadInChildProcess from anywhere that also runs a server. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  validateLoadSpec(spec);
  const { clients: constructors } = loadEtcdProtos();
  const channelCount = Math.ceil(spec.clients / spec.clientsPerChannel);
  // Several comma-separated endpoints (a cluster's members): channels are spread over them in turn.
  const endpoints = spec.endpoint.split(',');
  const channels = Array.from({ length: channelCount }, (_, index) => new constructors.KV(endpoints[index % endpoints.length]!, credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as KvClient);
  try {
    await connectAll(channels);
    const value = randomFillSync(Buffer.alloc(spec.valueSizeBytes));
    const keys = Array.from({ length: spec.keyCount }, (_, index) => keyOf(index, spec.keySizeBytes));
    const preloadStarted = performance.now();
    if (spec.op === 'range') await preloadKeys(channels[0]!, spec, value);
    const preloadSeconds = (performance.now() - preloadStarted) / 1000;
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const measured = await measure(spec, channels, keys, value);
    const cpu = process.cpuUsage(cpuBefore);
    const generatorCpuCores = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
    return { ...measured, preloadSeconds, generatorCpuCores };
  } finally {
    for (const channel of channels) channel.close();
  }
}

async function measure(
  spec: LoadSpec, channels: KvClient[], keys: Buffer[], value: Buffer,
): Promise<Omit<LoadResult, 'preloadSeconds' | 'generatorCpuCores'>> {
  const histogram = new LatencyHistogram();
  const errorSamples = new Set<string>();
  let errors = 0;
  let completed = 0;
  const startedAt = performance.now();
  const measureFrom = startedAt + spec.warmupSeconds * 1000;
  const measureUntil = measureFrom + spec.seconds * 1000;
  const issue = (client: KvClient, key: Buffer) => spec.op === 'put'
    ? callUnary((options, callback) => client.Put({ key, value }, options, callback), spec.requestTimeoutMs)
    : callUnary((options, callback) => client.Range({ key }, options, callback), spec.requestTimeoutMs);
  const logicalClient = async (index: number) => {
    const client = channels[Math.floor(index / spec.clientsPerChannel)]!;
    while (performance.now() < measureUntil) {
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const sent = performance.now();
      try {
        await issue(client, key);
      } catch (error) {
        if (sent >= measureFrom) {
          errors += 1;
          if (errorSamples.size < ERROR_SAMPLES_MAX) errorSamples.add((error as Error).message);
        }
        continue;
      }
      const done = performance.now();
      if (sent < measureFrom) continue;
      histogram.recordMs(done - sent);
      if (done <= measureUntil) completed += 1;
    }
  };
  await Promise.all(Array.from({ length: spec.clients }, (_, index) => logicalClient(index)));
  return {
    op: spec.op,
    clients: spec.clients,
    channels: channels.length,
    measuredSeconds: spec.seconds,
    completed,
    opsPerSecond: completed / spec.seconds,
    errors,
    errorSamples: [...errorSamples],
    histogram: histogram.toJSON(),
  };
}

/**
 * Runs the load in a child process, logging its stderr to `logPath`: this file on the same Node.js
 * binary, or the Go generator (go-load.ts), which takes the same spec and answers the same result.
 */
export function runLoadInChildProcess(spec: LoadSpec, logPath: string, generator: LoadGenerator = 'node'): Promise<LoadResult> {
  validateLoadSpec(spec);
  const timeoutMs = (spec.warmupSeconds + spec.seconds) * 1000 + spec.requestTimeoutMs + CHILD_OVERHEAD_MS;
  const [command, args] = generator === 'go'
    ? [buildGoLoad(), ['--spec', JSON.stringify(spec)]]
    : [process.execPath, [fileURLToPath(import.meta.url), '--spec', JSON.stringify(spec)]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(logPath, { flags: 'a' });
    child.stderr.pipe(log);
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const lastLine = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && lastLine.startsWith('{')) {
        resolve(JSON.parse(lastLine) as LoadResult);
        return;
      }
      const why = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exited with code ${code}, signal ${signal}`;
      reject(new Error(`load generator ${why}; see ${logPath}`));
    });
  });
}

async function mainAsChild(argv: string[]): Promise<number> {
  const specIndex = argv.indexOf('--spec');
  const specText = specIndex >= 0 ? argv[specIndex + 1] : undefined;
  if (specText === undefined) {
    process.stderr.write('usage: node bench/grpc-load.ts --spec \'{"endpoint":"127.0.0.1:2379","op":"put",...}\' (see LoadSpec)\n');
    return 2;
  }
  try {
    const result = await runLoad(JSON.parse(specText) as LoadSpec);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`grpc-load: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await mainAsChild(process.argv.slice(2));
}
