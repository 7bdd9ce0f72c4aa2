// The kill switch as store operations: freeze and unfreeze (each recorded as an event in the same
// transaction), what etcdctl writes by hand, validation of what the operator types, and the status
// report the CLI prints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoscaleReport, freeze, KillSwitchError, unfreeze } from '../../src/autoscale/controller/kill-switch.ts';
import { formatReport } from '../../src/cli/autoscale.ts';
import { readEvents } from '../../src/control/events.ts';
import { instanceKey, statusKey } from '../../src/autoscale/state/keys.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { startTestStore, storeClient } from './controller-harness.ts';

test('freeze, unfreeze, etcdctl, and the report', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const client = storeClient(store.endpoint);
  t.after(() => client.close());

  assert.deepEqual(await freeze(client, { by: 'alice', reason: ' incident 4711 ', atMs: 1_000 }), { key: '/concord/autoscale/freeze' });
  assert.deepEqual(JSON.parse((await client.get('/concord/autoscale/freeze'))!.value), { by: 'alice', reason: 'incident 4711', atMs: 1_000 });
  const again = await freeze(client, { by: 'bob', reason: 'still', atMs: 2_000 });
  assert.deepEqual(again.replaced, { by: 'alice', reason: 'incident 4711', atMs: 1_000 });
  await freeze(client, { pool: 'web', by: 'carol', reason: 'db migration', atMs: 3_000 });
  assert.deepEqual((await unfreeze(client, { by: 'dave', atMs: 4_000 })).removed, { by: 'bob', reason: 'still', atMs: 2_000 });
  assert.deepEqual(await unfreeze(client, { by: 'dave', atMs: 5_000 }), { key: '/concord/autoscale/freeze' }, 'not frozen: nothing removed');
  const flips = (await readEvents(client)).map((e) => `${e.kind} ${e.message}`);
  assert.deepEqual(flips, [
    'freeze-set alice froze the autoscaler for every pool: incident 4711',
    'freeze-set bob froze the autoscaler for every pool: still',
    'freeze-set carol froze the autoscaler for pool web: db migration',
    'freeze-cleared dave unfroze the autoscaler for every pool',
  ]);

  for (const [request, pattern] of [
    [{ by: 'x', reason: '  ', atMs: 0 }, /needs a reason/],
    [{ by: 'x', reason: 'r'.repeat(1_001), atMs: 0 }, /at most 1000/],
    [{ by: '', reason: 'r', atMs: 0 }, /--by must be/],
    [{ pool: '../etc', by: 'x', reason: 'r', atMs: 0 }, /not a pool name/],
  ] as const) {
    await assert.rejects(freeze(client, request), (error: unknown) => error instanceof KillSwitchError && error.code === 'CONCORD_E_FREEZE_INVALID' && pattern.test(error.message));
  }

  const byHand = await runEtcdctl({ endpoint: store.endpoint, args: ['put', '/concord/autoscale/freeze', 'hands off'] });
  assert.equal(byHand.exitCode, 0, byHand.stderr);
  await client.put(statusKey('web'), JSON.stringify({ pool: 'web', leader: 'ctl-a', fencingToken: '42', atMs: 9_000, sequence: 17, desired: 3, current: 2, actual: 2, launchVersion: 'v1', dryRun: false, reasons: ['bounds: 1 -> 3: below the minimum 3'] }));
  await client.put(instanceKey('web', 'i1'), JSON.stringify({ id: 'i1', address: '127.0.0.1:9100', launchVersion: 'v1', launchedAtMs: 1, readyAtMs: 2, healthy: true }));
  await client.put(instanceKey('web', 'bad'), 'not json');
  const report = await autoscaleReport(client);
  assert.deepEqual(report.globalFreeze, { by: 'unknown', reason: 'hands off', atMs: 0 });
  assert.equal(report.pools.length, 1);
  assert.equal(report.pools[0]!.freeze?.by, 'carol');
  assert.equal(report.pools[0]!.instances.length, 1);
  assert.deepEqual(report.problems, [`instance record ${instanceKey('web', 'bad')} is not JSON`]);
  const text = formatReport(report, 12_000);
  assert.match(text, /^leader: none/);
  assert.match(text, /frozen \(every pool\): yes, by unknown: hands off/);
  assert.match(text, /pool web: desired 3, actual 1 \(ready 1, draining 0\); frozen by carol at 1970-01-01T00:00:03.000Z: db migration/);
  assert.match(text, /last decision: #17 by ctl-a 3 s ago\n {4}bounds: 1 -> 3: below the minimum 3/);
  assert.match(text, /problem: instance record .* is not JSON/);
});
