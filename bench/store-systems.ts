// The two systems under test, started the same way: one or three members, each in a fresh data dir
// under the same root (so on the same disk), fsync on (both defaults: etcd without --unsafe-no-fsync,
// Concord's WAL without unsafeNoFsync), heartbeat 100 ms and election timeout 1 s (both defaults),
// free loopback ports, and a log file per member. A system is healthy once a linearizable gRPC range
// succeeds on every member: the same probe for both, through the same client code the load uses.
// Stopping removes the data dirs.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { delay, freeLoopbackPorts, stopProcess as stopChild } from '../test/support/child-processes.ts';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos, type Encodable, type RangeRequest } from '../src/api/etcd/proto-loader.ts';

export type SystemName = 'etcd' | 'concord';
export const SYSTEM_NAMES: readonly SystemName[] = ['etcd', 'concord'];

export const ETCD_BINARY = '/usr/bin/etcd';
const CONCORD_ENTRY = fileURLToPath(new URL('../src/cli/entry.ts', import.meta.url));
/** Cluster sizes the benchmark knows. */
export const MEMBER_COUNTS = [1, 3] as const;
export type MemberCount = (typeof MEMBER_COUNTS)[number];

const START_TIMEOUT_MS = 30_000;
const HEALTH_POLL_INTERVAL_MS = 100;
const HEALTH_REQUEST_TIMEOUT_MS = 1_000;
/** Generous, because a Concord run under --cpu-prof writes its profile while exiting. */
const STOP_GRACE_MS = 20_000;
const KILL_WAIT_MS = 5_000;

export interface SystemOptions {
  /** Parent of the fresh data dirs; the same for both systems, so they share a disk. */
  dataRoot: string;
  /** Where the members' stdout and stderr go (member n > 1 writes to this path with -mN added). */
  logPath: string;
  members: MemberCount;
  /** Concord only: write a V8 CPU profile of the server process into this directory. */
  cpuProfileDir?: string;
  /** Flags given to every member of either system (Concord takes etcd's names), e.g. auto-compaction. */
  extraFlags?: string[];
  /** Concord only: flags for its members alone (e.g. --listen-metrics-urls, which etcd 3.4 serves on the client port). */
  concordFlags?: string[];
}

export interface RunningSystem {
  readonly name: SystemName;
  /** host:port of every member, comma-separated, as etcdctl's --endpoints and the load generator take it. */
  readonly endpoint: string;
  /** CPU seconds (user + system) the members have used so far, from /proc; NaN where /proc is missing. */
  cpuSeconds(): number;
  /** Process IDs of the members, in member order (undefined if one could not be started). */
  readonly pids: readonly (number | undefined)[];
  /** Stops the members (SIGTERM, then SIGKILL after a bound) and removes their data dirs; safe to call twice. */
  stop(): Promise<void>;
}

interface MemberPlan {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logPath: string;
}

/** Every member still running, killed if the benchmark exits without stopping it (an error, ^C). */
const liveProcesses = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
});

/**
 * Starts on fresh ports up to this many times: the ports are found free, then let go for the members
 * to listen on, and another process (a member of the run before, still closing) may take one between.
 */
const START_ATTEMPTS = 3;

export async function startSystem(name: SystemName, options: SystemOptions): Promise<RunningSystem> {
  const failures: string[] = [];
  for (;;) {
    try {
      return await startSystemOnce(name, options);
    } catch (error) {
      failures.push((error as Error).message);
      if (failures.length >= START_ATTEMPTS) throw new Error(failures.join('; then '));
    }
  }
}

