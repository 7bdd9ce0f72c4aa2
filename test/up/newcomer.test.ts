// The README's first command, run as a newcomer runs it: a copy of the repository as a clean clone
// has it (the tracked files only), `npm ci`, then `npx concord up` in the background with its
// defaults (proxy 127.0.0.1:8080, dashboard 127.0.0.1:7070, store 127.0.0.1:2379). Within a
// minute requests through the proxy succeed; the dashboard answers and works in headless Chromium
// (live data, the request counter rises, the freeze button writes the documented store key, read
// back with etcdctl; the drain button); etcdctl works against the printed endpoint; `concord events`
// shows the backends becoming healthy; Ctrl-C stops everything and leaves no process behind.
//
// No other test uses these default ports; this one file runs `up` once and checks everything on it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CHROMIUM_PATH, checkDashboard, launchChromium, type ChromiumSession } from '../ui/dashboard-driver.ts';

const run = promisify(execFile);
const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** "Within a minute" of starting, with slack for a shared, loaded machine. */
const UP_WITHIN_MS = 90_000;
const STOP_WITHIN_MS = 45_000;

let workDir: string;
let clone: string;
let up: ChildProcess | undefined;
let output = '';
let chromium: ChromiumSession | undefined;

/** What `up` printed: where everything is. */
let printed: { proxyUrl: string; dashboardUrl: string; storeEndpoint: string };

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'concord-newcomer-'));
  clone = join(workDir, 'concord');
  copyTrackedFiles(repositoryRoot, clone);
  await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
});

