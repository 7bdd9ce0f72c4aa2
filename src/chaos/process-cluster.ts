// A cluster of real `concord server` processes on loopback, for chaos runs and tests: each member
// on its own loopback address (127.0.0.11, .12, ...), its peer traffic through a PeerRelay so links
// can be cut, and handles to kill (SIGKILL), pause (SIGSTOP/SIGCONT), stop (SIGTERM) and restart it.
// Every member's output goes to a log file, for the report of a failed run.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.ts';
import { PeerRelay } from './peer-relay.ts';

/** The CLI entry next to this file's folder: src/cli/entry.ts from sources, dist/cli/entry.js when built. */
const ENTRY = fileURLToPath(new URL(`../cli/entry.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

export interface MemberLayout {
  name: string;
  /** The member's own loopback address: its client and peer listeners and its outgoing peer connections. */
  address: string;
  clientPort: number;
  peerPort: number;
  /** The relay's port in front of the peer port: the member's advertised peer URL. */
  relayPort: number;
  dataDir: string;
  logPath: string;
}

export interface ProcessClusterOptions {
  size: number;
  /** Folder for data dirs and logs. */
  workDir: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** Extra `concord server` arguments for every member (e.g. --bug NAME). */
  extraArgs?: readonly string[];
  /** Logged lines go here too (the harness's own account of what it did). */
  onEvent?: (line: string) => void;
}

interface RunningMember {
  process: ChildProcess;
  exited: Promise<void>;
  paused: boolean;
}

export class ProcessCluster {
  readonly members: MemberLayout[];
  readonly relay: PeerRelay;
  private readonly options: ProcessClusterOptions;
  private readonly running = new Map<string, RunningMember>();
  private readonly logs = new Map<string, WriteStream>();

  private constructor(options: ProcessClusterOptions, members: MemberLayout[], relay: PeerRelay) {
    this.options = options;
    this.members = members;
    this.relay = relay;
  }

  static async create(options: ProcessClusterOptions): Promise<ProcessCluster> {
    mkdirSync(options.workDir, { recursive: true });
    const placed: Omit<MemberLayout, 'relayPort'>[] = [];
    for (let i = 0; i < options.size; i++) {
      const name = `m${i + 1}`;
      const address = `127.0.0.${11 + i}`;
      placed.push({
        name,
        address,
        clientPort: await freePort(address),
        peerPort: await freePort(address),
        dataDir: join(options.workDir, name),
        logPath: join(options.workDir, `${name}.log`),
      });
    }
    // The relay's listeners take their ports as they listen; the members learn them from it.
    const relay = new PeerRelay(
      placed.map((member) => ({ member: member.name, listenHost: '127.0.0.1', listenPort: 0, targetHost: member.address, targetPort: member.peerPort })),
      new Map(placed.map((member) => [member.address, member.name])),
    );
    await relay.start();
    const members = placed.map((member) => ({ ...member, relayPort: relay.listenPortOf(member.name) }));
    return new ProcessCluster(options, members, relay);
  }

  get names(): string[] {
    return this.members.map((member) => member.name);
  }

  member(name: string): MemberLayout {
    const member = this.members.find((candidate) => candidate.name === name);
    if (!member) throw new Error(`no member named ${name}`);
    return member;
  }

  clientEndpoint(name: string): string {
    const member = this.member(name);
    return `${member.address}:${member.clientPort}`;
  }

  endpoints(): string[] {
    return this.names.map((name) => this.clientEndpoint(name));
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  isPaused(name: string): boolean {
    return this.running.get(name)?.paused ?? false;
  }

  startAll(): void {
    for (const name of this.names) this.start(name);
  }

  /** Starts (or restarts, from its data dir) a member's process. */
  start(name: string): void {
    if (this.running.has(name)) return;
    const member = this.member(name);
    const initialCluster = this.members.map((peer) => `${peer.name}=http://127.0.0.1:${peer.relayPort}`).join(',');
    const args = [
      ENTRY, 'server',
      '--name', member.name,
      '--data-dir', member.dataDir,
      '--listen-client-urls', `http://${member.address}:${member.clientPort}`,
      '--listen-peer-urls', `http://${member.address}:${member.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${member.relayPort}`,
      '--initial-cluster', initialCluster,
      '--heartbeat-interval', String(this.options.heartbeatIntervalMs),
      '--election-timeout', String(this.options.electionTimeoutMs),
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = this.logFor(member);
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
      log.write(`--- process exited (code ${code}, signal ${signal}) ---\n`);
      if (this.running.get(name)?.process === child) this.running.delete(name);
      resolve();
    }));
    this.running.set(name, { process: child, exited, paused: false });
    this.options.onEvent?.(`start ${name} (pid ${child.pid})`);
  }

  /** SIGKILL: the process dies at once; what it had not written is lost (the page cache keeps what it had). */
  async kill(name: string): Promise<void> {
    const running = this.running.get(name);
    if (!running) return;
    this.options.onEvent?.(`kill -9 ${name}`);
    running.process.kill('SIGKILL');
    await running.exited;
  }

  /** SIGTERM: a planned stop (a leader hands over leadership first). */
  async stop(name: string): Promise<void> {
    const running = this.running.get(name);
    if (!running) return;
    if (running.paused) this.resume(name);
    this.options.onEvent?.(`stop ${name} (SIGTERM)`);
    running.process.kill('SIGTERM');
    const timer = setTimeout(() => running.process.kill('SIGKILL'), 15_000);
    await running.exited;
    clearTimeout(timer);
  }

  pause(name: string): void {
    const running = this.running.get(name);
    if (!running || running.paused) return;
    this.options.onEvent?.(`SIGSTOP ${name}`);
    running.process.kill('SIGSTOP');
    running.paused = true;
  }

  resume(name: string): void {
    const running = this.running.get(name);
    if (!running || !running.paused) return;
    this.options.onEvent?.(`SIGCONT ${name}`);
    running.process.kill('SIGCONT');
    running.paused = false;
  }

  /** Stops every member (paused ones are resumed first), then the relay; leaves no process behind. */
  async stopAll(): Promise<void> {
    for (const name of this.names) this.resume(name);
    await Promise.all(this.names.map((name) => this.kill(name)));
    await this.relay.stop();
    for (const log of this.logs.values()) log.end();
  }

  private logFor(member: MemberLayout): WriteStream {
    let log = this.logs.get(member.name);
    if (!log) {
      log = createWriteStream(member.logPath, { flags: 'a' });
      this.logs.set(member.name, log);
    }
    return log;
  }
}
