// What authentication costs, Concord against etcd 3.4 in the same run.
//
//   npx concord bench auth [-- --rounds 3 --ops 200 --authenticates 20]
//
// One member of each (fsync on, both defaults), started once. Each round, for each system (etcd
// first in even rounds, Concord first in odd ones): with auth off, `ops` sequential puts and
// linearizable ranges from one client; then auth on: `authenticates` sequential Authenticate calls
// (a password check each: bcrypt cost 10 in etcd, scrypt N=2^14 in Concord), and the same puts and
// ranges carrying the user's token (the user holds a read-write prefix permission, not root, so
// every request is checked against its ranges); then auth off again. One client, one request in
// flight: this measures the latency a request pays, not throughput.
//
// Output: a table on stderr; the last line on stdout is a JSON summary with, per system and
// operation, the median over rounds of each round's p50 and p99 in milliseconds (from the sorted
// samples, never averages), the Concord/etcd ratio of the p50s, and each system's auth-on/auth-off
// ratio for puts and ranges.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../src/api/etcd/proto-loader.ts';
import { SYSTEM_NAMES, startSystem } from './store-systems.ts';
import type { RunningSystem, SystemName } from './store-systems.ts';

const REQUEST_TIMEOUT_MS = 10_000;
const OPERATIONS = ['authenticate', 'put', 'range', 'putWithAuth', 'rangeWithAuth'] as const;
type Operation = (typeof OPERATIONS)[number];

interface Options {
  rounds: number;
  ops: number;
  authenticates: number;
}

type Unary = (request: object, metadata: Metadata, options: { deadline: number }, callback: (error: ServiceError | null, response: Record<string, unknown>) => void) => void;
type Service = Client & Record<string, Unary>;

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError('must be a positive whole number');
  return value;
}

class Session {
  private readonly kv: Service;
  private readonly auth: Service;

  constructor(endpoint: string) {
    const protos = loadEtcdProtos();
    this.kv = new protos.clients.KV(endpoint, credentials.createInsecure()) as unknown as Service;
    this.auth = new protos.clients.Auth(endpoint, credentials.createInsecure()) as unknown as Service;
  }

  call(service: 'kv' | 'auth', method: string, request: object, token?: string): Promise<Record<string, unknown>> {
    const metadata = new Metadata();
    if (token !== undefined) metadata.set('token', token);
    const target = service === 'kv' ? this.kv : this.auth;
    return new Promise((resolve, reject) => {
      target[method]!(request, metadata, { deadline: Date.now() + REQUEST_TIMEOUT_MS }, (error, response) => (error ? reject(new Error(`${method}: ${error.details}`)) : resolve(response)));
    });
  }

  close(): void {
    this.kv.close();
    this.auth.close();
  }
}

/** Milliseconds of each of `count` sequential calls. */
async function timed(count: number, once: (i: number) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await once(i);
    samples.push(performance.now() - started);
  }
  return samples;
}

function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

const ROOT = { name: 'root', password: 'bench-root-pw' };
const USER = { name: 'bench', password: 'bench-user-pw' };
const KEY_PREFIX = 'bench/';
const VALUE = Buffer.alloc(256, 0x61);

async function createUsers(session: Session): Promise<void> {
  await session.call('auth', 'UserAdd', ROOT);
  await session.call('auth', 'UserGrantRole', { user: ROOT.name, role: 'root' });
  await session.call('auth', 'UserAdd', USER);
  await session.call('auth', 'RoleAdd', { name: 'bench-rw' });
  await session.call('auth', 'RoleGrantPermission', { name: 'bench-rw', perm: { permType: 'READWRITE', key: Buffer.from(KEY_PREFIX), range_end: Buffer.from('bench0') } });
  await session.call('auth', 'UserGrantRole', { user: USER.name, role: 'bench-rw' });
}

