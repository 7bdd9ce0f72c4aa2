// The process provider: instances are local server processes started from a command template,
// each on its own port from a range ("node examples/app/server.mjs --port {port}"). It is the
// embedded default of `concord up`.
//
// * Stopping is graceful: SIGTERM to the instance's process group, then SIGKILL once stopGraceMs
//   has passed.
// * No orphans: every child runs under `setpriv --pdeathsig SIGKILL` (util-linux), so the kernel
//   kills it when the process that started it dies, even by SIGKILL; on an orderly exit the
//   provider kills its children itself. Without setpriv (not Linux) only the orderly path works,
//   and the provider says so in an event.
// * Each child is its own process group, so a stop reaches whatever the command started.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { ActionLedger } from './action-ledger.ts';
import { renderCommand } from './command-template.ts';
import { ProviderError, type ActionLogEntry, type InstanceRecord, type LaunchRequest, type Provider, type ProviderEvent, type TerminateRequest } from './provider.ts';
import { ReadinessBoard } from './readiness.ts';

export interface ProcessProviderOptions {
  pool: string;
  /** The command template; {port}, {host}, {instanceId}, {requestId}, {pool} and {launchVersion} are replaced. */
  command: string;
  /** Inclusive port range, 'LOW-HIGH'. */
  portRange: string;
  host: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Time an instance gets to exit after SIGTERM before SIGKILL. */
  stopGraceMs: number;
  /** Lines of each instance's output kept for the event that reports its exit. */
  outputTailLines?: number;
  nowMs?: () => number;
  onEvent?: (event: ProviderEvent) => void;
}

/** How long to wait for an exit after SIGKILL before giving up on it. */
const KILL_WAIT_MS = 5_000;
const DEFAULT_OUTPUT_TAIL_LINES = 20;

interface ProcessInstance {
  record: InstanceRecord;
  port: number;
  child: ChildProcess;
  tail: string[];
  exited: Promise<void>;
  stopping?: Promise<void>;
}

let setprivPath: string | null | undefined;

/** util-linux's setpriv on PATH, or null. */
function findSetpriv(): string | null {
  if (setprivPath === undefined) {
    const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
    setprivPath = [...dirs, '/usr/bin', '/bin'].map((dir) => join(dir, 'setpriv')).find((path) => existsSync(path)) ?? null;
  }
  return setprivPath;
}

