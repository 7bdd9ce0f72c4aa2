// Failover and fencing with three controllers in this process, sharing one provider (as several
// control-plane members share one cloud) and one real store. The leader crashes: another takes
// over within a bound set by the lease TTL and adopts the pool without launching anything again.
// A leader paused between its decision and its action: its store transaction fails. A leader
// paused between its recorded intent and the provider call: the provider refuses its token.
//
// A pause is simulated the way a real one behaves: the paused controller's lease keep-alives
// stop (its lease expires in the store) while its action waits in a hook; then it resumes and acts
// as if nothing happened. No local check stops it: only the fence can.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoordStore, LeaseHandle, LeaseOptions } from '../../src/coord/coord-store.ts';
import { AutoscaleController } from '../../src/autoscale/controller/controller.ts';
import type { ActionHooks } from '../../src/autoscale/controller/action-executor.ts';
import type { Action } from '../../src/autoscale/policy/types.ts';
import { ProviderError } from '../../src/autoscale/providers/provider.ts';
import { actionsPrefix } from '../../src/autoscale/state/keys.ts';
import {
  ProbingMetricsSource, TEST_LEASE_TTL_SECONDS, TEST_PERIOD_MS, exampleAppProvider, instanceRecords, poolStatus, sharedPoolSetup, startTestStore, storeClient, testPolicy, timeline,
} from './controller-harness.ts';
import { waitFor } from './processes.ts';

/** Bound on a takeover: the lease runs out (TTL), the store notices (its 100 ms expiry check), the waiting candidate's watch fires, and its first period runs; plus slack for a slow, shared machine. */
const TAKEOVER_BOUND_MS = TEST_LEASE_TTL_SECONDS * 1000 + 100 + TEST_PERIOD_MS + 3_000;

/** A store client whose leases the test can stop keeping alive, as a paused process stops. */
function pausable(store: CoordStore): CoordStore & { pauseKeepAlives(): void } {
  const leases: LeaseHandle[] = [];
  return Object.assign(Object.create(store) as CoordStore, {
    grantLease: async (ttlSeconds: number, options?: LeaseOptions) => {
      const lease = await store.grantLease(ttlSeconds, options);
      leases.push(lease);
      return lease;
    },
    pauseKeepAlives: () => {
      for (const lease of leases) lease.release();
    },
  });
}

/** A gate a hook waits at, opened by the test. */
function gate(): { wait: Promise<void>; open: () => void; reached: Promise<void>; arrive: () => void } {
  let open = () => {};
  let arrive = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  return { wait, open, reached, arrive };
}

async function startControllers(t: { after: (fn: () => Promise<void> | void) => void }, count: number, hooksFor: (name: string) => ActionHooks = () => ({})) {
  const store = await startTestStore();
  t.after(() => store.stop());
  const provider = exampleAppProvider('web');
  t.after(() => provider.close());
  const metrics = new ProbingMetricsSource();
  const clients = Array.from({ length: count }, () => pausable(storeClient(store.endpoint)));
  t.after(() => clients.forEach((client) => client.close()));
  const names = ['ctl-a', 'ctl-b', 'ctl-c'].slice(0, count);
  const controllers = names.map((name, i) => new AutoscaleController({
    store: clients[i]!, name, pools: [sharedPoolSetup(testPolicy({ min: 2, max: 6 }), provider)], metrics, leaseTtlSeconds: TEST_LEASE_TTL_SECONDS, hooks: hooksFor(name),
  }));
  t.after(async () => {
    for (const controller of controllers) await controller.stop();
  });
  const observer = storeClient(store.endpoint);
  t.after(() => observer.close());
  return { provider, metrics, clients, controllers, observer };
}

const leaderOf = (controllers: AutoscaleController[]) => controllers.find((controller) => controller.role() === 'leader');

test('the leader crashes: another takes over within the lease bound, adopts the running pool and launches nothing again', async (t) => {
  const { provider, metrics, controllers, observer } = await startControllers(t, 3);
  for (const controller of controllers) controller.start();
  await waitFor('two ready instances', async () => (await instanceRecords(observer, 'web')).filter((i) => i.readyAtMs !== undefined).length === 2, 15_000);
  const first = leaderOf(controllers)!;
  assert.equal(controllers.filter((controller) => controller.role() === 'leader').length, 1, 'one leader');
  const firstToken = first.fencingToken()!;
  const before = (await instanceRecords(observer, 'web')).map((i) => i.id).sort();

  await first.crash();
  const crashedAt = Date.now();
  await waitFor('another leader', () => leaderOf(controllers) !== undefined, TAKEOVER_BOUND_MS);
  const second = leaderOf(controllers)!;
  await waitFor('the new leader decided', async () => (await poolStatus(observer, 'web'))?.leader === second.name, TAKEOVER_BOUND_MS);
  const takeoverMs = Date.now() - crashedAt;
  assert.ok(takeoverMs <= TAKEOVER_BOUND_MS, `took over in ${takeoverMs} ms`);
  assert.notEqual(second, first);
  assert.ok(second.fencingToken()! > firstToken, 'the new leader has a newer token');
  await new Promise((resolve) => setTimeout(resolve, 5 * TEST_PERIOD_MS));
  assert.deepEqual((await instanceRecords(observer, 'web')).map((i) => i.id).sort(), before, 'the same instances, adopted as they were');
  assert.equal(provider.actionLog().filter((entry) => entry.action === 'launch').length, 2, 'nothing launched again');

  metrics.totalInflight = 16; // 4 instances at the target of 4 each
  await waitFor('the new leader scales out', async () => (await provider.list()).length === 4, 15_000);
  const launches = provider.actionLog().filter((entry) => entry.action === 'launch');
  assert.deepEqual(launches.slice(2).map((entry) => entry.fencingToken), [second.fencingToken()!.toString(), second.fencingToken()!.toString()]);
  assert.equal(new Set(launches.map((entry) => entry.requestId)).size, launches.length, 'no request id twice');
  assert.equal(launches.length, (await provider.list()).length + provider.actionLog().filter((entry) => entry.action === 'terminate').length, 'launched = running + terminated');
  const elected = await timeline(observer, 'leader-elected');
  assert.deepEqual(elected.map((event) => event.by), [first.name, second.name]);
});