after(async () => {
  await chromium?.close();
  if (up !== undefined && up.exitCode === null && up.signalCode === null) {
    try {
      process.kill(-up.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const pid of processesUnder(workDir)) killQuietly(pid);
  rmSync(workDir, { recursive: true, force: true });
});

test('npx concord up: the proxy, the dashboard, etcdctl and the timeline work within a minute; Ctrl-C leaves nothing behind', { timeout: 600_000 }, async () => {
  up = spawn('npx', ['concord', 'up'], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
  up.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  up.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const startedMs = Date.now();

  printed = await waitFor('the addresses `up` prints', UP_WITHIN_MS, () => {
    const proxyUrl = /proxy\s+(http:\/\/\S+)/.exec(output)?.[1];
    const dashboardUrl = /dashboard\s+(http:\/\/\S+)/.exec(output)?.[1];
    const storeEndpoint = /store\s+(\d+\.\d+\.\d+\.\d+:\d+)/.exec(output)?.[1];
    return proxyUrl && dashboardUrl && storeEndpoint ? { proxyUrl, dashboardUrl, storeEndpoint } : undefined;
  });
  assert.deepEqual(printed, { proxyUrl: 'http://127.0.0.1:8080', dashboardUrl: 'http://127.0.0.1:7070/', storeEndpoint: '127.0.0.1:2379' }, 'the documented default addresses');

  // Requests through the proxy succeed, served by the example app's instances.
  const greeting = await waitFor('a request through the proxy to succeed', Math.max(1_000, UP_WITHIN_MS - (Date.now() - startedMs)), async () => {
    const response = await fetch(`${printed.proxyUrl}/`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    return response?.status === 200 ? response.text() : undefined;
  });
  assert.match(greeting, /^hello from \d+/);

  // The dashboard answers.
  const page = await fetch(printed.dashboardUrl);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);

  // etcdctl against the printed endpoint.
  const members = await etcdctl(['member', 'list']);
  assert.match(members, /, started, up, http:\/\/127\.0\.0\.1:2380, http:\/\/127\.0\.0\.1:2379/);
  assert.match(await etcdctl(['get', '/concord/config', '--print-value-only']), /name: web/, 'the applied configuration is in the store');

  // `concord events` shows the backends becoming healthy.
  const events = await waitFor('two instance-ready events', 60_000, async () => {
    const { stdout } = await run('npx', ['concord', 'events', '--since', '10m', '--json'], { cwd: clone, timeout: 60_000 });
    const { events: timeline } = JSON.parse(stdout) as { events: { kind: string; pool?: string }[] };
    const ready = timeline.filter((event) => event.kind === 'instance-ready' && event.pool === 'web');
    return ready.length >= 2 ? timeline : undefined;
  });
  assert.ok(events.some((event) => event.kind === 'config-applied'), 'the timeline starts with the applied configuration');

  // The dashboard in Chromium, against the real thing.
  assert.ok(existsSync(CHROMIUM_PATH), `${CHROMIUM_PATH} is missing: install Debian's chromium (bash scripts/install-test-deps.sh)`);
  chromium = await launchChromium();
  const overview = await (await fetch(`${printed.dashboardUrl}api/overview`)).json() as { pools: { backends: { address: string; state: string }[] }[] };
  const backend = overview.pools[0]!.backends.find((candidate) => candidate.state === 'healthy')!;
  const screenshot = await checkDashboard(chromium.context, {
    baseUrl: printed.dashboardUrl.replace(/\/$/, ''),
    outputDir: outputDir(),
    member: { name: 'up', isLeader: true },
    backend: { pool: 'web', address: backend.address },
    eventText: /config|launch|ready/i,
    addRequests: async () => {
      const count = 20;
      for (let i = 0; i < count; i += 1) {
        const response = await fetch(`${printed.proxyUrl}/`);
        await response.text();
        assert.equal(response.status, 200);
      }
      return count;
    },
    confirmFrozen: async (reason) => {
      const value = await etcdctl(['get', '/concord/autoscale/freeze', '--print-value-only']);
      assert.ok(value.includes(reason), `the freeze key holds the reason given on the page: ${value}`);
    },
    confirmDrained: async (pool, address) => {
      const keys = await etcdctl(['get', '--prefix', `/concord/drains/${pool}/`, '--keys-only']);
      assert.ok(keys.includes(address), `a drain key for ${address}: ${keys}`);
    },
    waitMs: 30_000,
  });
  assert.ok(existsSync(screenshot));

  // Ctrl-C: everything stops, in order, and nothing is left running.
  process.kill(-up.pid!, 'SIGINT');
  // npx (npm exec) passes the Ctrl-C on to concord, waits for it, then ends itself by the same signal.
  const ended = await waitFor('`up` to exit after Ctrl-C', STOP_WITHIN_MS, () => (up!.exitCode !== null || up!.signalCode !== null ? { code: up!.exitCode, signal: up!.signalCode } : undefined));
  assert.ok(ended.code === 0 || ended.signal === 'SIGINT', `up ended with ${JSON.stringify(ended)}:\n${output.slice(-3000)}`);
  assert.match(output, /stopped; the store's data stays in/, 'concord itself stopped in order');
  assert.doesNotMatch(output, /error while stopping/);
  const left = await waitFor('no process left behind', 10_000, () => (processesUnder(workDir).length === 0 ? [] : undefined)).catch(() => processesUnder(workDir));
  assert.deepEqual(left, [], 'processes still running from the clone');
});

/** The files a clean clone has: the tracked ones, as they are in the working tree. */
function copyTrackedFiles(from: string, to: string): void {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: from, maxBuffer: 64 * 1024 * 1024 }).toString().split('\0').filter(Boolean);
  for (const file of files) {
    const source = join(from, file);
    if (!existsSync(source)) continue; // deleted in the working tree
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(source, join(to, file));
  }
}

async function etcdctl(args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', ['--endpoints', printed.storeEndpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 });
  return stdout;
}

/** PIDs of processes whose working directory or command line is under `dir`. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function outputDir(): string {
  const base = process.env.CONCORD_TEST_OUTPUT_DIR;
  const dir = base !== undefined && base !== '' ? join(base, 'newcomer') : join(workDir, 'output');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Polls `probe` (every 250 ms) until it returns a value; fails after `timeoutMs` with what it waited for and `up`'s output. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined && value !== null && (value as unknown) !== '') return value;
    if (up !== undefined && (up.exitCode !== null || up.signalCode !== null) && what !== '`up` to exit after Ctrl-C') throw new Error(`waiting for ${what}: up exited with ${up.exitCode}:\n${output.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; up's output:\n${output.slice(-3000)}`);
    await new Promise((resolvePause) => setTimeout(resolvePause, 250));
  }
}
