// The controller with a real store in this process: one controller grows a pool of real example
// apps to its minimum, records what it does, and scales out and in (draining first) as the load
// moves; with an exec provider, a new leader lists the cloud's instances back and adopts them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoscaleController } from '../../src/autoscale/controller/controller.ts';
import { StaticMetricsSource, uniformSample } from '../../src/autoscale/controller/metrics-source.ts';
import type { PoolSetup } from '../../src/autoscale/controller/pool-period.ts';
import { ExecProvider } from '../../src/autoscale/providers/exec-provider.ts';
import { unfreeze } from '../../src/autoscale/controller/kill-switch.ts';
import { RUNAWAY_FREEZE_BY } from '../../src/autoscale/policy/policy.ts';
import { poolFreezeKey } from '../../src/autoscale/state/keys.ts';
import { parseFreezeValue } from '../../src/autoscale/state/records.ts';
import { ProbingMetricsSource, exampleAppProvider, instanceRecords, poolStatus, sharedPoolSetup, startTestStore, storeClient, testPolicy, timeline, TEST_LEASE_TTL_SECONDS } from './controller-harness.ts';
import { waitFor } from './processes.ts';

const CLOUD = fileURLToPath(new URL('./fixtures/fake-cloud.mjs', import.meta.url));

test('a controller grows the pool to its minimum, records instances and decisions, scales out under load and back in, draining first', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const client = storeClient(store.endpoint);
  t.after(() => client.close());
  const provider = exampleAppProvider('web');
  t.after(() => provider.close());
  const metrics = new ProbingMetricsSource();
  const controller = new AutoscaleController({
    store: client, name: 'ctl-a', pools: [sharedPoolSetup(testPolicy({ min: 2, max: 5 }), provider)], metrics, leaseTtlSeconds: TEST_LEASE_TTL_SECONDS,
  });
  controller.start();
  t.after(() => controller.stop());

  await waitFor('two instances recorded and ready', async () => (await instanceRecords(client, 'web')).filter((i) => i.readyAtMs !== undefined).length === 2, 15_000);
  assert.equal(controller.role(), 'leader');
  const status = await poolStatus(client, 'web');
  assert.equal(status?.leader, 'ctl-a');
  assert.equal(status?.fencingToken, controller.fencingToken()?.toString());
  assert.ok((await timeline(client, 'decision')).length > 0, 'decisions are events');
  assert.equal((await timeline(client, 'launch')).length, 2);

  metrics.totalInflight = 16; // 4 instances at the target of 4 each
  await waitFor('four ready instances', async () => (await instanceRecords(client, 'web')).filter((i) => i.readyAtMs !== undefined && i.drainingSinceMs === undefined).length === 4, 15_000);
  metrics.totalInflight = 2;
  await waitFor('back to two instances', async () => (await provider.list()).length === 2, 20_000);
  const drains = await timeline(client, 'drain');
  const terminates = await timeline(client, 'terminate');
  assert.equal(drains.length, 2);
  assert.equal(terminates.length, 2);
  for (const drain of drains) {
    const instance = /drain (\S+)/.exec(drain.message)![1];
    const terminate = terminates.find((event) => event.message.includes(`terminated ${instance} `));
    assert.ok(terminate !== undefined && terminate.atMs >= drain.atMs, `${instance} is drained before it is terminated`);
  }
  const log = provider.actionLog();
  assert.equal(log.filter((entry) => entry.action === 'launch').length, (await provider.list()).length + log.filter((entry) => entry.action === 'terminate').length, 'launched = running + terminated');
});

