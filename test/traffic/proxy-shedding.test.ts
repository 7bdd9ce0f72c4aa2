// Load shedding through the real proxy (HTTP on loopback, real backends): a refused request is a
// 503 with x-concord-shed and Retry-After that never reaches a backend; lower classes are shed
// while critical requests still get in; the pool's health probes are never shed; the operator's
// override on the admin port turns shedding off and pins the limit; per-backend circuit breakers
// refuse past their maximum; metrics and events show it all.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { validateConfig } from '../../src/control/config.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import { startAssembledProxy, type AssembledProxy } from '../../src/traffic/proxy/proxy-assembly.ts';
import { eventually, LogSink, startBackend, type TestBackend } from './proxy-harness.ts';
import { ProxyMetricsSource } from '../../src/autoscale/controller/proxy-metrics-source.ts';

/** A backend that answers /healthz at once and holds every other request until released. */
async function holdingBackend(): Promise<TestBackend & { held: ServerResponse[]; releaseAll(): void }> {
  const held: ServerResponse[] = [];
  const backend = await startBackend((req, res) => {
    if (req.url === '/healthz') res.end('ok');
    else held.push(res);
  });
  return Object.assign(backend, {
    held,
    releaseAll: () => {
      for (const res of held.splice(0)) res.end('done');
    },
  });
}

async function startShedProxy(backend: TestBackend, shed: Record<string, unknown>, fastPath = true): Promise<AssembledProxy & { url: string; adminUrl: string }> {
  const config = validateConfig({
    proxy: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', fastPath },
    pools: [{ name: 'web', backends: [{ address: backend.address }], health: { http: { path: '/healthz' }, intervalMs: 60_000, timeoutMs: 1000 }, shed }],
  });
  const running = await startAssembledProxy({ config, seed: 1, log: new AccessLog(new LogSink() as unknown as ConstructorParameters<typeof AccessLog>[0]) });
  return Object.assign(running, { url: `http://127.0.0.1:${running.proxy.trafficAddress.port}`, adminUrl: `http://127.0.0.1:${running.proxy.adminAddress.port}` });
}

/** A holding backend behind a shedding proxy, both stopped when the test ends. */
async function shedProxyWithHeldBackend(t: TestContext, shed: Record<string, unknown>, fastPath = true): Promise<{ backend: Awaited<ReturnType<typeof holdingBackend>>; proxy: Awaited<ReturnType<typeof startShedProxy>> }> {
  const backend = await holdingBackend();
  const proxy = await startShedProxy(backend, shed, fastPath);
  t.after(async () => {
    backend.releaseAll();
    await proxy.stop(1000);
    await backend.close();
  });
  return { backend, proxy };
}

interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

/** Requests the proxy has sent (or is sending) to the pool's only backend. */
async function activeRequests(adminUrl: string): Promise<number> {
  const report = await (await fetch(`${adminUrl}/backends`)).json() as { pools: { backends: { activeRequests: number }[] }[] };
  return report.pools[0]!.backends[0]!.activeRequests;
}

function send(url: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Reply> {
  return fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) }).then(async (response) => ({ status: response.status, headers: response.headers, body: await response.text() }));
}

test('a refused request is a 503 with x-concord-shed and Retry-After, and never reaches the backend', async (t) => {
  const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'fixed', fixed: { limit: 2 }, queue: { maxLength: 0 }, retryAfterSeconds: 3 });
  const admitted = [send(`${proxy.url}/a`), send(`${proxy.url}/b`)];
  assert.ok(await eventually(() => backend.held.length === 2, 5000), 'two requests reach the backend');
  const refused = await send(`${proxy.url}/c`);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-concord-shed'), 'concurrency-limit');
  assert.equal(refused.headers.get('retry-after'), '3');
  assert.equal(refused.body, 'concurrency-limit\n', 'the reason, framed by a content-length that fits it (a keep-alive connection stays usable)');
  assert.equal(backend.hits.get('/c'), undefined, 'the refused request never reached the backend');
  backend.releaseAll();
  assert.deepEqual((await Promise.all(admitted)).map((reply) => reply.status), [200, 200]);

  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  assert.match(metrics, /concord_shed_rejected_total\{pool="web",reason="concurrency-limit",priority="default"\} 1/, 'admission metrics are merged into /metrics');
  assert.match(metrics, /concord_proxy_requests_total\{pool="web",backend="none",status="503"\} 1/);
  const events = (await (await fetch(`${proxy.adminUrl}/events`)).json()) as { events: { kind: string; backend: string; detail: string }[] };
  const started = events.events.find((event) => event.kind === 'shed-started');
  assert.ok(started !== undefined, 'a shedding episode is an event in /events');
  assert.equal(started.backend, '*');
  assert.match(started.detail, /refusing default requests \(concurrency-limit\) at limit 2/);
});