async function startSystemOnce(name: SystemName, options: SystemOptions): Promise<RunningSystem> {
  const ports = await freeLoopbackPorts(2 * options.members);
  const plans: MemberPlan[] = [];
  for (let i = 0; i < options.members; i++) {
    plans.push({
      name: `bench${i + 1}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: await mkdtemp(join(options.dataRoot, `concord-bench-${name}-`)),
      logPath: i === 0 ? options.logPath : options.logPath.replace(/(\.log)?$/, `-m${i + 1}$1`),
    });
  }
  const initialCluster = plans.map((plan) => `${plan.name}=${plan.peerUrl}`).join(',');
  const children = plans.map((plan) => spawnMember(name, plan, initialCluster, options));
  let stopped: Promise<void> | undefined;
  const system: RunningSystem = {
    name,
    endpoint: plans.map((plan) => plan.clientUrl.replace('http://', '')).join(','),
    cpuSeconds: () => children.reduce((sum, child) => sum + processCpuSeconds(child.pid), 0),
    pids: children.map((child) => child.pid),
    stop: () => (stopped ??= Promise.all(children.map(stopProcess))
      .then(() => Promise.all(plans.map((plan) => rm(plan.dataDir, { recursive: true, force: true }))))
      .then(() => undefined)),
  };
  try {
    await Promise.all(children.map((child, i) => waitUntilHealthy(child, plans[i]!.clientUrl.replace('http://', ''))));
  } catch (error) {
    await system.stop();
    throw new Error(`${name} did not become healthy: ${(error as Error).message}; see ${options.logPath}`);
  }
  return system;
}

function spawnMember(name: SystemName, plan: MemberPlan, initialCluster: string, options: SystemOptions): ChildProcess {
  const [command, args] = name === 'etcd'
    ? [ETCD_BINARY, [...etcdArgs(plan, initialCluster), ...(options.extraFlags ?? [])]]
    : [process.execPath, [...concordArgs(plan, initialCluster, options.cpuProfileDir), ...(options.extraFlags ?? []), ...(options.concordFlags ?? [])]];
  const logFd = openSync(plan.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env: environmentWithoutEtcdVariables(), stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  liveProcesses.add(child);
  return child;
}

function etcdArgs(plan: MemberPlan, initialCluster: string): string[] {
  return [
    `--name=${plan.name}`,
    `--data-dir=${plan.dataDir}`,
    `--listen-client-urls=${plan.clientUrl}`,
    `--advertise-client-urls=${plan.clientUrl}`,
    `--listen-peer-urls=${plan.peerUrl}`,
    `--initial-advertise-peer-urls=${plan.peerUrl}`,
    `--initial-cluster=${initialCluster}`,
    '--initial-cluster-state=new',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

function concordArgs(plan: MemberPlan, initialCluster: string, cpuProfileDir: string | undefined): string[] {
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`];
  return [
    ...profiling,
    CONCORD_ENTRY,
    'server',
    '--name', plan.name,
    '--data-dir', plan.dataDir,
    '--listen-client-urls', plan.clientUrl,
    '--listen-peer-urls', plan.peerUrl,
    '--initial-cluster', initialCluster,
    // The store alone, as etcd runs: the control plane is a client of the store (watches, leases,
    // health checks) that etcd's side of the comparison does not have.
    '--no-control-plane',
  ];
}

/** Linux reports utime and stime in USER_HZ ticks, which is 100 on every architecture Node runs on. */
const USER_HZ = 100;

export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    // Fields after the parenthesized command name: state is field 3, utime 14 and stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

/** etcd reads ETCD_* variables as flags; a developer's environment must not change the member under test. */
function environmentWithoutEtcdVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD_')));
}

interface HealthClient extends Client {
  Range(request: Encodable<RangeRequest>, options: CallOptions, callback: (error: ServiceError | null) => void): void;
}

async function waitUntilHealthy(child: ChildProcess, endpoint: string): Promise<void> {
  let exitReason: string | undefined;
  child.once('exit', (code, signal) => (exitReason = `exited early (code ${code}, signal ${signal})`));
  child.once('error', (error) => (exitReason = `could not be started: ${error.message}`));
  const client = new (loadEtcdProtos().clients.KV)(endpoint, credentials.createInsecure()) as unknown as HealthClient;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = 'no answer yet';
  try {
    while (Date.now() < deadline) {
      if (exitReason !== undefined) throw new Error(exitReason);
      const error = await new Promise<ServiceError | null>((resolve) => {
        client.Range({ key: Buffer.from('bench-health') }, { deadline: Date.now() + HEALTH_REQUEST_TIMEOUT_MS }, resolve);
      });
      if (error === null) return;
      lastError = error.message;
      await delay(HEALTH_POLL_INTERVAL_MS);
    }
    throw new Error(`not healthy after ${START_TIMEOUT_MS} ms (last error: ${lastError})`);
  } finally {
    client.close();
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  await stopChild(child, { graceMs: STOP_GRACE_MS, killWaitMs: KILL_WAIT_MS });
  liveProcesses.delete(child);
}

