// The run's proxies: real `concord proxy --store` processes, fed from the store (pools, health
// results, instances), each on its own loopback port. Restarting one is a SIGTERM (it drains and
// deregisters), then a fresh start; the restart window lasts until it answers again.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.ts';

const ENTRY = fileURLToPath(new URL(`../../cli/entry.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
/** A proxy that has not exited this long after SIGTERM is killed. */
const STOP_GRACE_MS = 5_000;

export interface ProxyProcessOptions {
  name: string;
  /** etcd://host:port,... */
  storeUrl: string;
  workDir: string;
  onEvent: (line: string) => void;
}

export class ProxyProcess {
  readonly name: string;
  readonly port: number;
  private readonly adminPort: number;
  private readonly options: ProxyProcessOptions;
  private readonly log: WriteStream;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(options: ProxyProcessOptions, port: number, adminPort: number) {
    this.options = options;
    this.name = options.name;
    this.port = port;
    this.adminPort = adminPort;
    this.log = createWriteStream(join(options.workDir, `${options.name}.log`), { flags: 'a' });
  }

  static async create(options: ProxyProcessOptions): Promise<ProxyProcess> {
    return new ProxyProcess(options, await freePort(), await freePort());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): void {
    const child = spawn(process.execPath, [
      ENTRY, 'proxy', '--store', this.options.storeUrl, '--name', this.name,
      '--listen', `127.0.0.1:${this.port}`, '--admin', `127.0.0.1:${this.adminPort}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.log.write(`--- process exited (code ${code}, signal ${signal}) ---\n`);
      resolve();
    }));
    this.child = child;
    this.options.onEvent(`start ${this.name} (pid ${child.pid})`);
  }

  /** SIGTERM (drain), SIGKILL after STOP_GRACE_MS. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    this.options.onEvent(`stop ${this.name} (SIGTERM)`);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves once the proxy answers an HTTP request (any status); throws after timeoutMs. */
  async waitServing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await answers(this.port)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${this.name} did not answer on 127.0.0.1:${this.port} within ${timeoutMs} ms (see ${this.name}.log)`);
  }

  closeLog(): void {
    this.log.end();
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 1_000 }, (response) => {
      response.resume();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
    probe.on('timeout', () => probe.destroy());
    probe.end();
  });
}