async function round(session: Session, options: Options): Promise<Record<Operation, number[]>> {
  const key = (i: number) => Buffer.from(`${KEY_PREFIX}${i % 100}`);
  const put = await timed(options.ops, (i) => session.call('kv', 'Put', { key: key(i), value: VALUE }));
  const range = await timed(options.ops, (i) => session.call('kv', 'Range', { key: key(i) }));
  await session.call('auth', 'AuthEnable', {});
  let token = '';
  const authenticate = await timed(options.authenticates, async () => {
    token = (await session.call('auth', 'Authenticate', USER)).token as string;
  });
  const putWithAuth = await timed(options.ops, (i) => session.call('kv', 'Put', { key: key(i), value: VALUE }, token));
  const rangeWithAuth = await timed(options.ops, (i) => session.call('kv', 'Range', { key: key(i) }, token));
  const rootToken = (await session.call('auth', 'Authenticate', ROOT)).token as string;
  await session.call('auth', 'AuthDisable', {}, rootToken);
  return { authenticate, put, range, putWithAuth, rangeWithAuth };
}

type Figures = Record<Operation, { p50Ms: number; p99Ms: number }>;

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench auth')
    .option('--rounds <n>', 'rounds, each system once per round', positiveInteger, 3)
    .option('--ops <n>', 'sequential puts and ranges per phase', positiveInteger, 200)
    .option('--authenticates <n>', 'sequential Authenticate calls per round', positiveInteger, 20)
    .parse(argv, { from: 'user' });
  const options = program.opts<Options>();
  const dataRoot = mkdtempSync(join(tmpdir(), 'concord-bench-auth-'));
  const systems = new Map<SystemName, { system: RunningSystem; session: Session }>();
  const rounds = new Map<SystemName, Record<Operation, number[]>[]>(SYSTEM_NAMES.map((name) => [name, []]));
  try {
    for (const name of SYSTEM_NAMES) {
      const system = await startSystem(name, { dataRoot, logPath: join(dataRoot, `${name}.log`), members: 1 });
      const session = new Session(system.endpoint);
      systems.set(name, { system, session });
      await createUsers(session);
    }
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? SYSTEM_NAMES : [...SYSTEM_NAMES].reverse();
      for (const name of order) {
        process.stderr.write(`round ${r + 1}/${options.rounds}: ${name}\n`);
        rounds.get(name)!.push(await round(systems.get(name)!.session, options));
      }
    }
  } finally {
    for (const { system, session } of systems.values()) {
      session.close();
      await system.stop();
    }
    rmSync(dataRoot, { recursive: true, force: true });
  }
  const figures = Object.fromEntries(SYSTEM_NAMES.map((name) => {
    const perRound = rounds.get(name)!;
    const byOperation = Object.fromEntries(OPERATIONS.map((op) => [op, {
      p50Ms: round3(median(perRound.map((samples) => quantile(samples[op], 0.5)))),
      p99Ms: round3(median(perRound.map((samples) => quantile(samples[op], 0.99)))),
    }])) as Figures;
    return [name, byOperation];
  })) as Record<SystemName, Figures>;
  const ratios = Object.fromEntries(OPERATIONS.map((op) => [op, round3(figures.concord[op].p50Ms / figures.etcd[op].p50Ms)]));
  const authOverhead = Object.fromEntries(SYSTEM_NAMES.map((name) => [name, {
    put: round3(figures[name].putWithAuth.p50Ms / figures[name].put.p50Ms),
    range: round3(figures[name].rangeWithAuth.p50Ms / figures[name].range.p50Ms),
  }]));
  process.stderr.write(`${'operation'.padEnd(16)}${'etcd p50/p99 ms'.padEnd(20)}${'concord p50/p99 ms'.padEnd(22)}concord/etcd p50\n`);
  for (const op of OPERATIONS) {
    const cell = (name: SystemName) => `${figures[name][op].p50Ms} / ${figures[name][op].p99Ms}`;
    process.stderr.write(`${op.padEnd(16)}${cell('etcd').padEnd(20)}${cell('concord').padEnd(22)}${ratios[op]}\n`);
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'auth', ...options, figures, concordToEtcdP50: ratios, authOnToOffP50: authOverhead, date: new Date().toISOString() })}\n`);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

await main(process.argv.slice(2));
