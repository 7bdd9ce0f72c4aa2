// The process provider with real example apps on loopback: ports from the range, readiness from
// whoever checks health, idempotent request ids, fencing, graceful and forced stops, crashes, and
// no orphans when the owner dies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ProcessProvider, type ProcessProviderOptions } from '../../src/autoscale/providers/process-provider.ts';
import { ProviderError } from '../../src/autoscale/providers/provider.ts';
import { stopProcess } from '../support/child-processes.ts';
import { healthy, httpGet, isAlive, waitFor } from './processes.ts';

const APP = fileURLToPath(new URL('../../examples/app/server.mjs', import.meta.url));
const OWNER = fileURLToPath(new URL('./fixtures/provider-owner.ts', import.meta.url));

/**
 * A port range below the kernel's ephemeral range (where outgoing connections take ports),
 * different for each test process and each call, so parallel test files do not meet.
 */
let nextRangeStart = 20_000 + (process.pid % 500) * 20;
function portRange(size: number): string {
  const low = nextRangeStart;
  nextRangeStart += size;
  return `${low}-${low + size - 1}`;
}

async function provider(t: { after: (fn: () => Promise<void>) => void }, overrides: Partial<ProcessProviderOptions> = {}): Promise<ProcessProvider> {
  const created = new ProcessProvider({
    pool: 'web',
    command: `${process.execPath} ${APP} --port {port} --service-time-ms 5`,
    portRange: portRange(20),
    host: '127.0.0.1',
    stopGraceMs: 3_000,
    ...overrides,
  });
  t.after(() => created.close());
  return created;
}

const launch = (p: ProcessProvider, requestId: string, fencingToken = 1n, launchVersion = 'v1') => p.launch({ requestId, launchVersion, fencingToken });

function refusedWith(code: string) {
  return (error: unknown) => error instanceof ProviderError && error.code === code;
}

test('launches serve on their own ports from the range; readiness comes from whoever checks health', async (t) => {
  const p = await provider(t);
  const a = await launch(p, 'web/1/launch/0');
  const b = await launch(p, 'web/1/launch/1');
  assert.notEqual(a.address, b.address);
  const [low, high] = (p as unknown as { options: ProcessProviderOptions }).options.portRange.split('-').map(Number) as [number, number];
  for (const record of [a, b]) {
    const port = Number(record.address.split(':')[1]);
    assert.ok(port >= low && port <= high);
  }
  assert.deepEqual((await p.list()).map((r) => [r.id, r.ready]), [[a.id, false], [b.id, false]]);
  const readyA = p.waitUntilReady(a.id, 10_000);
  await waitFor('a to answer its health check', () => healthy(a.address));
  p.reportReadiness(a.id, true);
  assert.equal(await readyA, true);
  assert.equal(p.isReady(a.id), true);
  assert.equal(await p.waitUntilReady(b.id, 50), false);
  assert.deepEqual((await p.list()).map((r) => r.ready), [true, false]);
  assert.equal((await httpGet(a.address, '/')).status, 200);
});

test('a repeated request id launches nothing new; a stale fencing token is refused; the log holds accepted actions only', async (t) => {
  const p = await provider(t);
  const first = await launch(p, 'web/7/launch/0', 5n);
  const again = await launch(p, 'web/7/launch/0', 5n);
  assert.deepEqual(again, first);
  assert.equal((await p.list()).length, 1);
  await assert.rejects(launch(p, 'web/8/launch/0', 4n), refusedWith('CONCORD_E_PROVIDER_STALE_FENCING_TOKEN'));
  await assert.rejects(p.terminate({ requestId: 'web/terminate/x', instanceId: first.id, fencingToken: 4n }), refusedWith('CONCORD_E_PROVIDER_STALE_FENCING_TOKEN'));
  assert.equal((await p.list()).length, 1);
  await launch(p, 'web/9/launch/0', 6n);
  assert.deepEqual(p.actionLog().map((entry) => [entry.action, entry.requestId, entry.fencingToken]), [['launch', 'web/7/launch/0', '5'], ['launch', 'web/9/launch/0', '6']]);
  assert.ok(p.events().some((event) => event.kind === 'refused' && /older than 5/.test(event.message)));
});

test('terminate stops the instance gracefully (SIGTERM) and is idempotent', async (t) => {
  const p = await provider(t);
  const record = await launch(p, 'r1');
  await waitFor('the instance to listen', () => healthy(record.address));
  const pid = p.pidOf(record.id)!;
  await p.terminate({ requestId: `web/terminate/${record.id}`, instanceId: record.id, fencingToken: 1n });
  assert.equal(isAlive(pid), false);
  assert.deepEqual(await p.list(), []);
  await p.terminate({ requestId: `web/terminate/${record.id}`, instanceId: record.id, fencingToken: 1n });
  await p.terminate({ requestId: 'another', instanceId: record.id, fencingToken: 1n });
  const stopped = p.events().filter((event) => event.kind === 'terminated');
  assert.equal(stopped.length, 1);
  assert.match(stopped[0]!.message, /stopped \(code 0\)/);
});