test('with an exec provider (a cloud both controllers call), a new leader lists the instances back and launches nothing again', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const dir = mkdtempSync(join(tmpdir(), 'concord-exec-controller-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cloudState = join(dir, 'cloud.json');
  const tool = (args: string) => `${process.execPath} ${CLOUD} ${args}`;
  const config = testPolicy({ min: 3, max: 5, periodMs: 500 });
  // Each controller has its own provider object (as on separate machines); the instances live in the cloud.
  const setup: PoolSetup = {
    name: 'web',
    config,
    launchVersion: 'v1',
    createProvider: (onEvent) => new ExecProvider({ pool: 'web', launch: tool('launch'), terminate: tool('terminate {instanceId}'), list: tool('list'), env: { CLOUD_STATE: cloudState }, timeoutMs: 5_000, retries: 1, retryBackoffMs: 50, maxOutputBytes: 100_000, onEvent }),
    instancesDieWithController: false,
    listGraceMs: 0,
  };
  const metrics = new StaticMetricsSource();
  metrics.set('web', uniformSample({ inflightPerInstance: 4 }));
  const clients = [storeClient(store.endpoint), storeClient(store.endpoint)];
  t.after(() => clients.forEach((client) => client.close()));
  const [a, b] = ['ctl-a', 'ctl-b'].map((name, i) => new AutoscaleController({ store: clients[i]!, name, pools: [setup], metrics, leaseTtlSeconds: TEST_LEASE_TTL_SECONDS }));
  t.after(async () => {
    await a!.stop();
    await b!.stop();
  });
  a!.start();
  await waitFor('three instances in the cloud, recorded', async () => (await instanceRecords(clients[0]!, 'web')).length === 3, 15_000);
  b!.start();
  const cloud = () => JSON.parse(readFileSync(cloudState, 'utf8')) as { instances: { id: string }[]; env: { command: string; token: string }[] };
  const before = cloud().instances.map((i) => i.id);
  await a!.crash();
  await waitFor('ctl-b decided', async () => (await poolStatus(clients[1]!, 'web'))?.leader === 'ctl-b', 10_000);
  await new Promise((resolve) => setTimeout(resolve, 3 * config.periodMs));
  assert.deepEqual(cloud().instances.map((i) => i.id), before, 'the same three instances');
  assert.equal(cloud().env.filter((call) => call.command === 'launch').length, 3, 'launched once each');
  assert.deepEqual((await instanceRecords(clients[1]!, 'web')).map((i) => i.id).sort(), [...before].sort());
  assert.equal((await timeline(clients[1]!, 'instance-gone')).length, 0, 'nothing was dropped');
});

test('an instance that dies is dropped and relaunched; one that fails its health checks is drained, replaced, then terminated', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const client = storeClient(store.endpoint);
  t.after(() => client.close());
  const provider = exampleAppProvider('web');
  t.after(() => provider.close());
  const controller = new AutoscaleController({
    store: client, name: 'ctl-a', pools: [sharedPoolSetup(testPolicy({ min: 3, max: 5 }), provider)], metrics: new ProbingMetricsSource(), leaseTtlSeconds: TEST_LEASE_TTL_SECONDS,
  });
  controller.start();
  t.after(() => controller.stop());
  const ready = async () => (await instanceRecords(client, 'web')).filter((i) => i.readyAtMs !== undefined && i.healthy && i.drainingSinceMs === undefined);
  await waitFor('three ready instances', async () => (await ready()).length === 3, 15_000);

  const [victim, sick] = await ready();
  process.kill(provider.pidOf(victim!.id)!, 'SIGKILL');
  await waitFor('the dead instance is dropped and the pool is back to three', async () => {
    const ids = (await ready()).map((i) => i.id);
    return ids.length === 3 && !ids.includes(victim!.id);
  }, 15_000);
  assert.ok((await timeline(client, 'instance-gone')).some((e) => e.message.startsWith(victim!.id)));

  process.kill(provider.pidOf(sick!.id)!, 'SIGUSR2'); // the example app answers /healthz with 503 from now on
  await waitFor('the failing instance is replaced and terminated', async () => {
    const ids = (await provider.list()).map((i) => i.id);
    return !ids.includes(sick!.id) && (await ready()).length === 3;
  }, 20_000);
  const events = (await timeline(client)).filter((e) => e.message.includes(sick!.id)).map((e) => e.kind);
  assert.deepEqual(events.filter((kind) => ['instance-failing', 'drain', 'terminate'].includes(kind)), ['instance-failing', 'drain', 'terminate']);
  const drain = (await timeline(client, 'drain')).find((e) => e.message.includes(sick!.id))!;
  assert.match(drain.message, /replace: failing health checks/);
});

test("the runaway guard's freeze is written as the pool's kill-switch key, and holds until an operator lifts it", async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const client = storeClient(store.endpoint);
  t.after(() => client.close());
  const provider = exampleAppProvider('web');
  t.after(() => provider.close());
  const metrics = new StaticMetricsSource();
  metrics.set('web', uniformSample({ inflightPerInstance: 1 }));
  const config = testPolicy({ min: 1, max: 10, runaway: { ...testPolicy({ min: 1, max: 10 }).runaway, maxGrowthPerWindow: 2 } });
  const controller = new AutoscaleController({ store: client, name: 'ctl-a', pools: [sharedPoolSetup(config, provider)], metrics, leaseTtlSeconds: TEST_LEASE_TTL_SECONDS });
  controller.start();
  t.after(() => controller.stop());
  await waitFor('one instance', async () => (await instanceRecords(client, 'web')).length === 1, 15_000);

  metrics.set('web', uniformSample({ inflightPerInstance: 24 })); // asks for 6: 5 more than the window's smallest pool
  await waitFor('the pool freeze key', async () => (await client.get(poolFreezeKey('web'))) !== undefined, 10_000);
  const key = parseFreezeValue((await client.get(poolFreezeKey('web')))!.value);
  assert.equal(key.by, RUNAWAY_FREEZE_BY);
  assert.match(key.reason, /beyond runaway.maxGrowthPerWindow \(2\)/);
  await new Promise((resolve) => setTimeout(resolve, 5 * config.periodMs));
  assert.equal((await provider.list()).length, 1, 'nothing launched');
  assert.equal((await poolStatus(client, 'web'))?.frozen?.by, RUNAWAY_FREEZE_BY);
  assert.ok((await timeline(client, 'runaway-freeze')).length >= 1);

  metrics.set('web', uniformSample({ inflightPerInstance: 4 })); // the bug is fixed
  await unfreeze(client, { pool: 'web', by: 'alice', atMs: Date.now() });
  await waitFor('acting again after the operator unfroze it', async () => (await poolStatus(client, 'web'))?.frozen === undefined, 10_000);
  assert.equal(await client.get(poolFreezeKey('web')), undefined, 'the guard does not freeze again on sane metrics');
});
