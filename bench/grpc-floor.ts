// The gRPC floor: CPU per call of a grpc-js server whose KV.Put does nothing, beside etcd's CPU per
// durable put, measured alternately in the same minutes. It answers one question: can a member that
// runs grpc-js on its one thread reach etcd's CPU per put at all? (docs/store.md, "Performance").
//
//   node bench/grpc-floor.ts [--clients 64] [--seconds 6] [--repeats 2]
//
// The no-op server uses Concord's own Put codec (put-codec.ts) with channelz off, as the member does,
// and answers on the next loop turn, so responses leave in batches as the member's do. The load is
// bench/grpc-load.ts's, in its own process. Output: one JSON line per run, then a summary line.

import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, type sendUnaryData } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../src/api/etcd/proto-loader.ts';
import { PutResponseEncoder, withPutCodec } from '../src/api/etcd/put-codec.ts';
import { freeLoopbackPorts, stopProcess } from '../test/support/child-processes.ts';
import { runLoadInChildProcess, type LoadSpec } from './grpc-load.ts';
import { processCpuSeconds, startSystem } from './store-systems.ts';

const REQUEST_TIMEOUT_MS = 30_000;
const WARMUP_SECONDS = 2;
const SERVER_READY_TIMEOUT_MS = 20_000;

function option(argv: string[], name: string, fallback: number): number {
  const index = argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(argv[index + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number, got '${argv[index + 1]}'`);
  return value;
}

/** Child mode: the no-op server on `port`; prints "ready" once bound. */
function serveNoOp(port: number): void {
  const protos = loadEtcdProtos();
  const server = new Server({ 'grpc.enable_channelz': 0 });
  const responses = new PutResponseEncoder({ clusterId: 1n, memberId: 2n, raftTerm: () => 2 });
  let revision = 1;
  server.addService(withPutCodec(protos.services.KV), {
    Put: (_call: unknown, callback: sendUnaryData<Buffer>) => setImmediate(() => callback(null, responses.encode({ header: { revision: revision++ } }))),
  });
  server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) => {
    if (error) throw error;
    process.stdout.write('ready\n');
  });
}

async function startNoOp(): Promise<{ endpoint: string; cpuSeconds(): number; stop(): Promise<void> }> {
  const [port] = await freeLoopbackPorts(1);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the no-op server did not start within ${SERVER_READY_TIMEOUT_MS} ms`)), SERVER_READY_TIMEOUT_MS);
    child.stdout!.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`the no-op server exited with code ${code}`)));
  });
  return { endpoint: `127.0.0.1:${port}`, cpuSeconds: () => processCpuSeconds(child.pid), stop: () => stopProcess(child, { graceMs: 5_000, killWaitMs: 5_000 }) };
}

/** Server CPU µs per completed put, after an unmeasured run that lets the JIT warm up (the same for both systems). */
async function measure(target: { endpoint: string; cpuSeconds(): number }, clients: number, seconds: number, logPath: string) {
  const spec: LoadSpec = {
    endpoint: target.endpoint, op: 'put', clients, clientsPerChannel: 64, warmupSeconds: 0, seconds,
    keyCount: 10_000, keySizeBytes: 8, valueSizeBytes: 256, requestTimeoutMs: REQUEST_TIMEOUT_MS,
  };
  await runLoadInChildProcess({ ...spec, seconds: WARMUP_SECONDS }, logPath);
  const before = target.cpuSeconds();
  const result = await runLoadInChildProcess(spec, logPath);
  const cpuSeconds = target.cpuSeconds() - before;
  return { opsPerSecond: Math.round(result.opsPerSecond), cpuUsPerPut: Math.round((cpuSeconds * 1e6) / result.completed), errors: result.errors };
}

async function main(argv: string[]): Promise<void> {
  const clients = option(argv, '--clients', 64);
  const seconds = option(argv, '--seconds', 6);
  const repeats = option(argv, '--repeats', 2);
  const logPath = join(tmpdir(), `concord-grpc-floor-${process.pid}.log`);
  const runs: { system: string; cpuUsPerPut: number }[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const noOp = await startNoOp();
    try {
      const run = { system: 'grpc-js no-op Put', clients, ...(await measure(noOp, clients, seconds, logPath)) };
      runs.push(run);
      process.stdout.write(`${JSON.stringify(run)}\n`);
    } finally {
      await noOp.stop();
    }
    const etcd = await startSystem('etcd', { dataRoot: tmpdir(), logPath, members: 1 });
    try {
      const run = { system: 'etcd', clients, ...(await measure(etcd, clients, seconds, logPath)) };
      runs.push(run);
      process.stdout.write(`${JSON.stringify(run)}\n`);
    } finally {
      await etcd.stop();
    }
  }
  const median = (system: string) => {
    const values = runs.filter((run) => run.system === system).map((run) => run.cpuUsPerPut).sort((a, b) => a - b);
    return values[Math.floor((values.length - 1) / 2)];
  };
  process.stdout.write(`${JSON.stringify({ summary: { clients, noOpCpuUsPerCall: median('grpc-js no-op Put'), etcdCpuUsPerPut: median('etcd'), logPath } })}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const serveIndex = process.argv.indexOf('--serve');
  if (serveIndex >= 0) serveNoOp(Number(process.argv[serveIndex + 1]));
  else {
    main(process.argv.slice(2)).catch((error: unknown) => {
      process.stderr.write(`grpc-floor: ${(error as Error).message}\n`);
      process.exitCode = 1;
    });
  }
}
