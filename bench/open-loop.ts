// An open-loop HTTP/1.1 load generator: requests are due at fixed intervals (rate R: one every
// 1/R s) whether or not earlier ones have answered. A request that has to wait for a connection
// (all busy, none may be opened) is timed from the moment it was due, so queueing in the system
// under test shows up in the percentiles (wrk, a closed loop, would wait and hide it: "coordinated
// omission"); others are timed from their write. The generator sleeps on timers (1 ms resolution)
// rather than spinning, because it shares a core with the backends. Keep-alive connections without
// pipelining; more are opened (up to --max-connections) when all are busy. Parses only what the benchmark backends send: responses with Content-Length.
//
//   node bench/open-loop.ts --port 8080 --rps 1000 --seconds 5 [--host 127.0.0.1] [--path /]
//
// Prints one JSON line: { sent, completed, errors, non2xx, achievedRps, histogram } (histogram in
// latency-histogram.ts's JSON form). Bounded: stops sending after --seconds, waits at most
// --drain-seconds for stragglers (counted as errors).

import { connect, type Socket } from 'node:net';
import { LatencyHistogram } from './latency-histogram.ts';

export interface OpenLoopOptions {
  host: string;
  port: number;
  path: string;
  rps: number;
  seconds: number;
  initialConnections: number;
  maxConnections: number;
  drainSeconds: number;
}

export interface OpenLoopResult {
  sent: number;
  completed: number;
  errors: number;
  non2xx: number;
  achievedRps: number;
  /** Requests that could not be sent on time because every connection was busy and the cap was reached. */
  backlogMax: number;
  histogram: ReturnType<LatencyHistogram['toJSON']>;
}

interface Connection {
  socket: Socket;
  busy: boolean;
  dueMs: number;
  buffer: Buffer;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const histogram = new LatencyHistogram();
  const request = Buffer.from(`GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUser-Agent: concord-open-loop\r\n\r\n`);
  const connections: Connection[] = [];
  const idle: Connection[] = [];
  const backlog: number[] = [];
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let non2xx = 0;
  let backlogMax = 0;
  const intervalMs = 1000 / options.rps;
  const total = Math.floor(options.rps * options.seconds);

  return new Promise((resolve) => {
    const startMs = performance.now() + 50;
    const openConnection = (): Connection => {
      const connection: Connection = { socket: connect({ host: options.host, port: options.port, noDelay: true }), busy: false, dueMs: 0, buffer: Buffer.alloc(0) };
      connection.socket.on('data', (chunk: Buffer) => onData(connection, chunk));
      connection.socket.on('error', () => {});
      connection.socket.on('close', () => {
        if (connection.busy) errors += 1;
        connection.busy = false;
        const index = connections.indexOf(connection);
        if (index >= 0) connections.splice(index, 1);
        const idleIndex = idle.indexOf(connection);
        if (idleIndex >= 0) idle.splice(idleIndex, 1);
      });
      connections.push(connection);
      return connection;
    };
    const send = (connection: Connection, dueMs: number) => {
      connection.busy = true;
      connection.dueMs = Math.min(dueMs, performance.now());
      connection.socket.write(request);
    };
    const dispatch = (dueMs: number) => {
      sent += 1;
      const free = idle.pop();
      if (free !== undefined) return send(free, dueMs);
      if (connections.length < options.maxConnections) return send(openConnection(), dueMs);
      backlog.push(dueMs);
      backlogMax = Math.max(backlogMax, backlog.length);
    };
    const onData = (connection: Connection, chunk: Buffer) => {
      connection.buffer = connection.buffer.length === 0 ? chunk : Buffer.concat([connection.buffer, chunk]);
      while (connection.busy) {
        const headerEnd = connection.buffer.indexOf(CRLFCRLF);
        if (headerEnd === -1) return;
        const head = connection.buffer.subarray(0, headerEnd).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 'NaN');
        if (!Number.isFinite(length)) {
          errors += 1;
          connection.busy = false;
          connection.socket.destroy();
          return;
        }
        const end = headerEnd + 4 + length;
        if (connection.buffer.length < end) return;
        const status = Number(head.slice(9, 12));
        if (status < 200 || status > 299) non2xx += 1;
        histogram.recordMs(performance.now() - connection.dueMs);
        completed += 1;
        connection.buffer = connection.buffer.subarray(end);
        connection.busy = false;
        const waiting = backlog.shift();
        if (waiting !== undefined) {
          connection.busy = true;
          connection.dueMs = waiting; // it waited for a connection: that wait is the system's
          connection.socket.write(request);
        } else {
          idle.push(connection);
        }
      }
    };
    for (let i = 0; i < options.initialConnections; i++) idle.push(openConnection());
    let next = 0;
    const tick = () => {
      const now = performance.now();
      while (next < total && startMs + next * intervalMs <= now) {
        dispatch(startMs + next * intervalMs);
        next += 1;
      }
      if (next < total) {
        setTimeout(tick, Math.max(1, startMs + next * intervalMs - performance.now()));
        return;
      }
      const sentAllMs = performance.now();
      const finish = () => {
        if (completed + errors < sent && performance.now() - sentAllMs < options.drainSeconds * 1000) {
          setTimeout(finish, 10);
          return;
        }
        errors += sent - completed - errors;
        for (const connection of connections) connection.socket.destroy();
        resolve({ sent, completed, errors, non2xx, achievedRps: completed / options.seconds, backlogMax, histogram: histogram.toJSON() });
      };
      finish();
    };
    setTimeout(tick, 50);
  });
}

function argument(name: string, fallback?: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? process.argv[index + 1] : fallback;
  if (value === undefined) throw new Error(`open-loop: --${name} is required`);
  return value;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rps = Number(argument('rps'));
  const seconds = Number(argument('seconds', '5'));
  if (!(rps > 0 && rps <= 100_000) || !(seconds > 0 && seconds <= 600)) throw new Error('open-loop: --rps must be in (0, 100000] and --seconds in (0, 600]');
  const result = await runOpenLoop({
    host: argument('host', '127.0.0.1'), port: Number(argument('port')), path: argument('path', '/'), rps, seconds,
    initialConnections: Number(argument('connections', '16')), maxConnections: Number(argument('max-connections', '512')), drainSeconds: Number(argument('drain-seconds', '10')),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