test('lower classes are shed first; critical requests use the share reserved for them', async (t) => {
  const { backend, proxy } = await shedProxyWithHeldBackend(t, {
    algorithm: 'fixed', fixed: { limit: 4 }, queue: { maxLength: 0 },
    priority: { header: 'x-concord-priority', default: 'default', reservedShare: { critical: 0.5, default: 0, sheddable: 0 } },
  });
  const sheddable = (path: string) => send(`${proxy.url}${path}`, { 'x-concord-priority': 'sheddable' });
  const pending = [sheddable('/s1'), sheddable('/s2')];
  assert.ok(await eventually(() => backend.held.length === 2, 5000));
  const third = await sheddable('/s3');
  assert.deepEqual([third.status, third.headers.get('x-concord-shed')], [503, 'concurrency-limit'], 'half the limit is kept for critical requests');
  pending.push(send(`${proxy.url}/c1`, { 'x-concord-priority': 'critical' }), send(`${proxy.url}/c2`, { 'x-concord-priority': 'critical' }));
  assert.ok(await eventually(() => backend.held.length === 4, 5000), 'critical requests get the reserved slots');
  const fifth = await send(`${proxy.url}/c3`, { 'x-concord-priority': 'critical' });
  assert.equal(fifth.status, 503, 'past the whole limit, even critical requests are refused');
  backend.releaseAll();
  assert.deepEqual((await Promise.all(pending)).map((reply) => reply.status), [200, 200, 200, 200]);
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  assert.match(metrics, /concord_shed_rejected_total\{pool="web",reason="concurrency-limit",priority="sheddable"\} 1/);
  assert.match(metrics, /concord_shed_rejected_total\{pool="web",reason="concurrency-limit",priority="critical"\} 1/);
});

test('health probes bypass shedding: the pool\'s health path and the checker\'s user agent pass a full limit', async (t) => {
  const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'fixed', fixed: { limit: 1 }, queue: { maxLength: 0 } });
  const pending = send(`${proxy.url}/busy`);
  assert.ok(await eventually(() => backend.held.length === 1, 5000));
  assert.equal((await send(`${proxy.url}/other`)).status, 503, 'the limit is full');
  const probe = await send(`${proxy.url}/healthz`);
  assert.deepEqual([probe.status, probe.body], [200, 'ok'], 'the pool\'s health path is exempt');
  assert.equal(backend.hits.get('/healthz'), 1);
  const agentProbe = send(`${proxy.url}/deep-check`, { 'user-agent': 'concord-health-check' });
  assert.ok(await eventually(() => backend.held.length === 2, 5000), 'a request with the checker\'s user agent is exempt too');
  backend.releaseAll();
  await Promise.all([pending, agentProbe]);
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  assert.match(metrics, /concord_shed_exempt_total\{pool="web"\} 2/);
  // The admin port is a separate listener: never behind admission control.
  assert.equal((await fetch(`${proxy.adminUrl}/backends`)).status, 200);
});

test('the operator override: off admits everything, fixed pins the limit, configured returns to the algorithm', async (t) => {
  const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'fixed', fixed: { limit: 1 }, queue: { maxLength: 0 } });
  const override = async (body: unknown) => {
    const response = await fetch(`${proxy.adminUrl}/shed/override`, { method: 'PUT', body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { pools: { pool: string; limit: number; override: { mode: string } }[]; error?: string } };
  };
  const off = await override({ pool: 'web', mode: 'off' });
  assert.equal(off.status, 200);
  assert.equal(off.body.pools[0]!.override.mode, 'off');
  const pending = [send(`${proxy.url}/1`), send(`${proxy.url}/2`), send(`${proxy.url}/3`)];
  assert.ok(await eventually(() => backend.held.length === 3, 5000), 'with shedding off, all three get through');
  backend.releaseAll();
  await Promise.all(pending);

  assert.equal((await override({ pool: 'web', mode: 'fixed', limit: 2 })).body.pools[0]!.limit, 2);
  const two = [send(`${proxy.url}/4`), send(`${proxy.url}/5`)];
  assert.ok(await eventually(() => backend.held.length === 2, 5000));
  assert.equal((await send(`${proxy.url}/6`)).status, 503, 'pinned at 2');
  backend.releaseAll();
  await Promise.all(two);
  assert.equal((await override({ pool: 'web', mode: 'configured' })).body.pools[0]!.limit, 1);
  const missing = await override({ pool: 'nowhere', mode: 'off' });
  assert.equal(missing.status, 404);
  assert.match(missing.body.error!, /no pool named 'nowhere'; pools: web/);
  const state = (await (await fetch(`${proxy.adminUrl}/shed`)).json()) as { pools: { pool: string; algorithm: string }[] };
  assert.deepEqual(state.pools.map((pool) => [pool.pool, pool.algorithm]), [['web', 'fixed']]);
  const events = (await (await fetch(`${proxy.adminUrl}/events`)).json()) as { events: { kind: string; detail: string }[] };
  assert.deepEqual(events.events.filter((event) => event.kind === 'shed-override-changed').map((event) => event.detail), [
    'override off (was configured)', 'override fixed at 2 (was off)', 'override configured (was fixed at 2)',
  ]);
});

