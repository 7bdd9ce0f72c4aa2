// The example app the process provider starts: health endpoint, workers and a queue so load
// matters, and a graceful stop.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPorts, stopProcess } from '../support/child-processes.ts';
import { healthy, httpGet, waitFor } from './processes.ts';

const APP = fileURLToPath(new URL('../../examples/app/server.mjs', import.meta.url));

async function startApp(args: string[]): Promise<{ child: ChildProcess; address: string }> {
  const [port] = await freeLoopbackPorts(1);
  const child = spawn(process.execPath, [APP, '--port', String(port), ...args], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  await waitFor('the example app to listen', () => healthy(address));
  return { child, address };
}

const stats = async (address: string) => JSON.parse((await httpGet(address, '/stats')).body) as { inflight: number; queued: number; served: number; rejected: number };

test('health, a greeting, and SIGUSR2 toggling health', async (t) => {
  const { child, address } = await startApp([]);
  t.after(() => stopProcess(child, { graceMs: 2_000, killWaitMs: 2_000 }));
  assert.deepEqual(await httpGet(address, '/healthz').then((a) => [a.status, a.body]), [200, 'ok']);
  const hello = await httpGet(address, '/anything');
  assert.equal(hello.status, 200);
  assert.equal(hello.body, `hello from ${address.split(':')[1]}\n`);
  child.kill('SIGUSR2');
  await waitFor('health to fail', async () => (await httpGet(address, '/healthz')).status === 503);
  child.kill('SIGUSR2');
  await waitFor('health to return', () => healthy(address));
});

test('requests beyond the worker count queue, and beyond the queue limit are refused with 503', async (t) => {
  const { child, address } = await startApp(['--concurrency', '2', '--max-queue', '2', '--service-time-ms', '800']);
  t.after(() => stopProcess(child, { graceMs: 2_000, killWaitMs: 2_000 }));
  const answers = Array.from({ length: 4 }, () => httpGet(address, '/work'));
  await waitFor('2 in flight and 2 queued', async () => {
    const s = await stats(address);
    return s.inflight === 2 && s.queued === 2;
  });
  assert.equal((await httpGet(address, '/fifth')).status, 503);
  assert.deepEqual((await Promise.all(answers)).map((a) => a.status), [200, 200, 200, 200]);
  assert.deepEqual(await stats(address), { inflight: 0, queued: 0, served: 4, rejected: 1 });
});

test('SIGTERM lets the request in flight finish, then exits 0', async () => {
  const { child, address } = await startApp(['--service-time-ms', '600']);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const answer = httpGet(address, '/slow');
  await waitFor('the request to be in flight', async () => (await stats(address)).inflight === 1);
  child.kill('SIGTERM');
  assert.equal((await answer).status, 200);
  assert.equal(await exited, 0);
});

test('bad arguments exit with code 2 and the usage', async () => {
  const child = spawn(process.execPath, [APP, '--port', 'x'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 2);
  assert.match(stderr, /--port must be a whole number/);
});

test('--faults 1: POST /fault/unhealthy toggles health and POST /fault/crash exits 1; without it the paths are ordinary requests', async (t) => {
  const { child, address } = await startApp(['--faults', '1']);
  t.after(() => stopProcess(child, { graceMs: 2_000, killWaitMs: 2_000 }));
  const [host, port] = address.split(':');
  const post = (path: string) => fetch(`http://${host}:${port}${path}`, { method: 'POST' }).then(async (response) => [response.status, await response.text()]);
  assert.deepEqual(await post('/fault/unhealthy'), [200, 'unhealthy\n']);
  assert.equal((await httpGet(address, '/healthz')).status, 503);
  assert.deepEqual(await post('/fault/unhealthy'), [200, 'healthy\n']);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  assert.deepEqual(await post('/fault/crash'), [202, 'crashing\n']);
  assert.equal(await exited, 1);

  const plain = await startApp([]);
  t.after(() => stopProcess(plain.child, { graceMs: 2_000, killWaitMs: 2_000 }));
  const [plainHost, plainPort] = plain.address.split(':');
  const response = await fetch(`http://${plainHost}:${plainPort}/fault/crash`, { method: 'POST' });
  assert.equal(response.status, 200, 'without --faults a fault path is served like any other');
  assert.equal(plain.child.exitCode, null);
});