test('a leader paused between its decision and its action: its fenced intent fails, it acts on nothing', async (t) => {
  const pause = gate();
  let armed = false;
  const { provider, metrics, clients, controllers, observer } = await startControllers(t, 2, (name) => (name === 'ctl-a' ? {
    beforeIntent: async (action: Action) => {
      if (!armed || action.kind !== 'launch') return;
      armed = false;
      clients[0]!.pauseKeepAlives();
      pause.arrive();
      await pause.wait;
    },
  } : {}));
  controllers[0]!.start();
  await waitFor('ctl-a leads with two ready instances', async () => controllers[0]!.role() === 'leader' && (await instanceRecords(observer, 'web')).filter((i) => i.readyAtMs !== undefined).length === 2, 15_000);
  controllers[1]!.start();
  const tokenA = controllers[0]!.fencingToken()!;

  armed = true;
  metrics.totalInflight = 16; // 4 instances at the target of 4 each
  await pause.reached;
  await waitFor('ctl-b takes over while ctl-a is paused', () => controllers[1]!.role() === 'leader', TAKEOVER_BOUND_MS);
  const launchedBeforeResume = provider.actionLog().length;
  pause.open();
  await waitFor('ctl-a finds out', async () => (await timeline(observer, 'leader-deposed')).some((event) => event.by === 'ctl-a'), 5_000);

  const deposed = (await timeline(observer, 'leader-deposed')).find((event) => event.by === 'ctl-a')!;
  assert.match(deposed.message, /election key .* is gone or replaced, so its write was refused/, 'its intent transaction failed');
  assert.equal(provider.actionLog().filter((entry) => entry.fencingToken === tokenA.toString()).length, 2, 'ctl-a launched only the first two instances');
  assert.ok(provider.actionLog().slice(launchedBeforeResume).every((entry) => entry.fencingToken !== tokenA.toString()), 'nothing with its token after the pause');
  assert.equal(provider.events().filter((event) => event.kind === 'refused').length, 0, 'the provider was never even asked');
  assert.equal(controllers[1]!.role(), 'leader');
});

test('a leader paused between its recorded intent and the provider call: the provider refuses its token, and its outcome is never recorded', async (t) => {
  const pause = gate();
  let armed = false;
  let pausedAction: Action | undefined;
  const { provider, metrics, clients, controllers, observer } = await startControllers(t, 2, (name) => (name === 'ctl-a' ? {
    beforeProviderCall: async (action: Action) => {
      if (!armed || action.kind !== 'launch') return;
      armed = false;
      pausedAction = action;
      clients[0]!.pauseKeepAlives();
      pause.arrive();
      await pause.wait;
    },
  } : {}));
  controllers[0]!.start();
  await waitFor('ctl-a leads with two ready instances', async () => controllers[0]!.role() === 'leader' && (await instanceRecords(observer, 'web')).filter((i) => i.readyAtMs !== undefined).length === 2, 15_000);
  controllers[1]!.start();
  const tokenA = controllers[0]!.fencingToken()!;

  armed = true;
  metrics.totalInflight = 16; // 4 instances at the target of 4 each
  await pause.reached;
  const intent = await observer.range(actionsPrefix('web'), { prefix: true });
  assert.equal(intent.kvs.length, 1, "ctl-a's intent is recorded before the provider call");
  await waitFor('ctl-b takes over and acts while ctl-a is paused', async () => controllers[1]!.role() === 'leader' && (await poolStatus(observer, 'web'))?.leader === 'ctl-b', TAKEOVER_BOUND_MS);
  pause.open();
  await waitFor('ctl-a finds out', async () => (await timeline(observer, 'leader-deposed')).some((event) => event.by === 'ctl-a'), 5_000);

  const refused = provider.events().filter((event) => event.kind === 'refused');
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.requestId, pausedAction!.kind === 'launch' ? pausedAction!.requestId : undefined);
  assert.match(refused[0]!.message, new RegExp(`fencing token ${tokenA} is older than ${controllers[1]!.fencingToken()}`));
  assert.ok(!provider.actionLog().some((entry) => entry.requestId === (pausedAction as { requestId: string }).requestId), 'the paused launch never happened');
  assert.ok((await timeline(observer, 'action-refused')).some((event) => event.by === 'ctl-a'));
  assert.ok((await timeline(observer, 'action-outcome-unknown')).some((event) => event.by === 'ctl-b'), "ctl-b found ctl-a's unfinished intent and let the provider's list decide");
  await waitFor('ctl-b scales out on its own', async () => (await provider.list()).length === 4, 15_000);
  const launches = provider.actionLog().filter((entry) => entry.action === 'launch');
  assert.equal(launches.length, 4, 'launched = running + terminated: no duplicate');
  // And directly: the stale token is refused whatever it asks.
  await assert.rejects(provider.launch({ requestId: 'web/stale', launchVersion: 'v1', fencingToken: tokenA }), (error: unknown) => error instanceof ProviderError && error.code === 'CONCORD_E_PROVIDER_STALE_FENCING_TOKEN');
});