for (const fastPath of [true, false]) {
  const path = fastPath ? 'the fast path' : 'node:http and undici';
  test(`a per-backend circuit breaker refuses requests past its maximum with a shed 503 (${path})`, async (t) => {
    const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'none', circuitBreaker: { maxRequests: 1 } }, fastPath);
    const first = send(`${proxy.url}/1`);
    assert.ok(await eventually(() => backend.held.length === 1, 5000));
    const second = await send(`${proxy.url}/2`);
    assert.deepEqual([second.status, second.headers.get('x-concord-shed')], [503, 'circuit-breaker']);
    assert.ok(second.body.length > 0, 'the refusal has a body, framed by its own length');
    assert.equal(backend.hits.get('/2'), undefined);
    backend.releaseAll();
    assert.equal((await first).status, 200);
    const third = send(`${proxy.url}/3`);
    assert.ok(await eventually(() => backend.held.length === 1, 5000), 'once the first finished, the breaker lets the next one through');
    backend.releaseAll();
    assert.equal((await third).status, 200);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /concord_shed_rejected_total\{pool="web",reason="circuit-breaker",priority="default"\} 1/);
  });

  test(`the pending-requests circuit breaker counts requests waiting for a connection (${path})`, async (t) => {
    const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'none', circuitBreaker: { maxConnections: 1, maxPendingRequests: 1 } }, fastPath);
    const first = send(`${proxy.url}/1`);
    assert.ok(await eventually(() => backend.held.length === 1, 5000), 'the first request holds the only connection');
    const second = send(`${proxy.url}/2`);
    // The second waits in the proxy for the connection; the breaker sees it as pending.
    assert.ok(await eventually(async () => (await activeRequests(proxy.adminUrl)) === 2, 5000), 'the second request reached the proxy');
    const third = await send(`${proxy.url}/3`, {}, 3000);
    assert.deepEqual([third.status, third.headers.get('x-concord-shed')], [503, 'circuit-breaker'], 'a request past maxPendingRequests is refused');
    assert.equal(backend.held.length, 1, 'maxConnections: 1 keeps the backend at one request at a time');
    backend.releaseAll();
    assert.equal((await first).status, 200);
    assert.ok(await eventually(() => backend.held.length === 1, 5000), 'the waiting request gets the connection once it is free');
    backend.releaseAll();
    assert.equal((await second).status, 200);
  });
}

test('the autoscaler scales on offered load including shed requests: the proxy reports the requests it shed beside those it served, and the autoscaler\'s metrics source reads them', async (t) => {
  const { backend, proxy } = await shedProxyWithHeldBackend(t, { algorithm: 'fixed', fixed: { limit: 1 }, queue: { maxLength: 0 } });
  const held = send(`${proxy.url}/held`);
  assert.ok(await eventually(() => backend.held.length === 1, 5000));
  const REFUSED = 20;
  for (let i = 0; i < REFUSED; i++) assert.equal((await send(`${proxy.url}/${i}`)).status, 503);
  backend.releaseAll();
  assert.equal((await held).status, 200);
  const source = new ProxyMetricsSource({ urls: [`${proxy.adminUrl}/backends`] });
  let shedPerSecond: number | undefined;
  // Rates are differences over the proxy's sampling window: they appear once it holds two samples.
  assert.ok(await eventually(async () => {
    shedPerSecond = (await source.sample('web'))?.pool?.shedPerSecond;
    return shedPerSecond !== undefined && shedPerSecond > 0;
  }, 8000), `the sample carries the shed requests (shedPerSecond ${shedPerSecond})`);
  const report = await (await fetch(`${proxy.adminUrl}/backends`)).json() as { pools: { shedPerSecond: number; requestsPerSecond: number }[] };
  assert.ok(report.pools[0]!.shedPerSecond > 0, 'the proxy\'s /backends reports shedPerSecond');
});
