// The proxies the proxy benchmarks run, each pinned to one core: HAProxy 2.6 (one thread, health
// checks on, maxconn 8000), nginx (one worker, keepalive upstream), Concord (one worker), and a
// naive Node proxy; plus the nginx backends, pinned to the other core. Each start returns once the
// proxy answers, and a stop that kills it.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROXY_SYSTEMS = ['direct', 'haproxy', 'nginx', 'concord', 'naive'] as const;
export type ProxySystem = (typeof PROXY_SYSTEMS)[number];

const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface Running {
  readonly port: number;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export function pinned(core: number, command: string, args: string[], logPath: string): ChildProcess {
  const child = spawn('taskset', ['-c', String(core), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => log.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => log.push(chunk));
  child.on('exit', () => writeFileSync(logPath, Buffer.concat(log)));
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000))]);
  if (!graceful) {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function waitForHttp(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before answering on port ${port}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing answered 200 on port ${port} within ${timeoutMs} ms`);
}

/** nginx serving a 6-byte body on each backend port, one worker, on `core`. */
export async function startNginxBackends(ports: number[], core: number, dir: string): Promise<Running> {
  mkdirSync(dir, { recursive: true });
  const config = `worker_processes 1;\ndaemon off;\npid ${dir}/nginx-backends.pid;\nerror_log ${dir}/nginx-backends.error.log;\n` +
    `events { worker_connections 8192; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n` +
    ports.map((port) => `  server { listen 127.0.0.1:${port} reuseport; location / { return 200 "hello\\n"; } }\n`).join('') + '}\n';
  writeFileSync(join(dir, 'nginx-backends.conf'), config);
  const child = pinned(core, 'nginx', ['-c', join(dir, 'nginx-backends.conf')], join(dir, 'nginx-backends.log'));
  for (const port of ports) await waitForHttp(port, 5000, child);
  return { port: ports[0]!, pid: child.pid, stop: () => stopChild(child) };
}

export interface ProxyStartOptions {
  port: number;
  adminPort: number;
  backendPorts: number[];
  core: number;
  dir: string;
  /** haproxy: roundrobin or leastconn; concord: the pool's balance. */
  balance?: string;
  /** Concord's extra pool keys (retries, health...). */
  concordPool?: Record<string, unknown>;
  /** Upstream response timeout in seconds for HAProxy and nginx (the stall benchmark sets it). */
  serverTimeoutSeconds?: number;
}

export async function startProxySystem(system: Exclude<ProxySystem, 'direct'>, options: ProxyStartOptions): Promise<Running> {
  mkdirSync(options.dir, { recursive: true });
  const log = join(options.dir, `${system}-${options.port}.log`);
  let child: ChildProcess;
  switch (system) {
    case 'haproxy': {
      const serverTimeout = options.serverTimeoutSeconds ?? 30;
      const config = `global\n  nbthread 1\n  maxconn 8000\n  log stderr local0 err\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server ${serverTimeout}s\n  option http-keep-alive\n` +
        `frontend fe\n  bind 127.0.0.1:${options.port}\n  default_backend be\nbackend be\n  balance ${options.balance ?? 'roundrobin'}\n  http-reuse always\n  option httpchk GET /\n` +
        options.backendPorts.map((port, index) => `  server b${index} 127.0.0.1:${port} check inter 1s\n`).join('');
      writeFileSync(join(options.dir, `haproxy-${options.port}.cfg`), config);
      child = pinned(options.core, 'haproxy', ['-db', '-f', join(options.dir, `haproxy-${options.port}.cfg`)], log);
      break;
    }
    case 'nginx': {
      const serverTimeout = options.serverTimeoutSeconds ?? 30;
      const config = `worker_processes 1;\ndaemon off;\npid ${options.dir}/nginx-proxy-${options.port}.pid;\nerror_log ${options.dir}/nginx-proxy.error.log;\n` +
        `events { worker_connections 8192; }\nhttp {\n  access_log off;\n  keepalive_requests 1000000;\n  upstream be {\n` +
        options.backendPorts.map((port) => `    server 127.0.0.1:${port};\n`).join('') + `    keepalive 128;\n  }\n` +
        `  server {\n    listen 127.0.0.1:${options.port};\n    location / {\n      proxy_pass http://be;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_read_timeout ${serverTimeout}s;\n    }\n  }\n}\n`;
      writeFileSync(join(options.dir, `nginx-proxy-${options.port}.conf`), config);
      child = pinned(options.core, 'nginx', ['-c', join(options.dir, `nginx-proxy-${options.port}.conf`)], log);
      break;
    }
    case 'concord': {
      const pool = {
        name: 'bench', balance: options.balance ?? 'p2c',
        backends: options.backendPorts.map((port) => ({ address: `127.0.0.1:${port}` })),
        health: { http: { path: '/' }, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 },
        ...options.concordPool,
      };
      const config = { proxy: { listen: `127.0.0.1:${options.port}`, admin: `127.0.0.1:${options.adminPort}`, accessLog: false }, pools: [pool] };
      const path = join(options.dir, `concord-${options.port}.yaml`);
      writeFileSync(path, JSON.stringify(config, null, 2)); // JSON is YAML
      child = pinned(options.core, process.execPath, [join(REPO, 'src/cli/entry.ts'), 'proxy', '--config', path], log);
      break;
    }
    case 'naive':
      child = pinned(options.core, process.execPath, [join(REPO, 'bench/naive-proxy.ts'), String(options.port), ...options.backendPorts.map(String)], log);
      break;
  }
  await waitForHttp(options.port, 10_000, child);
  return { port: options.port, pid: child.pid, stop: () => stopChild(child) };
}
