// Starts and stops a real single-member etcd (v3.4, Debian's etcd-server) on free loopback ports,
// the reference that the compatibility suite and the wire tests compare Concord against.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { freeLoopbackPorts, stopProcess as stopChild } from '../support/child-processes.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BINARY = '/usr/bin/etcd';
export const INSTALL_HINT = 'install it with `bash scripts/install-test-deps.sh` (as root; CI runs it from .ci/run)';

/** The member name both etcd and Concord are started with, so that `member list` outputs can match. */
export const COMPAT_MEMBER_NAME = 'compat-member';

const START_TIMEOUT_MS = 20_000;
const HEALTH_POLL_INTERVAL_MS = 50;
const HEALTH_REQUEST_TIMEOUT_MS = 1_000;
const STOP_GRACE_MS = 5_000;
const KILL_WAIT_MS = 2_000;
/** How much of etcd's stderr is kept to explain a failed start. */
const STDERR_TAIL_BYTES_MAX = 8_192;
/** Free ports are found by binding port 0 and releasing it; another process may take one meanwhile. */
const START_ATTEMPTS_MAX = 3;

export interface EtcdMember {
  readonly name: string;
  /** host:port, as etcdctl's --endpoints and gRPC clients take it. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** The last few kilobytes etcd wrote to stderr (its log). */
  stderrTail(): string;
  /** Stops etcd (SIGTERM, then SIGKILL after a bound) and removes its data; safe to call twice. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  name?: string;
  startTimeoutMs?: number;
  /** For tests of this module; the suite always runs Debian's etcd. */
  binary?: string;
}

/** Every member still running, killed on process exit if a test forgot (or failed) to stop it. */
const liveProcesses = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
});

export function assertEtcdInstalled(binary = ETCD_BINARY): void {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: ${INSTALL_HINT}`);
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdMember> {
  assertEtcdInstalled(options.binary);
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS_MAX; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      lastError = error;
      if (!(error instanceof EtcdStartError) || !error.portTaken) throw error;
    }
  }
  throw lastError;
}

class EtcdStartError extends Error {
  readonly portTaken: boolean;
  constructor(message: string, portTaken: boolean) {
    super(message);
    this.name = 'EtcdStartError';
    this.portTaken = portTaken;
  }
}

async function startOnce(options: StartEtcdOptions): Promise<EtcdMember> {
  const name = options.name ?? COMPAT_MEMBER_NAME;
  const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  const [clientPort, peerPort] = await freeLoopbackPorts(2);
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'concord-etcd-'));
  const child = spawn(options.binary ?? ETCD_BINARY, etcdArgs(name, dataDir, clientUrl, peerUrl), {
    env: environmentWithoutEtcdVariables(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  liveProcesses.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES_MAX);
  });
  let stopped: Promise<void> | undefined;
  const member: EtcdMember = {
    name,
    endpoint: `127.0.0.1:${clientPort}`,
    clientUrl,
    peerUrl,
    dataDir,
    stderrTail: () => stderr,
    stop: () => (stopped ??= stopProcess(child).finally(() => rm(dataDir, { recursive: true, force: true }))),
  };
  try {
    await waitUntilHealthy(child, clientUrl, startTimeoutMs);
  } catch (error) {
    await member.stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new EtcdStartError(
      `etcd did not become healthy on ${clientUrl}: ${reason}\n--- etcd stderr (tail) ---\n${stderr}`,
      /address already in use/.test(stderr),
    );
  }
  return member;
}

function etcdArgs(name: string, dataDir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    `--name=${name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${name}=${peerUrl}`,
    '--initial-cluster-state=new',
    '--initial-cluster-token=concord-compat',
    // A lone member still waits one election timeout before it leads; short ticks make startup fast.
    '--heartbeat-interval=25',
    '--election-timeout=250',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

/** etcd reads ETCD_* variables as flags; a developer's environment must not change the test member. */
function environmentWithoutEtcdVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD_')));
}

async function waitUntilHealthy(child: ChildProcess, clientUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(`etcd exited early (code ${code}, signal ${signal})`));
    child.once('error', (error) => resolve(`etcd could not be started: ${error.message}`));
  });
  let exitReason: string | undefined;
  void exited.then((reason) => (exitReason = reason));
  while (Date.now() < deadline) {
    if (exitReason !== undefined) throw new Error(exitReason);
    if (await isHealthy(clientUrl)) return;
    await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_INTERVAL_MS));
  }
  throw new Error(exitReason ?? `not healthy after ${timeoutMs} ms`);
}

async function isHealthy(clientUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS) });
    const body = (await response.json()) as { health?: unknown };
    return response.ok && body.health === 'true';
  } catch {
    return false;
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  await stopChild(child, { graceMs: STOP_GRACE_MS, killWaitMs: KILL_WAIT_MS });
  liveProcesses.delete(child);
}