export function parsePortRange(text: string): { low: number; high: number } {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const low = Number(match?.[1]);
  const high = Number(match?.[2]);
  if (match === null || low < 1 || high > 65_535 || low > high) {
    throw new ProviderError('CONCORD_E_PROVIDER_BAD_TEMPLATE', `portRange '${text}' must be LOW-HIGH within 1-65535, e.g. 9100-9199`);
  }
  return { low, high };
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export class ProcessProvider implements Provider {
  readonly kind = 'process';
  private readonly options: ProcessProviderOptions;
  private readonly range: { low: number; high: number };
  private readonly instances = new Map<string, ProcessInstance>();
  private readonly reservedPorts = new Set<number>();
  private readonly ledger: ActionLedger;
  private readonly readiness = new ReadinessBoard();
  private readonly nowMs: () => number;
  private readonly killOnExit = () => this.killAllNow();
  private launches = 0;
  private closed = false;

  constructor(options: ProcessProviderOptions) {
    this.options = options;
    this.range = parsePortRange(options.portRange);
    renderCommand(options.command, this.placeholders(this.range.low, 'check', 'check', 'check'));
    this.nowMs = options.nowMs ?? Date.now;
    this.ledger = new ActionLedger(this.nowMs, options.onEvent);
    process.on('exit', this.killOnExit);
    if (findSetpriv() === null) {
      this.ledger.event({ atMs: this.nowMs(), kind: 'warning', message: 'setpriv (util-linux) not found: instances die with Concord only on an orderly exit, not if it is killed' });
    }
  }

  list(): Promise<InstanceRecord[]> {
    return Promise.resolve([...this.instances.values()].map((instance) => ({ ...instance.record, ready: this.readiness.isReady(instance.record.id) })));
  }

  launch(request: LaunchRequest): Promise<InstanceRecord> {
    if (this.closed) return Promise.reject(new ProviderError('CONCORD_E_PROVIDER_CLOSED', 'the process provider is closed'));
    return this.ledger.run('launch', request.requestId, request.fencingToken, () => this.start(request), (record) => record.id);
  }

  terminate(request: TerminateRequest): Promise<void> {
    return this.ledger.run('terminate', request.requestId, request.fencingToken, () => this.stop(request.instanceId), () => request.instanceId);
  }

  fence(fencingToken: bigint): Promise<void> {
    return this.ledger.fence(fencingToken);
  }

  reportReadiness(instanceId: string, ready: boolean): void {
    if (!this.instances.has(instanceId)) return;
    if (this.readiness.report(instanceId, ready)) {
      this.ledger.event({ atMs: this.nowMs(), kind: ready ? 'ready' : 'not-ready', message: `${instanceId} reported ${ready ? 'ready' : 'not ready'}`, instanceId });
    }
  }

  isReady(instanceId: string): boolean {
    return this.readiness.isReady(instanceId);
  }

  waitUntilReady(instanceId: string, timeoutMs: number): Promise<boolean> {
    return this.readiness.waitUntilReady(instanceId, timeoutMs);
  }

  actionLog(): readonly ActionLogEntry[] {
    return this.ledger.entries();
  }

  events(): readonly ProviderEvent[] {
    return this.ledger.events();
  }

  /** The operating-system process id of an instance (for diagnostics). */
  pidOf(instanceId: string): number | undefined {
    return this.instances.get(instanceId)?.child.pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.instances.keys()].map((id) => this.stop(id)));
    process.off('exit', this.killOnExit);
  }

  // -------------------------------------------------------------------------------------------

  private placeholders(port: number, instanceId: string, requestId: string, launchVersion: string): Record<string, string> {
    return { port: String(port), host: this.options.host, instanceId, requestId, pool: this.options.pool, launchVersion };
  }

  private async allocatePort(): Promise<number> {
    for (let port = this.range.low; port <= this.range.high; port++) {
      if (this.reservedPorts.has(port)) continue;
      this.reservedPorts.add(port);
      if (await portIsFree(this.options.host, port)) return port;
      this.reservedPorts.delete(port);
    }
    throw new ProviderError('CONCORD_E_PROVIDER_NO_FREE_PORT', `no free port in ${this.options.portRange} on ${this.options.host} for pool ${this.options.pool}: widen portRange or lower max`);
  }

  private async start(request: LaunchRequest): Promise<InstanceRecord> {
    const port = await this.allocatePort();
    const id = `${this.options.pool}-${port}-${(this.launches++).toString(36)}`;
    let child: ChildProcess;
    try {
      const argv = renderCommand(this.options.command, this.placeholders(port, id, request.requestId, request.launchVersion));
      const setpriv = findSetpriv();
      const [file, ...args] = setpriv === null ? argv : [setpriv, '--pdeathsig', 'SIGKILL', '--', ...argv];
      child = spawn(file!, args, {
        cwd: this.options.cwd,
        env: { ...process.env, ...this.options.env, CONCORD_INSTANCE_ID: id, CONCORD_PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (error) {
      this.reservedPorts.delete(port);
      throw error instanceof ProviderError ? error : new ProviderError('CONCORD_E_PROVIDER_LAUNCH_FAILED', `cannot start '${this.options.command}': ${(error as Error).message}`);
    }
    const record: InstanceRecord = { id, address: `${this.options.host}:${port}`, launchVersion: request.launchVersion, launchedAtMs: this.nowMs(), ready: false };
    const instance: ProcessInstance = { record, port, child, tail: [], exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    this.captureOutput(instance);
    child.once('exit', (code, signal) => this.onExit(instance, code, signal));
    this.instances.set(id, instance);
    this.ledger.event({ atMs: this.nowMs(), kind: 'launched', message: `${id} started on ${record.address} (pid ${child.pid})`, instanceId: id, requestId: request.requestId });
    return record;
  }

  private captureOutput(instance: ProcessInstance): void {
    const keep = this.options.outputTailLines ?? DEFAULT_OUTPUT_TAIL_LINES;
    for (const stream of [instance.child.stdout, instance.child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim() !== '') instance.tail.push(line);
        if (instance.tail.length > keep) instance.tail.splice(0, instance.tail.length - keep);
      });
    }
  }

  private onExit(instance: ProcessInstance, code: number | null, signal: NodeJS.Signals | null): void {
    const { id } = instance.record;
    this.instances.delete(id);
    this.reservedPorts.delete(instance.port);
    this.readiness.forget(id);
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (instance.stopping !== undefined) {
      this.ledger.event({ atMs: this.nowMs(), kind: 'terminated', message: `${id} stopped (${how})`, instanceId: id });
    } else {
      const output = instance.tail.length > 0 ? `; last output: ${instance.tail.slice(-5).join(' | ')}` : '';
      this.ledger.event({ atMs: this.nowMs(), kind: 'exited', message: `${id} exited by itself (${how})${output}`, instanceId: id });
    }
  }

  private stop(instanceId: string): Promise<void> {
    const instance = this.instances.get(instanceId);
    if (instance === undefined) return Promise.resolve(); // already gone: stopping it again is a no-op
    instance.stopping ??= this.signalAndWait(instance);
    return instance.stopping;
  }

  private async signalAndWait(instance: ProcessInstance): Promise<void> {
    const timeout = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
    this.signalGroup(instance.child, 'SIGTERM');
    if ((await Promise.race([instance.exited.then(() => 'exited' as const), timeout(this.options.stopGraceMs)])) === 'exited') return;
    this.ledger.event({ atMs: this.nowMs(), kind: 'killed', message: `${instance.record.id} outlived its ${this.options.stopGraceMs} ms grace after SIGTERM: SIGKILL`, instanceId: instance.record.id });
    this.signalGroup(instance.child, 'SIGKILL');
    await Promise.race([instance.exited, timeout(KILL_WAIT_MS)]);
  }

  private signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  }

  /** On the owner's exit: no time for grace, kill every child's group now. */
  private killAllNow(): void {
    for (const instance of this.instances.values()) this.signalGroup(instance.child, 'SIGKILL');
  }
}
