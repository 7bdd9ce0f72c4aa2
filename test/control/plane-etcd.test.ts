// The production shape against a real etcd (Debian's etcd-server) instead of Concord's store: the
// control plane and a proxy reach it with --store etcd://..., the shared checker's verdict reaches
// the proxy through it, requests flow, and the operators' CLI reads the same cluster.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Overview } from '../../src/ui/api-types.ts';
import { eventually } from '../traffic/proxy-harness.ts';
import { runCli } from '../support/cli-run.ts';
import { startPlaneStack } from './plane-stack.ts';

test('against a real etcd: the control plane publishes verdicts, the proxy routes by them, the CLI reads the cluster (--store etcd://...)', async (t) => {
  const stack = await startPlaneStack({ store: 'etcd' });
  t.after(() => stack.stop());
  const store = `etcd://${stack.store.endpoint}`;
  const overview = async () => await (await fetch(`${stack.plane.adminUrl}/api/overview`, { signal: AbortSignal.timeout(5000) })).json() as Overview;
  assert.ok(await eventually(async () => (await overview()).pools[0]?.backends[0]?.state === 'healthy', 15_000), 'the shared checker\'s verdict is published');
  assert.ok(await eventually(() => stack.proxy.proxy.pool('web')?.health.view(stack.backend.address).state === 'healthy', 5000), 'and the proxy follows it');
  const answer = await fetch(`${stack.proxyUrl}/`, { signal: AbortSignal.timeout(5000) });
  assert.deepEqual([answer.status, await answer.text()], [200, 'ok']);
  const members = (await overview()).store.members;
  assert.deepEqual(members.map((member) => [member.name, member.isLeader]), [['etcd', true]], 'etcd\'s membership through the Cluster API');

  let status = await runCli(['status', '--store', store]);
  assert.ok(await eventually(async () => {
    status = await runCli(['status', '--store', store]);
    return status.code === 0;
  }, 10_000), `concord status --store ${store} exits 0: ${status.stdout}${status.stderr}`);
  assert.match(status.stdout, /Store: 1 member\(s\), leader etcd/);
  const list = await runCli(['member', 'list', '--endpoints', stack.store.endpoint]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /etcd {2}voter {2}leader/);
});
