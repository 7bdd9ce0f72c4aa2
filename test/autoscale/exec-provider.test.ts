// The exec provider against a fake operator tool (fixtures/fake-cloud.mjs): launch, list and
// terminate through commands with JSON output; placeholders and environment; retries, timeouts and
// output validation, where a failing command is an event and a coded error, never a crash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecProvider, type ExecProviderOptions } from '../../src/autoscale/providers/exec-provider.ts';
import { ProviderError } from '../../src/autoscale/providers/provider.ts';

const CLOUD = fileURLToPath(new URL('./fixtures/fake-cloud.mjs', import.meta.url));
const tool = (args: string) => `${process.execPath} ${CLOUD} ${args}`;

function setup(t: { after: (fn: () => void) => void }, overrides: Partial<ExecProviderOptions> = {}): { provider: ExecProvider; state: () => { calls: number; env: Record<string, string>[] } } {
  const dir = mkdtempSync(join(tmpdir(), 'concord-exec-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const statePath = join(dir, 'cloud.json');
  const provider = new ExecProvider({
    pool: 'web',
    launch: tool('launch'),
    terminate: tool('terminate {instanceId}'),
    list: tool('list'),
    env: { CLOUD_STATE: statePath },
    timeoutMs: 5_000,
    retries: 2,
    retryBackoffMs: 10,
    maxOutputBytes: 10_000,
    ...overrides,
  });
  return { provider, state: () => JSON.parse(readFileSync(statePath, 'utf8')) };
}

const failsWith = (code: string, pattern: RegExp) => (error: unknown) => error instanceof ProviderError && error.code === code && pattern.test(error.message);

test('launch, list and terminate through the operator commands, with placeholders and environment', async (t) => {
  const { provider, state } = setup(t);
  const record = await provider.launch({ requestId: 'web/3/launch/0', launchVersion: 'v7', fencingToken: 42n });
  assert.deepEqual([record.id, record.address, record.launchVersion, record.ready], ['i-1', '10.0.0.1:8080', 'v7', false]);
  assert.deepEqual((await provider.list()).map((r) => [r.id, r.address, r.launchVersion]), [['i-1', '10.0.0.1:8080', 'v7']]);
  provider.reportReadiness('i-1', true);
  assert.equal((await provider.list())[0]!.ready, true);
  await provider.terminate({ requestId: 'web/terminate/i-1', instanceId: 'i-1', fencingToken: 42n });
  assert.deepEqual(await provider.list(), []);
  const calls = state().env;
  assert.deepEqual(calls[0], { command: 'launch', request: 'web/3/launch/0', instance: '', token: '42', pool: 'web', version: 'v7' });
  assert.deepEqual(calls.find((c) => c.command === 'terminate'), { command: 'terminate', argument: 'i-1', request: 'web/terminate/i-1', instance: 'i-1', token: '42', pool: 'web', version: 'v7' });
});

test('idempotent request ids and fencing, as for every provider', async (t) => {
  const { provider, state } = setup(t);
  const first = await provider.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 3n });
  assert.deepEqual(await provider.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 3n }), first);
  assert.equal(state().calls, 1);
  await assert.rejects(provider.launch({ requestId: 'r2', launchVersion: 'v1', fencingToken: 2n }), failsWith('CONCORD_E_PROVIDER_STALE_FENCING_TOKEN', /older than 3/));
  assert.equal(state().calls, 1);
  assert.deepEqual(provider.actionLog().map((e) => [e.action, e.requestId, e.instanceId, e.fencingToken]), [['launch', 'r1', 'i-1', '3']]);
});

test('a failing command is retried with backoff, each failure an event, then a coded error', async (t) => {
  const { provider, state } = setup(t, { launch: tool('fail') });
  await assert.rejects(provider.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 1n }), failsWith('CONCORD_E_PROVIDER_COMMAND_FAILED', /failed 3 times; last: .*exited with code 3: permission denied: check your credentials/));
  assert.equal(state().calls, 3);
  const failures = provider.events().filter((e) => e.kind === 'command-failed').map((e) => e.message);
  assert.equal(failures.length, 3);
  assert.match(failures[0]!, /attempt 1 of 3/);
});

test('a transient failure is retried until it succeeds', async (t) => {
  const { provider, state } = setup(t, { launch: tool('fail-first 1') });
  const record = await provider.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 1n });
  assert.equal(record.id, 'i-1');
  assert.equal(state().calls, 2);
  assert.equal(provider.events().filter((e) => e.kind === 'command-failed').length, 1);
});

test('a command past its timeout is killed and reported', async (t) => {
  const { provider } = setup(t, { launch: tool('sleep'), timeoutMs: 300, retries: 0 });
  await assert.rejects(provider.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 1n }), failsWith('CONCORD_E_PROVIDER_COMMAND_TIMEOUT', /ran past timeoutMs \(300 ms\) and was killed/));
});

test('output that is not the documented JSON is refused, naming what is wrong', async (t) => {
  const garbage = setup(t, { launch: tool('garbage') }).provider;
  await assert.rejects(garbage.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 1n }), failsWith('CONCORD_E_PROVIDER_OUTPUT_INVALID', /printed no JSON \(got 'Launched instance i-7 at 10.0.0.7'\)/));
  const wrong = setup(t, { launch: tool('wrong-shape') }).provider;
  await assert.rejects(wrong.launch({ requestId: 'r1', launchVersion: 'v1', fencingToken: 1n }), failsWith('CONCORD_E_PROVIDER_OUTPUT_INVALID', /id: .*; address: address must be 'host:port'/));
  const huge = setup(t, { list: tool('huge'), retries: 0 }).provider;
  await assert.rejects(huge.list(), failsWith('CONCORD_E_PROVIDER_OUTPUT_TOO_LARGE', /more than maxOutputBytes \(10000\)/));
  const missing = setup(t, { list: '/nonexistent/operator-tool list', retries: 0 }).provider;
  await assert.rejects(missing.list(), failsWith('CONCORD_E_PROVIDER_COMMAND_FAILED', /cannot run '\/nonexistent\/operator-tool'/));
});

test('templates are checked up front, and values cannot smuggle arguments', async (t) => {
  assert.throws(() => setup(t, { launch: tool('launch {requestID}') }), /uses \{requestID\}/);
  const { provider } = setup(t);
  await assert.rejects(provider.launch({ requestId: 'r1; rm -rf /', launchVersion: 'v1', fencingToken: 1n }), failsWith('CONCORD_E_PROVIDER_BAD_TEMPLATE', /characters a command argument may not get/));
});
