// The overload benchmark's open-loop load generator. Arrivals follow a Poisson process at a fixed
// rate per phase, whatever happens to earlier requests: a slow system gets more concurrent
// requests, not fewer, as with real users. (A closed-loop generator such as wrk would slow down with
// the system and hide the overload.) Each phase gets exactly round(rate × duration) arrivals at
// independent uniform times, which is a Poisson process conditioned on its count: as bursty as
// Poisson, but the offered load is exactly the target, so a row falls short of it only when the
// generator falls behind. The schedule is seeded: every run of a row offers the same arrivals.
//
// To offer several thousand requests per second from one Node.js process on a shared core, it
// speaks HTTP/1.1 itself over raw node:net keep-alive connections: a request is one pre-built
// buffer, a response is parsed only for its status, Content-Length and x-concord-shed header. One
// request per connection at a time (no pipelining, so a slow response delays no other); a new
// connection opens whenever none is idle, up to maxConnections. A request that finds no connection
// is counted as not sent, which lowers the achieved offered load: the benchmark reports such a row
// as invalid rather than pretend the load was offered.
//
// Each request's latency runs from the write of its first byte to the last byte of its response;
// requests without a response after requestTimeoutMs count as timeouts. The gap between a
// request's scheduled time and its write is the generator's own lag, reported separately.

import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SeededRandom } from '../src/random/seeded-random.ts';
import { SHED_REASONS } from '../src/traffic/shed/shed-reason.ts';
import { PRIORITIES, type Priority } from '../src/traffic/shed/priority.ts';
import { isMainModule, runChild, specFromArgv } from './overload-processes.ts';

export interface LoadPhase {
  rateRps: number;
  durationMs: number;
  /** Requests scheduled in a measured phase are reported; the others only warm the system up. */
  measured: boolean;
}

export interface LoadSpec {
  host: string;
  port: number;
  path: string;
  phases: LoadPhase[];
  /** Shares of critical and sheddable requests; the rest are default. */
  mix: { critical: number; sheddable: number };
  seed: number;
  requestTimeoutMs: number;
  maxConnections: number;
  /** Upper bound on requests scheduled in the whole run (later phases are cut short). */
  maxRequests: number;
}

/** Status values for requests without an HTTP status. */
export const STATUS_TIMEOUT = -1;
export const STATUS_ERROR = 0;
export const STATUS_NOT_SENT = -2;

export interface LoadResult {
  /** Start of the first measured phase and the end of the last, in ms from the start of the run. */
  measuredStartMs: number;
  measuredEndMs: number;
  /** Requests scheduled in measured phases, columnar: times relative to measuredStartMs. */
  requests: {
    scheduledMs: number[];
    sentMs: number[];
    latencyMs: number[];
    status: number[];
    /** Index in PRIORITIES. */
    priority: number[];
    /** 0, or 1 + the index in SHED_REASONS of the x-concord-shed header. */
    shed: number[];
  };
  notSent: number;
  /** Requests sent in the whole run, warm-up included. */
  sentTotal: number;
  lagP99Ms: number;
  lagMaxMs: number;
  connectionsOpened: number;
  maxConnectionsBusy: number;
  cpuCores: number;
}

interface Pending {
  index: number;
  sentAt: number;
}

interface Connection {
  socket: Socket;
  buffer: Buffer;
  pending: Pending | undefined;
}

const TIMEOUT_SWEEP_MS = 50;
const MAX_HEADER_BYTES = 16 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

export function runLoad(spec: LoadSpec, logPath: string): Promise<LoadResult> {
  const totalMs = spec.phases.reduce((sum, phase) => sum + phase.durationMs, 0);
  return runChild<LoadResult>(fileURLToPath(import.meta.url), spec, logPath, totalMs + spec.requestTimeoutMs + 60_000);
}

function requestBytes(spec: LoadSpec, priority: Priority): Buffer {
  return Buffer.from(`GET ${spec.path} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\nx-concord-priority: ${priority}\r\n\r\n`, 'latin1');
}

/** The value of a header in a lower-cased header block, or undefined. */
function headerIn(block: string, name: string): string | undefined {
  const at = block.indexOf(`\r\n${name}:`);
  if (at < 0) return undefined;
  const start = at + name.length + 3;
  const end = block.indexOf('\r\n', start);
  return block.slice(start, end < 0 ? undefined : end).trim();
}

