// Health checked once per backend per cluster: three control-plane members share the checks
// through the store, two proxies route by the published results without probing. A backend counts
// the probes it receives: one per interval (no more probes than that, and no gap shorter than half
// the interval less its jitter, so no two members probe it), none from the proxies. When the member checking it crashes,
// another takes over within the membership lease's TTL plus one interval, continuing from the
// published verdict.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { applyConfig } from '../../src/control/config-store.ts';
import { validateConfig } from '../../src/control/config.ts';
import { parseHealthRecord } from '../../src/control/health-record.ts';
import { ControlPlane } from '../../src/control/plane.ts';
import { healthKey } from '../../src/control/store-keys.ts';
import type { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import { startAssembledProxy, type AssembledProxy } from '../../src/traffic/proxy/proxy-assembly.ts';
import { startTestStore, storeClient } from '../autoscale/controller-harness.ts';
import { eventually, LogSink, startBackend } from '../traffic/proxy-harness.ts';

const INTERVAL_MS = 400;
const JITTER_PERCENT = 10;
const LEASE_TTL_SECONDS = 1;

async function startPlane(endpoint: string, name: string): Promise<{ plane: ControlPlane; client: EtcdCoordStore }> {
  const client = storeClient(endpoint);
  const plane = await ControlPlane.start({ store: client, cluster: client.cluster, name, admin: '127.0.0.1:0', configWaitMs: 2000 });
  return { plane, client };
}

async function startProxy(endpoint: string, name: string): Promise<{ proxy: AssembledProxy; client: EtcdCoordStore }> {
  const client = storeClient(endpoint);
  const proxy = await startAssembledProxy({
    config: validateConfig({ proxy: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', name } }), store: client, seed: 1,
    log: new AccessLog(new LogSink() as unknown as ConstructorParameters<typeof AccessLog>[0]), feed: { healthTickMs: 100, startTimeoutMs: 3000 },
  });
  return { proxy, client };
}

test('three members, two proxies: one probe per interval at the backend; a crashed checker is replaced within the lease bound', async (t) => {
  const store = await startTestStore();
  const admin = storeClient(store.endpoint);
  const probes: number[] = [];
  const backend = await startBackend((req, res) => {
    if (req.url === '/healthz') probes.push(performance.now());
    res.end('ok');
  });
  t.after(async () => {
    admin.close();
    await backend.close();
    await store.stop();
  });
  await applyConfig(admin, stringify({
    controlPlane: { membership: { leaseTtlSeconds: LEASE_TTL_SECONDS }, health: { refreshMs: 300, maxResultAgeMs: 3000 } },
    pools: [{ name: 'web', backends: [{ address: backend.address }], health: { http: { path: '/healthz' }, intervalMs: INTERVAL_MS, timeoutMs: 200, jitterPercent: JITTER_PERCENT } }],
  }), { by: 'test', atMs: Date.now() });
  const members = await Promise.all(['member-a', 'member-b', 'member-c'].map((name) => startPlane(store.endpoint, name)));
  const proxies = await Promise.all(['proxy-1', 'proxy-2'].map((name) => startProxy(store.endpoint, name)));
  t.after(async () => {
    for (const { proxy, client } of proxies) {
      await proxy.stop(500);
      client.close();
    }
    for (const { plane, client } of members) {
      await plane.stop();
      client.close();
    }
  });

  const key = `web/${backend.address}`;
  const owners = () => members.filter(({ plane }) => plane.health.ownedBackends().includes(key)).map(({ plane }) => plane.name);
  assert.ok(await eventually(() => members.every(({ plane }) => plane.members().length === 3) && owners().length === 1, 8000), `one owner among three members (owners: ${owners().join(', ')})`);
  const [owner] = owners();
  assert.ok(await eventually(async () => (await admin.get(healthKey('web', backend.address))) !== undefined, 5000), 'the result is published');

  // Steady state: watch the probes for a while.
  const windowMs = 10 * INTERVAL_MS;
  const from = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const seen = probes.filter((at) => at >= from);
  const gaps = seen.slice(1).map((at, i) => at - seen[i]!);
  const shortest = INTERVAL_MS * (1 - JITTER_PERCENT / 100);
  // A second member probing too would double the count and put gaps anywhere below the interval;
  // one late probe on a loaded machine shortens the next gap by its delay, so the bound on gaps is
  // half the shortest interval (the count bound below is the tight one).
  const shortestGap = shortest / 2;
  assert.ok(gaps.every((gap) => gap >= shortestGap), `every gap at least half the interval less its jitter (${shortestGap} ms): ${gaps.map(Math.round).join(', ')}`);
  assert.ok(seen.length <= Math.ceil(windowMs / shortest) + 1, `at most one probe per interval: ${seen.length} in ${windowMs} ms`);
  assert.ok(seen.length >= 3, `the backend is being checked: ${seen.length} probes`);
  for (const { proxy } of proxies) assert.deepEqual(proxy.feed!.health.checkingItself(), [], 'proxies do not probe while results are current');
  for (const { proxy } of proxies) assert.equal(proxy.proxy.pool('web')!.health.view(backend.address).state, 'healthy');

  // The checking member crashes (its lease runs out; nothing is deregistered).
  const victim = members.find(({ plane }) => plane.name === owner)!;
  const crashedAt = performance.now();
  await victim.plane.crash();
  victim.client.close();
  members.splice(members.indexOf(victim), 1);
  const takenOver = await eventually(async () => {
    const kv = await admin.get(healthKey('web', backend.address));
    const parsed = kv === undefined ? undefined : parseHealthRecord(kv.value);
    return parsed?.ok === true && parsed.record.checker !== owner;
  }, 10_000);
  const takeoverMs = performance.now() - crashedAt;
  assert.ok(takenOver, 'another member publishes the result');
  const boundMs = LEASE_TTL_SECONDS * 1000 + INTERVAL_MS + 2000; // TTL, expiry check and watch delivery, the first probe, slack
  assert.ok(takeoverMs <= boundMs, `taken over in ${Math.round(takeoverMs)} ms, bound ${boundMs} ms`);
  assert.equal(owners().length, 1, 'exactly one of the two remaining members checks it');
  const after = probes.filter((at) => at >= crashedAt);
  const afterGaps = after.slice(1).map((at, i) => at - after[i]!);
  assert.ok(afterGaps.every((gap) => gap >= shortestGap), `still one checker after the takeover: ${afterGaps.map(Math.round).join(', ')}`);
  for (const { proxy } of proxies) {
    assert.deepEqual(proxy.feed!.health.checkingItself(), [], 'the takeover was faster than maxResultAgeMs: proxies never had to probe');
    assert.equal(proxy.proxy.pool('web')!.health.view(backend.address).state, 'healthy', 'and nothing flapped');
  }
});