test('an instance that ignores SIGTERM is killed after stopGraceMs', async (t) => {
  const stubborn = `${process.execPath} -e "process.on('SIGTERM', () => {}); require('node:http').createServer((q, s) => s.end('ok')).listen({port}, '127.0.0.1')"`;
  const p = await provider(t, { command: stubborn, stopGraceMs: 300 });
  const record = await launch(p, 'r1');
  await waitFor('the stubborn instance to listen', () => healthy(record.address));
  await p.terminate({ requestId: 't1', instanceId: record.id, fencingToken: 1n });
  assert.deepEqual(await p.list(), []);
  assert.deepEqual(p.events().filter((e) => e.kind === 'killed' || e.kind === 'terminated').map((e) => e.kind), ['killed', 'terminated']);
  assert.match(p.events().find((e) => e.kind === 'terminated')!.message, /signal SIGKILL/);
});

test('an instance that exits by itself leaves the list, with an event quoting its last output', async (t) => {
  const crashing = `${process.execPath} -e "console.error('boom: cannot open database'); process.exit(3)" {port}`;
  const p = await provider(t, { command: crashing });
  const record = await launch(p, 'r1');
  await waitFor('the exit to be noticed', async () => (await p.list()).length === 0);
  const exited = p.events().find((e) => e.kind === 'exited')!;
  assert.equal(exited.instanceId, record.id);
  assert.match(exited.message, /exited by itself \(code 3\); last output: boom: cannot open database/);
});

test('ports in use are skipped, and an exhausted range is refused with what to do', async (t) => {
  const range = portRange(3);
  const [low] = range.split('-').map(Number) as [number];
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(low, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const p = await provider(t, { portRange: range });
  const record = await launch(p, 'r1');
  assert.notEqual(record.address, `127.0.0.1:${low}`);
  const single = await provider(t, { portRange: `${low}-${low}` });
  await assert.rejects(launch(single, 'r2'), (error: unknown) => refusedWith('CONCORD_E_PROVIDER_NO_FREE_PORT')(error) && /widen portRange or lower max/.test((error as Error).message));
});

test('a command that cannot start is a coded launch failure; a failed request id may be retried', async (t) => {
  const p = await provider(t, { command: '/nonexistent/concord-test-binary --port {port}' });
  // Under setpriv the exec failure shows as an early exit; without it, as a spawn error.
  const outcome = await launch(p, 'r1').then((record) => record, (error: unknown) => error);
  if (outcome instanceof ProviderError) {
    assert.equal(outcome.code, 'CONCORD_E_PROVIDER_LAUNCH_FAILED');
  } else {
    await waitFor('the failed exec to be noticed', async () => (await p.list()).length === 0);
    assert.ok(p.events().some((event) => event.kind === 'exited'));
  }
  assert.throws(() => new ProcessProvider({ pool: 'x', command: 'app --port {prot}', portRange: '9000-9001', host: '127.0.0.1', stopGraceMs: 1 }), /uses \{prot\}/);
  assert.throws(() => new ProcessProvider({ pool: 'x', command: 'app', portRange: '9001-9000', host: '127.0.0.1', stopGraceMs: 1 }), /portRange '9001-9000'/);
});

test('no orphans: when the owner is killed with SIGKILL, its instances die with it', async () => {
  const owner = spawn(process.execPath, [OWNER, portRange(10)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pids: number[] = [];
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      owner.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(text.split('\n')[0]!);
      });
      owner.once('exit', () => reject(new Error('the owner exited before reporting its instances')));
    });
    pids = (JSON.parse(line) as { pids: number[] }).pids;
    assert.equal(pids.length, 2);
    assert.ok(pids.every(isAlive));
    owner.kill('SIGKILL');
    await waitFor('both instances to die with their owner', () => pids.every((pid) => !isAlive(pid)), 5_000);
  } finally {
    await stopProcess(owner, { graceMs: 1_000, killWaitMs: 1_000 });
    for (const pid of pids.filter(isAlive)) process.kill(pid, 'SIGKILL'); // only if the test failed
  }
});

test('close stops every instance', async () => {
  const p = new ProcessProvider({ pool: 'web', command: `${process.execPath} ${APP} --port {port}`, portRange: portRange(10), host: '127.0.0.1', stopGraceMs: 3_000 });
  const records = [await launch(p, 'a'), await launch(p, 'b')];
  const pids = records.map((r) => p.pidOf(r.id)!);
  await p.close();
  assert.ok(pids.every((pid) => !isAlive(pid)));
  await assert.rejects(launch(p, 'c'), refusedWith('CONCORD_E_PROVIDER_CLOSED'));
});