async function generate(spec: LoadSpec): Promise<LoadResult> {
  const random = new SeededRandom(spec.seed);
  const bytes = PRIORITIES.map((priority) => requestBytes(spec, priority));
  const firstMeasured = spec.phases.findIndex((phase) => phase.measured);
  const phaseStarts = spec.phases.map((_, i) => spec.phases.slice(0, i).reduce((sum, phase) => sum + phase.durationMs, 0));
  const totalMs = phaseStarts.at(-1)! + spec.phases.at(-1)!.durationMs;
  const measuredStartMs = firstMeasured < 0 ? totalMs : phaseStarts[firstMeasured]!;
  const requests: LoadResult['requests'] = { scheduledMs: [], sentMs: [], latencyMs: [], status: [], priority: [], shed: [] };
  const lags: number[] = [];
  const idle: Connection[] = [];
  const busy = new Set<Connection>();
  let connectionsOpened = 0;
  let maxConnectionsBusy = 0;
  let notSent = 0;
  let scheduled = 0;
  const t0 = performance.now();
  const cpuAtStart = process.cpuUsage();

  const record = (pending: Pending, status: number, shed: number, nowMs: number) => {
    if (pending.index < 0) return;
    requests.status[pending.index] = status;
    requests.shed[pending.index] = shed;
    requests.latencyMs[pending.index] = nowMs - pending.sentAt;
  };
  const drop = (connection: Connection) => {
    busy.delete(connection);
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
  };
  const onData = (connection: Connection, chunk: Buffer) => {
    connection.buffer = connection.buffer.length === 0 ? chunk : Buffer.concat([connection.buffer, chunk]);
    const headerEnd = connection.buffer.indexOf(HEADER_END);
    if (headerEnd < 0) {
      if (connection.buffer.length > MAX_HEADER_BYTES) connection.socket.destroy(new Error('response header too large'));
      return;
    }
    const block = connection.buffer.toString('latin1', 0, headerEnd).toLowerCase();
    const length = Number(headerIn(block, 'content-length') ?? Number.NaN);
    if (!Number.isInteger(length)) {
      connection.socket.destroy(new Error('a response without Content-Length'));
      return;
    }
    if (connection.buffer.length < headerEnd + 4 + length) return;
    const pending = connection.pending;
    if (pending === undefined) {
      connection.socket.destroy(new Error('a response to no request'));
      return;
    }
    const reason = headerIn(block, 'x-concord-shed');
    const shed = reason === undefined ? 0 : SHED_REASONS.indexOf(reason as (typeof SHED_REASONS)[number]) + 1;
    record(pending, Number(block.slice(9, 12)), shed, performance.now() - t0);
    connection.pending = undefined;
    connection.buffer = connection.buffer.subarray(headerEnd + 4 + length);
    busy.delete(connection);
    if (headerIn(block, 'connection') === 'close') connection.socket.destroy();
    else idle.push(connection);
  };
  const open = (): Connection => {
    const socket = connect({ host: spec.host, port: spec.port, noDelay: true });
    const connection: Connection = { socket, buffer: Buffer.alloc(0), pending: undefined };
    connectionsOpened += 1;
    socket.on('data', (chunk: Buffer) => onData(connection, chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (connection.pending !== undefined) record(connection.pending, STATUS_ERROR, 0, performance.now() - t0);
      connection.pending = undefined;
      drop(connection);
    });
    return connection;
  };
  const send = (scheduledMs: number, priority: number, nowMs: number) => {
    const measured = scheduledMs >= measuredStartMs;
    const index = measured ? requests.scheduledMs.length : -1;
    if (measured) {
      requests.scheduledMs.push(scheduledMs - measuredStartMs);
      requests.sentMs.push(nowMs - measuredStartMs);
      requests.latencyMs.push(0);
      requests.status.push(STATUS_NOT_SENT);
      requests.priority.push(priority);
      requests.shed.push(0);
    }
    lags.push(nowMs - scheduledMs);
    const connection = idle.pop() ?? (busy.size + idle.length < spec.maxConnections ? open() : undefined);
    if (connection === undefined) {
      notSent += 1;
      return;
    }
    connection.pending = { index, sentAt: nowMs };
    busy.add(connection);
    maxConnectionsBusy = Math.max(maxConnectionsBusy, busy.size);
    connection.socket.write(bytes[priority]!);
  };
  /** Every arrival of the run, in order: per phase, round(rate × duration) uniform times in the phase. */
  const schedule: number[] = [];
  spec.phases.forEach((phase, index) => {
    const count = Math.min(Math.round((phase.rateRps * phase.durationMs) / 1000), spec.maxRequests - schedule.length);
    const times = Array.from({ length: count }, () => phaseStarts[index]! + random.nextFloat() * phase.durationMs);
    schedule.push(...times.sort((a, b) => a - b));
  });
  const classOf = (): number => {
    const draw = random.nextFloat();
    if (draw < spec.mix.critical) return PRIORITIES.indexOf('critical');
    if (draw < spec.mix.critical + spec.mix.sheddable) return PRIORITIES.indexOf('sheddable');
    return PRIORITIES.indexOf('default');
  };

  const sweep = setInterval(() => {
    const nowMs = performance.now() - t0;
    for (const connection of [...busy]) {
      const pending = connection.pending;
      if (pending === undefined || nowMs - pending.sentAt < spec.requestTimeoutMs) continue;
      record(pending, STATUS_TIMEOUT, 0, nowMs);
      connection.pending = undefined;
      drop(connection);
      connection.socket.destroy();
    }
  }, TIMEOUT_SWEEP_MS);

  await new Promise<void>((resolve) => {
    let next = 0;
    const pump = () => {
      const nowMs = performance.now() - t0;
      while (next < schedule.length && schedule[next]! <= nowMs) send(schedule[next++]!, classOf(), nowMs);
      scheduled = next;
      if (next < schedule.length) setTimeout(pump, Math.max(0, Math.floor(schedule[next]! - nowMs)));
      else resolve();
    };
    pump();
  });
  // Let the last requests finish (the sweep ends them at their timeout).
  while (busy.size > 0) await new Promise((resolve) => setTimeout(resolve, TIMEOUT_SWEEP_MS));
  clearInterval(sweep);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpuAtStart);
  for (const connection of idle.splice(0)) connection.socket.destroy();
  lags.sort((a, b) => a - b);
  return {
    measuredStartMs,
    measuredEndMs: totalMs,
    requests,
    notSent,
    sentTotal: scheduled - notSent,
    lagP99Ms: lags.length === 0 ? 0 : lags[Math.ceil(0.99 * lags.length) - 1]!,
    lagMaxMs: lags.at(-1) ?? 0,
    connectionsOpened,
    maxConnectionsBusy,
    cpuCores: (cpu.user + cpu.system) / 1000 / wallMs,
  };
}

if (isMainModule(import.meta.url)) {
  const spec = specFromArgv<LoadSpec>(process.argv.slice(2));
  process.stdout.write(`${JSON.stringify(await generate(spec))}\n`);
}
