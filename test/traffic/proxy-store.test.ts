// A proxy fed from the coordination store (a real store member on loopback, real backends): pools
// from the applied configuration, switched live without a failed request; verdicts published by
// the control plane applied without probing; operators' drains; autoscaled instances as backends,
// routable only once a verdict says ready; its registration and events in the store. And static
// stability: the store killed, the proxy goes on serving; stale results make it check backends
// itself, starting from the last verdicts, and nothing is marked down for want of data.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { stringify } from 'yaml';
import { applyConfig } from '../../src/control/config-store.ts';
import { validateConfig } from '../../src/control/config.ts';
import type { HealthRecord } from '../../src/control/health-record.ts';
import { readEvents } from '../../src/control/events.ts';
import { drainKey, healthKey, proxyKey } from '../../src/control/store-keys.ts';
import { instanceKey } from '../../src/autoscale/state/keys.ts';
import type { CoordStore } from '../../src/coord/coord-store.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import { startAssembledProxy, type AssembledProxy } from '../../src/traffic/proxy/proxy-assembly.ts';
import { startTestStore, storeClient, type TestStore } from '../autoscale/controller-harness.ts';
import { eventually, LogSink, startBackend, type TestBackend } from './proxy-harness.ts';

/** Short freshness bounds, so staleness shows within a test: results must be rewritten every 300 ms, count for 1.5 s. */
const CONTROL_PLANE = { membership: { leaseTtlSeconds: 1 }, health: { refreshMs: 300, maxResultAgeMs: 1500 } };

function configText(pools: Record<string, unknown>[], routes: Record<string, unknown>[] = []): string {
  return stringify({ controlPlane: CONTROL_PLANE, pools, ...(routes.length > 0 ? { routes } : {}) });
}

function webPool(backends: TestBackend[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'web', balance: 'round-robin', slowStart: { windowMs: 0 },
    backends: backends.map((backend) => ({ address: backend.address })),
    health: { http: { path: '/healthz' }, intervalMs: 200, timeoutMs: 100, rise: 1, fall: 1 },
    ...extra,
  };
}

function named(name: string): Promise<TestBackend> {
  return startBackend((req, res) => res.end(req.url === '/healthz' ? 'ok' : name));
}

