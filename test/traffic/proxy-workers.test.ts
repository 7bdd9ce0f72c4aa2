// `concord proxy` with several worker processes: they share the listen port, take their health
// verdicts from the primary's checks, are counted together on the primary's admin port, and all
// exit on SIGTERM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPorts, stopProcess } from '../support/child-processes.ts';
import { eventually, startBackend } from './proxy-harness.ts';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));

function childrenOf(pid: number): number[] {
  const result = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return result.stdout.split('\n').map((line) => Number(line.trim())).filter((value) => value > 0);
}

test('two workers share the port, follow the primary\'s health checks, and stop on SIGTERM', async () => {
  let healthy = true;
  const a = await startBackend((req, res) => res.end(req.url === '/healthz' ? (healthy ? 'ok' : 'sick') : 'a'));
  const b = await startBackend((req, res) => res.end(req.url === '/healthz' ? 'ok' : 'b'));
  const [port, adminPort] = await freeLoopbackPorts(2);
  const dir = mkdtempSync(join(tmpdir(), 'concord-workers-'));
  const config = join(dir, 'proxy.yaml');
  writeFileSync(config, JSON.stringify({
    proxy: { listen: `127.0.0.1:${port}`, admin: `127.0.0.1:${adminPort}`, workers: 2, accessLog: false },
    pools: [{ name: 'web', balance: 'round-robin', backends: [{ address: a.address }, { address: b.address }], health: { http: { path: '/healthz', expectBody: 'ok' }, intervalMs: 200, timeoutMs: 100, rise: 1, fall: 1 } }],
  }));
  const primary = spawn(process.execPath, [ENTRY, 'proxy', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  primary.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  primary.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    assert.ok(await eventually(() => output.includes('proxy started'), 15_000), `the proxy started: ${output}`);
    const workers = childrenOf(primary.pid!);
    assert.equal(workers.length, 2, 'two worker processes');
    const bodies = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const body = await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text();
      bodies.set(body, (bodies.get(body) ?? 0) + 1);
    }
    assert.ok((bodies.get('a') ?? 0) > 20 && (bodies.get('b') ?? 0) > 20, JSON.stringify([...bodies]));
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const served = [...metrics.matchAll(/concord_proxy_requests_total\{[^}]*status="200"\} (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
    assert.equal(served, 100, 'the primary sums both workers\' counters');
    healthy = false;
    assert.ok(await eventually(async () => ((await (await fetch(`http://127.0.0.1:${adminPort}/events`)).json()) as { events: { kind: string }[] }).events.some((event) => event.kind === 'marked-down'), 8000));
    // The verdict reaches each worker over IPC, a moment later on a loaded machine: wait for a streak
    // of answers from b (connections spread over both workers), then require every answer to be b.
    let streak = 0;
    assert.ok(await eventually(async () => {
      streak = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text()) === 'b' ? streak + 1 : 0;
      return streak >= 20;
    }, 10_000), 'the workers learn the verdict');
    for (let i = 0; i < 40; i++) {
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text(), 'b', 'every worker stopped sending to the sick backend');
    }
    const exited = new Promise<number | null>((resolve) => primary.once('exit', (code) => resolve(code)));
    primary.kill('SIGTERM');
    assert.equal(await exited, 0, `the primary stops cleanly: ${output.slice(-2000)}`);
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
  } finally {
    await stopProcess(primary, { graceMs: 2000, killWaitMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
    await a.close();
    await b.close();
  }
});
