// The controller with real example apps and a real store in this process: one controller grows a
// pool to its minimum, records what it does, scales out and in (draining first) as the load moves,
// and replaces an instance that stopped answering its health checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoscaleController } from '../../src/autoscale/controller/controller.ts';
import { ProbingMetricsSource, exampleAppProvider, instanceRecords, poolStatus, sharedPoolSetup, startTestStore, storeClient, testPolicy, timeline, TEST_LEASE_TTL_SECONDS } from './controller-harness.ts';
import { waitFor } from './processes.ts';

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