async function startFedProxy(client: CoordStore): Promise<AssembledProxy & { port: number; notices: string[] }> {
  const notices: string[] = [];
  const running = await startAssembledProxy({
    config: validateConfig({ proxy: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', name: 'proxy-a' } }),
    store: client, seed: 1, log: new AccessLog(new LogSink() as unknown as ConstructorParameters<typeof AccessLog>[0]),
    feed: { healthTickMs: 100, startTimeoutMs: 3000, eventFlushIntervalMs: 100, registrationTtlSeconds: 2, onNotice: (message) => notices.push(message) },
  });
  return Object.assign(running, { port: running.proxy.trafficAddress.port, notices });
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function bodies(port: number, count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add((await get(port)).body);
  return seen;
}

function record(pool: string, backend: string, state: HealthRecord['state'], detail: string): string {
  const now = Date.now();
  const value: HealthRecord = {
    pool, backend, state, sinceMs: now, detail, checker: 'member-x', publishedAtMs: now, refreshMs: 300,
    lastProbe: { ok: state === 'healthy', detail, startedAtMs: now - 5, finishedAtMs: now },
    ...(state === 'unhealthy' ? { detectionMs: 42 } : {}),
  };
  return JSON.stringify(value);
}

/** Publishes records as a control-plane member would: rewritten every refreshMs until stopped. */
/** A test store with a client, a health publisher and named backends, all stopped when the test ends. */
async function storeWithBackends<const Names extends readonly string[]>(t: TestContext, names: Names): Promise<{ client: CoordStore; published: ReturnType<typeof publisher>; backends: { [K in keyof Names]: TestBackend } }> {
  const store = await startTestStore();
  const client = storeClient(store.endpoint);
  const backends = await Promise.all(names.map(named));
  const published = publisher(client);
  t.after(async () => {
    published.stop();
    client.close();
    await store.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  });
  return { client, published, backends: backends as { [K in keyof Names]: TestBackend } };
}

function publisher(client: CoordStore): { set(pool: string, backend: string, state: HealthRecord['state'], detail?: string): Promise<void>; stop(): void } {
  const current = new Map<string, string>();
  const timer = setInterval(() => {
    for (const [key, value] of current) void client.put(key, value.replace(/"publishedAtMs":\d+/, `"publishedAtMs":${Date.now()}`)).catch(() => undefined);
  }, 300);
  return {
    set: async (pool, backend, state, detail = state === 'healthy' ? 'status 200' : 'status 500 (expected 200-299)') => {
      const value = record(pool, backend, state, detail);
      current.set(healthKey(pool, backend), value);
      await client.put(healthKey(pool, backend), value);
    },
    stop: () => clearInterval(timer),
  };
}

test('pools from the applied configuration, verdicts from the store, drains, registration, and a live change without a failed request', async (t) => {
  const { client, published, backends: [a, b, c] } = await storeWithBackends(t, ['a', 'b', 'c']);
  await applyConfig(client, configText([webPool([a, b])]), { by: 'test', atMs: Date.now() });
  await published.set('web', a.address, 'healthy');
  await published.set('web', b.address, 'unhealthy');
  const proxy = await startFedProxy(client);
  t.after(() => proxy.stop(1000));

  assert.deepEqual([...await bodies(proxy.port, 6)], ['a'], 'the published verdict took b out of rotation');
  // The registration is written in the background once the proxy runs (a lease, then a put).
  assert.ok(await eventually(async () => (await client.get(proxyKey('proxy-a'))) !== undefined, 3000), 'the proxy registered');
  const registered = (await client.get(proxyKey('proxy-a')))!;
  const registration = JSON.parse(registered.value) as { admin: string; listen: string };
  assert.equal(registration.admin, `http://127.0.0.1:${proxy.proxy.adminAddress.port}`);
  assert.equal((await fetch(`${registration.admin}/ready`)).status, 200, 'the registered admin URL answers');
  const healthzBefore = (a.hits.get('/healthz') ?? 0) + (b.hits.get('/healthz') ?? 0);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal((a.hits.get('/healthz') ?? 0) + (b.hits.get('/healthz') ?? 0), healthzBefore, 'with current results, the proxy probes nothing itself');
  assert.deepEqual(proxy.feed!.health.checkingItself(), []);

  await published.set('web', b.address, 'healthy');
  assert.ok(await eventually(async () => (await bodies(proxy.port, 6)).has('b'), 3000), 'a healthy verdict brings b back');

  // An operator's drain, through the store.
  await client.put(drainKey('web', b.address), JSON.stringify({ by: 'alice', reason: 'maintenance', atMs: Date.now() }));
  assert.ok(await eventually(() => proxy.proxy.pool('web')!.health.view(b.address).state === 'drained', 3000));
  assert.deepEqual([...await bodies(proxy.port, 6)], ['a']);
  await client.delete(drainKey('web', b.address));
  assert.ok(await eventually(async () => (await bodies(proxy.port, 6)).has('b'), 3000), 'undrained');

  // A live change (new backend c, another algorithm) while a client keeps sending: nothing fails.
  let failures = 0;
  let sent = 0;
  let sending = true;
  const client1 = (async () => {
    while (sending && sent < 5000) {
      sent += 1;
      const reply = await get(proxy.port).catch(() => ({ status: 0, body: '' }));
      if (reply.status !== 200) failures += 1;
    }
  })();
  await published.set('web', c.address, 'healthy');
  await applyConfig(client, configText([webPool([a, b, c], { balance: 'p2c' })]), { by: 'test', atMs: Date.now() });
  assert.ok(await eventually(() => proxy.proxy.pool('web')?.config.balance === 'p2c', 3000), 'the new configuration is in force');
  assert.ok(await eventually(async () => (await bodies(proxy.port, 9)).has('c'), 3000), 'the new backend takes traffic once its verdict says healthy');
  sending = false;
  await client1;
  assert.ok(sent > 0);
  assert.equal(failures, 0, `${failures} of ${sent} requests failed during the change`);

  await proxy.stop(1000);
  assert.equal(await client.get(proxyKey('proxy-a')), undefined, 'a stopped proxy deregisters');
  const events = await readEvents(client);
  assert.ok(events.some((event) => event.source === 'proxy' && event.kind === 'drain-started' && event.by === 'proxy-a'), 'the proxy\'s own events are on the timeline');
  assert.ok(!events.some((event) => event.source === 'proxy' && event.kind === 'marked-down'), 'published verdicts are not written again by the proxy');
});

test('autoscaled instances become backends once the autoscaler records them ready, and take traffic with a healthy verdict; a draining instance gets no new requests', async (t) => {
  const { client, published, backends: [i1, i2] } = await storeWithBackends(t, ['i1', 'i2']);
  const app = {
    name: 'app', balance: 'round-robin', slowStart: { windowMs: 0 }, health: { http: { path: '/healthz' }, intervalMs: 200, timeoutMs: 100, rise: 1, fall: 1 },
    autoscale: { provider: { process: { command: 'app --port {port}', portRange: '9100-9199' } }, min: 1, max: 4, target: { inflightPerInstance: 8 } },
  };
  await applyConfig(client, configText([app]), { by: 'test', atMs: Date.now() });
  const instance = (id: string, backend: TestBackend, extra: Record<string, unknown> = {}) => client.put(instanceKey('app', id), JSON.stringify({ id, address: backend.address, launchVersion: 'v1', launchedAtMs: Date.now(), healthy: false, ...extra }));
  await instance('i-1', i1, { readyAtMs: Date.now() });
  await published.set('app', i1.address, 'healthy');
  const proxy = await startFedProxy(client);
  t.after(() => proxy.stop(1000));
  assert.deepEqual([...await bodies(proxy.port, 4)], ['i1']);

  // Starting: not a backend at all, so it gets no traffic and does not count toward the panic threshold.
  await instance('i-2', i2);
  await published.set('app', i2.address, 'healthy');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(proxy.proxy.pool('app')!.backend(i2.address), undefined, 'a starting instance is not a backend');
  assert.deepEqual([...await bodies(proxy.port, 6)], ['i1'], 'and gets no traffic');
  await instance('i-2', i2, { readyAtMs: Date.now(), healthy: true });
  assert.ok(await eventually(() => proxy.proxy.pool('app')!.backend(i2.address) !== undefined, 3000), 'recorded ready: a backend');
  assert.ok(await eventually(async () => (await bodies(proxy.port, 6)).has('i2'), 3000), 'with its healthy verdict it takes traffic');

  await instance('i-1', i1, { readyAtMs: Date.now(), drainingSinceMs: Date.now() });
  assert.ok(await eventually(() => proxy.proxy.pool('app')!.health.view(i1.address).state === 'drained', 3000), 'the autoscaler\'s drain reaches the proxy');
  assert.deepEqual([...await bodies(proxy.port, 6)], ['i2']);
  await client.delete(instanceKey('app', 'i-1'));
  assert.ok(await eventually(() => proxy.proxy.pool('app')!.backend(i1.address) === undefined, 3000), 'a terminated instance leaves the pool');
});

test('static stability: the store killed, the proxy keeps serving; stale results make it check backends itself, from the last verdicts', async (t) => {
  let store: TestStore | undefined = await startTestStore();
  const client = storeClient(store.endpoint);
  const [a, b] = await Promise.all([named('a'), named('b')]);
  const published = publisher(client);
  t.after(async () => {
    published.stop();
    client.close();
    await store?.stop();
    await Promise.all([a.close(), b.close()]);
  });
  await applyConfig(client, configText([webPool([a, b])]), { by: 'test', atMs: Date.now() });
  await published.set('web', a.address, 'healthy');
  // b is in fact healthy; the control plane (wrongly, say) published it down.
  await published.set('web', b.address, 'unhealthy');
  const proxy = await startFedProxy(client);
  t.after(() => proxy.stop(1000));
  assert.deepEqual([...await bodies(proxy.port, 4)], ['a']);

  published.stop();
  await store.stop();
  store = undefined;
  const killedAt = performance.now();
  // Serving goes on throughout, with the last configuration and verdicts.
  for (let i = 0; i < 20; i++) assert.equal((await get(proxy.port)).status, 200);
  assert.ok(performance.now() - killedAt < 1400 || proxy.feed!.health.checkingItself().length > 0);
  assert.ok(await eventually(() => proxy.feed!.health.checkingItself().length === 2, 5000), 'once the results are older than maxResultAgeMs, the proxy checks both backends itself');
  assert.ok(proxy.notices.some((notice) => /checking web\/.* from this proxy: the published result is older than 1500 ms/.test(notice)), proxy.notices.join('\n'));
  assert.ok(await eventually(async () => (await bodies(proxy.port, 6)).has('b'), 5000), 'its own checks find b healthy and bring it back');
  const events = (await (await fetch(`http://127.0.0.1:${proxy.proxy.adminAddress.port}/events`)).json()) as { events: { kind: string; backend: string }[] };
  assert.deepEqual(events.events.filter((event) => event.kind === 'marked-down').map((event) => event.backend), [b.address], 'only the published verdict marked anything down: stale data marked nothing');
  assert.equal(proxy.proxy.pool('web')!.health.view(a.address).state, 'healthy', 'a stayed in rotation all along');
});

test('a new instance gets traffic only after readiness and through slow start', async (t) => {
  const { client, published, backends: [i1, i2] } = await storeWithBackends(t, ['i1', 'i2']);
  // A window long enough that the ramp is still low while the test looks at it, even on a slow machine.
  const WINDOW_MS = 30_000;
  const app = {
    name: 'app', balance: 'weighted-round-robin', slowStart: { windowMs: WINDOW_MS, minWeightPercent: 10 }, health: { http: { path: '/healthz' }, intervalMs: 200, timeoutMs: 100, rise: 1, fall: 1 },
    autoscale: { provider: { process: { command: 'app --port {port}', portRange: '9100-9199' } }, min: 1, max: 4, target: { inflightPerInstance: 8 } },
  };
  await applyConfig(client, configText([app]), { by: 'test', atMs: Date.now() });
  const instance = (id: string, backend: TestBackend, extra: Record<string, unknown> = {}) => client.put(instanceKey('app', id), JSON.stringify({ id, address: backend.address, launchVersion: 'v1', launchedAtMs: Date.now(), healthy: false, ...extra }));
  await instance('i-1', i1, { readyAtMs: Date.now(), healthy: true });
  await published.set('app', i1.address, 'healthy');
  const proxy = await startFedProxy(client);
  t.after(() => proxy.stop(1000));
  assert.deepEqual([...await bodies(proxy.port, 4)], ['i1']);

  // Starting (launched, checks not yet passed): not a backend, so no traffic and no weight in the panic threshold.
  await instance('i-2', i2);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(proxy.proxy.pool('app')!.backend(i2.address), undefined, 'a starting instance is not a backend');
  assert.deepEqual([...await bodies(proxy.port, 10)], ['i1'], 'no traffic before it is ready');
  const readyAt = performance.now();
  await published.set('app', i2.address, 'healthy');
  await instance('i-2', i2, { readyAtMs: Date.now(), healthy: true });
  assert.ok(await eventually(() => proxy.proxy.pool('app')!.backend(i2.address) !== undefined && proxy.proxy.pool('app')!.health.view(i2.address).state === 'healthy', 3000), 'ready: a backend, with its healthy verdict');
  const REQUESTS = 100;
  const counts = new Map<string, number>();
  for (let i = 0; i < REQUESTS; i++) {
    const { body } = await get(proxy.port);
    counts.set(body, (counts.get(body) ?? 0) + 1);
  }
  const elapsedMs = performance.now() - readyAt;
  const weight = proxy.proxy.pool('app')!.report().find((backend) => backend.address === i2.address)!;
  // The ramp's factor now is at most max(10 %, elapsed / window); the share of a weight-f backend next to a weight-1 one is f / (1 + f).
  const factorBound = Math.max(0.1, Math.min(1, elapsedMs / WINDOW_MS));
  assert.ok(weight.effectiveWeight < weight.configuredWeight && weight.effectiveWeight <= weight.configuredWeight * factorBound + 1e-9, `ramping: effective weight ${weight.effectiveWeight} of ${weight.configuredWeight} after ${Math.round(elapsedMs)} ms`);
  const share = (counts.get('i2') ?? 0) / REQUESTS;
  assert.ok(share > 0, 'ready: it takes some traffic');
  assert.ok(share <= factorBound / (1 + factorBound) + 0.05, `but only a slow-start share: ${share} (bound ${(factorBound / (1 + factorBound) + 0.05).toFixed(3)}), not half`);
});
