// The operators' commands, run as the real CLI (in this process) against a real store:
// `concord status`, `concord events`, `concord report`, `concord pool list|drain|undrain` and
// `concord member list|add|remove|promote`, with their exit codes, --json output and one-line
// errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventTimeline, type TimelineEvent } from '../../src/control/events.ts';
import type { Postmortem } from '../../src/control/postmortem.ts';
import { drainKey } from '../../src/control/store-keys.ts';
import type { Overview } from '../../src/ui/api-types.ts';
import { startTestStore, storeClient } from '../autoscale/controller-harness.ts';
import { eventually } from '../traffic/proxy-harness.ts';
import { runCli } from '../support/cli-run.ts';
import { startPlaneStack } from './plane-stack.ts';

test('concord status, pool list|drain|undrain and events against a running cluster', async (t) => {
  const stack = await startPlaneStack();
  t.after(() => stack.stop());
  const { admin, backend, proxyUrl } = stack;
  const store = ['--store', stack.store.endpoint];

  // Healthy: exit 0 and "All is well" once the shared checker published the verdict.
  let status = await runCli(['status', ...store]);
  assert.ok(await eventually(async () => {
    status = await runCli(['status', ...store]);
    return status.code === 0;
  }, 10_000), `status settles to exit 0: ${status.stdout}${status.stderr}`);
  assert.match(status.stdout, /Store: 1 member\(s\), leader store/);
  assert.match(status.stdout, /Control plane: 1 member\(s\): member-a \(http:\/\/127\.0\.0\.1:\d+\)/);
  assert.match(status.stdout, /Proxies: 1\n {2}proxy-1/);
  assert.match(status.stdout, new RegExp(`Pool web \\(p2c\\): 1/1 healthy\\n {2}${backend.address} {2}healthy`));
  assert.match(status.stdout, /All is well\./);
  for (let i = 0; i < 5; i++) await fetch(`${proxyUrl}/`, { signal: AbortSignal.timeout(5000) });
  type StatusJson = { overview: Overview; configRevision: string; controlMembers: { name: string }[]; concerns: string[] };
  let parsed: StatusJson | undefined;
  // The proxy's counters are read from its admin port, which updates its rates on a tick.
  assert.ok(await eventually(async () => {
    const json = await runCli(['status', ...store, '--json']);
    assert.equal(json.code, 0);
    parsed = JSON.parse(json.stdout) as StatusJson;
    return parsed.overview.proxies[0]!.requestsTotal >= 5;
  }, 5000), 'the proxies\' traffic is in the overview');
  assert.deepEqual(parsed!.concerns, []);
  assert.deepEqual(parsed!.controlMembers.map((member) => member.name), ['member-a']);
  assert.match(parsed!.configRevision, /^\d+$/);

  // pool list, then a drain: the key in the store, the proxies follow, status needs a look (exit 3).
  const list = await runCli(['pool', 'list', ...store]);
  assert.equal(list.code, 0);
  assert.match(list.stdout, new RegExp(`^web \\(p2c, shed fixed\\)\\n {2}${backend.address.replace(/\./g, '\\.')} +healthy`));
  const drained = await runCli(['pool', 'drain', 'web', backend.address, '--reason', 'kernel upgrade', '--by', 'bob', ...store]);
  assert.equal(drained.code, 0, drained.stderr);
  assert.match(drained.stdout, /^draining .* \(concord pool undrain web /);
  assert.deepEqual(JSON.parse((await admin.get(drainKey('web', backend.address)))!.value).by, 'bob');
  assert.ok(await eventually(async () => {
    status = await runCli(['status', ...store]);
    return status.code === 3 && /is (draining|drained)/.test(status.stdout);
  }, 5000), `status exits 3 and names the drained backend: ${status.stdout}`);
  assert.match(status.stdout, /drained by bob: kernel upgrade/);
  const listed = JSON.parse((await runCli(['pool', 'list', ...store, '--json'])).stdout) as { pools: { name: string; drains: { backend: string; by: string; reason: string }[] }[] };
  assert.deepEqual(listed.pools[0]!.drains.map((drain) => [drain.backend, drain.by, drain.reason]), [[backend.address, 'bob', 'kernel upgrade']]);
  const undrained = await runCli(['pool', 'undrain', 'web', backend.address, ...store]);
  assert.equal(undrained.code, 0);
  assert.equal(await admin.get(drainKey('web', backend.address)), undefined);

  // Mistakes: one line that says what to do, exit 2.
  const unknownBackend = await runCli(['pool', 'drain', 'web', '127.0.0.1:1', ...store]);
  assert.equal(unknownBackend.code, 2);
  assert.match(unknownBackend.stderr, /^concord pool drain: pool web has no backend 127\.0\.0\.1:1 \(backends: .+\)\n$/);
  const unknownPool = await runCli(['pool', 'drain', 'nope', backend.address, ...store]);
  assert.equal(unknownPool.code, 2);
  assert.match(unknownPool.stderr, /no pool named 'nope'/);

  // events: the drain and undrain just done, filtered by pool and kind; --json as stored.
  const events = await runCli(['events', '--since', '10m', '--pool', 'web', ...store]);
  assert.equal(events.code, 0);
  assert.match(events.stdout, /drain-requested +web +operator\/cli: .*bob drains it: kernel upgrade/);
  assert.match(events.stdout, /undrain-requested/);
  const kinds = JSON.parse((await runCli(['events', '--since', '10m', '--kind', 'drain-requested', '--json', ...store])).stdout) as { events: TimelineEvent[] };
  assert.deepEqual(kinds.events.map((event) => event.kind), ['drain-requested']);
  const badSince = await runCli(['events', '--since', 'yesterday-ish', ...store]);
  assert.equal(badSince.code, 2);
  assert.match(badSince.stderr, /--since takes an ISO time/);
});

test('concord report: failures with detection and traffic-moved times, panic and shedding, the autoscaler, operators', async (t) => {
  const testStore = await startTestStore();
  const store = storeClient(testStore.endpoint);
  t.after(async () => {
    store.close();
    await testStore.stop();
  });
  const t0 = Date.UTC(2025, 0, 7, 10, 0, 0);
  const health = new EventTimeline(store, 'member-a');
  const proxyA = new EventTimeline(store, 'proxy-a');
  const proxyB = new EventTimeline(store, 'proxy-b');
  const autoscaler = new EventTimeline(store, 'member-b');
  const cli = new EventTimeline(store, 'cli');
  const backendEvent = (atMs: number, kind: string, detail: string, data: Record<string, unknown>) => ({ atMs, kind, pool: 'web', message: `10.0.0.2:80: ${detail}`, data: { backend: '10.0.0.2:80', ...data } });
  await health.write([
    { source: 'health', ...backendEvent(t0 + 10_000, 'marked-down', 'status 500 (expected 200-299)', { cause: 'active:http', detectionMs: 1_500 }) },
    { source: 'health', ...backendEvent(t0 + 70_000, 'marked-up', 'status 200', { cause: 'active:http' }) },
  ]);
  // Two proxies act on the failure by themselves too (passive ejection), the later at +10.4 s.
  await proxyA.write([{ source: 'proxy', ...backendEvent(t0 + 10_200, 'ejected', '5 consecutive 5xx', { cause: 'passive:consecutive-5xx' }) }]);
  await proxyB.write([
    { source: 'proxy', ...backendEvent(t0 + 10_400, 'ejected', '5 consecutive 5xx', { cause: 'passive:consecutive-5xx' }) },
    { source: 'proxy', atMs: t0 + 20_000, kind: 'shed-started', pool: 'web', message: 'pool web: limit 40 reached', data: { backend: '*' } },
    { source: 'proxy', atMs: t0 + 50_000, kind: 'shed-stopped', pool: 'web', message: 'pool web: below the limit', data: { backend: '*' } },
  ]);
  await autoscaler.write([
    { source: 'autoscaler', atMs: t0 + 30_000, kind: 'decision', pool: 'web', message: 'desired 5 (current 3, recommended 5): launch x2' },
    { source: 'autoscaler', atMs: t0 + 30_100, kind: 'launch', pool: 'web', message: 'launched i-1' },
    { source: 'autoscaler', atMs: t0 + 30_200, kind: 'launch', pool: 'web', message: 'launched i-2' },
    { source: 'autoscaler', atMs: t0 + 40_000, kind: 'decision', pool: 'web', message: 'desired 5 (current 5, recommended 5): no action' },
  ]);
  await cli.write([{ source: 'cli', atMs: t0 + 60_000, kind: 'freeze-set', message: 'alice froze the autoscaler for every pool: incident 4711', data: { by: 'alice', reason: 'incident 4711' } }]);
  // Outside the window: left out.
  await cli.write([{ source: 'cli', atMs: t0 + 200_000, kind: 'freeze-cleared', message: 'alice unfroze the autoscaler' }]);

  const window = ['--since', new Date(t0).toISOString(), '--until', new Date(t0 + 120_000).toISOString(), '--store', testStore.endpoint];
  const json = await runCli(['report', ...window, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as Postmortem;
  assert.equal(report.events, 11);
  assert.equal(report.failures.length, 1, 'one failure, however many components saw it');
  assert.deepEqual(report.failures[0], {
    pool: 'web', backend: '10.0.0.2:80', cause: 'status 500 (expected 200-299)',
    beganAtMs: t0 + 8_500, detectedAtMs: t0 + 10_000, detectionMs: 1_500,
    movedAtMs: t0 + 10_400, trafficMovedAfterMs: 1_900, recoveredAtMs: t0 + 70_000, outageMs: 61_500,
  });
  assert.deepEqual(report.episodes, [{ pool: 'web', kind: 'shedding', startedAtMs: t0 + 20_000, endedAtMs: t0 + 50_000, durationMs: 30_000 }]);
  assert.equal(report.autoscaler.decisions, 2);
  assert.deepEqual(report.autoscaler.changes.map((change) => [change.from, change.to]), [[3, 5]]);
  assert.deepEqual(report.autoscaler.actions, { launch: 2 });
  assert.deepEqual(report.operatorActions.map((action) => [action.kind, action.by]), [['freeze-set', 'alice']]);

  const text = await runCli(['report', ...window]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /pool web, backend 10\.0\.0\.2:80: status 500/);
  assert.match(text.stdout, /began 2025-01-07 10:00:08Z, detected 2025-01-07 10:00:10Z \(after 1\.5 s\), traffic moved away after 1\.9 s/);
  assert.match(text.stdout, /recovered 2025-01-07 10:01:10Z \(out for 61\.5 s\)/);
  assert.match(text.stdout, /pool web shedding load from 2025-01-07 10:00:20Z for 30\.0 s/);
  assert.match(text.stdout, /Autoscaler: 2 decisions, 1 changed the instance count; actions: launch x2/);

  const backwards = await runCli(['report', '--since', '1h', '--until', '2h', '--store', testStore.endpoint]);
  assert.equal(backwards.code, 2);
  assert.equal(backwards.stderr, 'concord report: --until must be later than --since\n');
  const missing = await runCli(['report', '--store', testStore.endpoint]);
  assert.equal(missing.code, 2, 'report needs --since');
});

test('concord member list|add|remove|promote over the Cluster API, and errors when the store is away', async (t) => {
  const testStore = await startTestStore();
  t.after(() => testStore.stop());
  const store = ['--store', testStore.endpoint];
  const list = await runCli(['member', 'list', ...store, '--json']);
  assert.equal(list.code, 0, list.stderr);
  const members = (JSON.parse(list.stdout) as { members: { id: string; name: string; isLeader: boolean; isLearner: boolean }[] }).members;
  assert.deepEqual(members.map((member) => [member.name, member.isLeader, member.isLearner]), [['store', true, false]]);
  assert.match(members[0]!.id, /^[0-9a-f]{16}$/);

  const added = await runCli(['member', 'add', 'store-2', 'http://127.0.0.1:1', '--learner', ...store]);
  assert.equal(added.code, 0, added.stderr);
  const id = /with ID ([0-9a-f]{16})/.exec(added.stdout)?.[1];
  assert.ok(id !== undefined, added.stdout);
  const initialCluster = /--initial-cluster (\S+) --initial-cluster-state existing/.exec(added.stdout)?.[1]?.split(',').sort();
  assert.deepEqual(initialCluster?.map((entry) => entry.replace(/:\d+$/, ':PORT')), ['store-2=http://127.0.0.1:PORT', 'store=http://127.0.0.1:PORT']);
  const table = await runCli(['member', 'list', ...store]);
  assert.match(table.stdout, new RegExp(`${id}  \\(not started\\)  learner  -  http://127\\.0\\.0\\.1:1`));
  const promoted = await runCli(['member', 'promote', id, ...store]);
  assert.equal(promoted.code, 1, 'a learner that never started is not caught up: the store refuses');
  assert.match(promoted.stderr, /^concord member promote: .+\n$/);
  const removed = await runCli(['member', 'remove', id, ...store]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /1 left: store/);

  const badId = await runCli(['member', 'remove', 'not-an-id', ...store]);
  assert.equal(badId.code, 2);
  const badUrl = await runCli(['member', 'add', 'x', 'ftp://host', ...store]);
  assert.equal(badUrl.code, 2);

  await testStore.stop();
  const away = await runCli(['status', ...store]);
  assert.equal(away.code, 1);
  assert.match(away.stderr, /^concord status: .+\n$/, 'one line');
});
