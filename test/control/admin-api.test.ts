// The control plane's admin API against the dashboard's contract (src/ui/api-types.ts), end to
// end: a real store, a real ControlPlane, a real proxy fed from the store, a real backend. The
// overview's shape is checked field by field (types, not only presence), the proxy's request
// counter must rise with the requests sent through it, the stream must carry both kinds of
// events, and the freeze and drain buttons must reach the store (read back from it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainKey } from '../../src/control/store-keys.ts';
import type { BackendOverview, Overview, TimelineEntry } from '../../src/ui/api-types.ts';
import { eventually } from '../traffic/proxy-harness.ts';
import { startPlaneStack } from './plane-stack.ts';

const REQUESTS = 20;
const STATES = ['healthy', 'unhealthy', 'ejected', 'draining', 'drained', 'unknown'];

type Json = Record<string, unknown>;

function isIso(value: unknown): boolean {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) && new Date(value).toISOString() === value;
}

/** Every field the contract names, with its type; extra fields are refused too (the page must not depend on them). */
function assertOverviewShape(overview: Json): void {
  assert.deepEqual(Object.keys(overview).sort(), ['frozen', 'generatedAt', 'pools', 'proxies', 'store']);
  assert.ok(isIso(overview.generatedAt), 'generatedAt is an ISO time');
  const store = overview.store as Json;
  for (const member of store.members as Json[]) {
    assert.deepEqual(Object.keys(member).sort(), ['clientUrls', 'id', 'isLeader', 'isLearner', 'name']);
    assert.match(member.id as string, /^[0-9a-f]+$/, 'member ids are hexadecimal strings');
    assert.equal(typeof member.name, 'string');
    assert.ok(Array.isArray(member.clientUrls) && member.clientUrls.every((url) => typeof url === 'string'));
    assert.equal(typeof member.isLeader, 'boolean');
    assert.equal(typeof member.isLearner, 'boolean');
  }
  for (const proxy of overview.proxies as Json[]) {
    assert.deepEqual(Object.keys(proxy).sort(), ['address', 'id', 'p50Ms', 'p99Ms', 'requestsPerSecond', 'requestsTotal']);
    assert.equal(typeof proxy.id, 'string');
    assert.match(proxy.address as string, /^[^:]+:\d+$/);
    assert.equal(typeof proxy.requestsTotal, 'number');
    assert.equal(typeof proxy.requestsPerSecond, 'number');
    for (const field of ['p50Ms', 'p99Ms']) assert.ok(proxy[field] === null || typeof proxy[field] === 'number', `${field} is a number or null`);
  }
  for (const pool of overview.pools as Json[]) {
    assert.deepEqual(Object.keys(pool).sort(), ['autoscale', 'backends', 'balance', 'name', 'shed']);
    assert.equal(typeof pool.name, 'string');
    assert.equal(typeof pool.balance, 'string');
    for (const backend of pool.backends as Json[]) {
      const keys = Object.keys(backend).filter((key) => key !== 'zone').sort();
      assert.deepEqual(keys, ['address', 'inflight', 'lastCheck', 'latencyEwmaMs', 'slowStartFactor', 'state', 'weight']);
      assert.ok(STATES.includes(backend.state as string), `state ${String(backend.state)}`);
      assert.equal(typeof backend.weight, 'number');
      assert.ok(typeof backend.slowStartFactor === 'number' && backend.slowStartFactor >= 0 && backend.slowStartFactor <= 1);
      assert.equal(typeof backend.inflight, 'number');
      assert.ok(backend.latencyEwmaMs === null || typeof backend.latencyEwmaMs === 'number');
      const check = backend.lastCheck as Json | null;
      if (check !== null) {
        assert.deepEqual(Object.keys(check).sort(), ['at', 'detail', 'ok']);
        assert.ok(isIso(check.at));
        assert.equal(typeof check.ok, 'boolean');
        assert.equal(typeof check.detail, 'string');
      }
    }
    const shed = pool.shed as Json | null;
    if (shed !== null) {
      assert.deepEqual(Object.keys(shed).sort(), ['algorithm', 'inflight', 'limit', 'queueLength', 'rejected', 'shedding']);
      assert.deepEqual(Object.keys(shed.rejected as Json).sort(), ['critical', 'default', 'sheddable']);
      assert.equal(typeof shed.shedding, 'boolean');
    }
    assert.equal(pool.autoscale, null, 'a pool without autoscale: has autoscale null');
  }
  const frozen = overview.frozen as Json;
  assert.equal(typeof frozen.global, 'boolean');
}

function assertEventShape(event: Json): void {
  assert.ok(isIso(event.at), 'at is an ISO time');
  assert.equal(typeof event.kind, 'string');
  assert.equal(typeof event.summary, 'string');
  for (const key of Object.keys(event)) assert.ok(['at', 'kind', 'pool', 'backend', 'summary', 'details'].includes(key), `no field ${key} outside the contract`);
}

async function getJson(url: string): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.json() as Json };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-concord-operator': 'alice' },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: await response.json() as Json };
}

/** Reads server-sent events until `wanted` says enough or the time is up; returns what came. */
async function readStream(url: string, timeoutMs: number, wanted: (events: { name: string; data: Json }[]) => boolean, whileOpen: () => Promise<void>): Promise<{ name: string; data: Json }[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const received: { name: string; data: Json }[] = [];
  try {
    const response = await fetch(url, { signal: controller.signal });
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = response.body!.getReader();
    let buffer = '';
    let acted = false;
    while (!wanted(received)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += Buffer.from(value).toString('utf8');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (name !== undefined && data !== undefined) received.push({ name, data: JSON.parse(data) as Json });
      }
      if (!acted && received.some((event) => event.name === 'overview')) {
        acted = true;
        await whileOpen();
      }
    }
    await reader.cancel().catch(() => undefined);
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return received;
}

test('the admin API answers the dashboard contract against a real store, proxy and backend; freeze and drain reach the store', async (t) => {
  const stack = await startPlaneStack();
  t.after(() => stack.stop());
  const { admin, plane, backend, proxyUrl } = stack;
  const api = plane.adminUrl;
  const overview = async () => (await getJson(`${api}/api/overview`)).body as unknown as Overview;
  const webBackend = async (): Promise<BackendOverview | undefined> => (await overview()).pools.find((pool) => pool.name === 'web')?.backends[0];

  // The overview: the store with its leader, the pool with its backend healthy, the proxy.
  assert.ok(await eventually(async () => (await webBackend())?.state === 'healthy' && (await overview()).proxies.length === 1, 10_000), 'the backend is healthy and the proxy registered');
  const first = await getJson(`${api}/api/overview`);
  assert.equal(first.status, 200);
  assertOverviewShape(first.body);
  const before = first.body as unknown as Overview;
  assert.equal(before.store.members.length, 1);
  assert.equal(before.store.members.filter((member) => member.isLeader).length, 1, 'the store has a leader');
  assert.deepEqual(before.pools.map((pool) => pool.name), ['web']);
  assert.equal(before.pools[0]!.backends[0]!.address, backend.address);
  assert.notEqual(before.pools[0]!.backends[0]!.lastCheck, null, 'the shared checker\'s last probe is shown');
  assert.equal(before.pools[0]!.shed?.algorithm, 'fixed');
  assert.equal(before.proxies[0]!.id, 'proxy-1');
  assert.deepEqual(before.frozen, { global: false });

  // requestsTotal rises by the requests sent through the proxy.
  const startTotal = before.proxies[0]!.requestsTotal;
  for (let i = 0; i < REQUESTS; i++) assert.equal((await fetch(`${proxyUrl}/r${i}`, { signal: AbortSignal.timeout(5000) })).status, 200);
  assert.ok(await eventually(async () => (await overview()).proxies[0]!.requestsTotal >= startTotal + REQUESTS, 5000), `requestsTotal rose by at least ${REQUESTS}`);
  const after = await overview();
  assert.ok(after.proxies[0]!.p99Ms !== null, 'latency percentiles once requests were served');

  // The stream: an overview at once, and a timeline event as it happens (the freeze below).
  const streamed = await readStream(`${api}/api/stream`, 8000,
    (events) => events.some((event) => event.name === 'overview') && events.some((event) => event.name === 'event' && event.data.kind === 'freeze-set'),
    async () => assert.equal((await post(`${api}/api/autoscale/freeze`, { reason: 'deploy in progress' })).status, 200));
  const streamedOverview = streamed.find((event) => event.name === 'overview');
  assert.ok(streamedOverview !== undefined, 'event: overview on the stream');
  assertOverviewShape(streamedOverview.data);
  const streamedEvent = streamed.find((event) => event.name === 'event' && event.data.kind === 'freeze-set');
  assert.ok(streamedEvent !== undefined, `event: event for the freeze on the stream (got ${streamed.map((event) => event.name).join(', ')})`);
  assertEventShape(streamedEvent.data);

  // Freeze sets the kill switch's key in the store; unfreeze deletes it.
  const freezeKv = await admin.get('/concord/autoscale/freeze');
  assert.ok(freezeKv !== undefined, 'the global freeze key is set');
  assert.deepEqual([JSON.parse(freezeKv.value).reason, JSON.parse(freezeKv.value).by], ['deploy in progress', 'alice']);
  assert.deepEqual((await overview()).frozen, { global: true, by: 'alice', reason: 'deploy in progress' });
  assert.deepEqual((await post(`${api}/api/autoscale/freeze`, { pool: 'web', reason: 'canary' })).body, { ok: true });
  assert.ok((await admin.get('/concord/autoscale/freeze/web')) !== undefined, 'a pool freeze sets the pool\'s key');
  assert.deepEqual((await post(`${api}/api/autoscale/unfreeze`, { pool: 'web' })).body, { ok: true });
  assert.deepEqual((await post(`${api}/api/autoscale/unfreeze`, {})).body, { ok: true });
  assert.equal(await admin.get('/concord/autoscale/freeze'), undefined, 'unfreeze deletes the global key');
  assert.equal(await admin.get('/concord/autoscale/freeze/web'), undefined, 'and the pool\'s');

  // Drain and undrain: the key in the store, the proxy's view in the overview.
  const address = encodeURIComponent(backend.address);
  assert.deepEqual((await post(`${api}/api/pools/web/backends/${address}/drain`, undefined)), { status: 200, body: { ok: true } });
  assert.ok((await admin.get(drainKey('web', backend.address))) !== undefined, 'the drain key is set');
  assert.ok(await eventually(async () => ['draining', 'drained'].includes((await webBackend())?.state ?? ''), 5000), 'the proxy drains the backend');
  assert.deepEqual((await post(`${api}/api/pools/web/backends/${address}/undrain`, undefined)), { status: 200, body: { ok: true } });
  assert.equal(await admin.get(drainKey('web', backend.address)), undefined, 'undrain deletes the key');
  assert.ok(await eventually(async () => (await webBackend())?.state === 'healthy', 5000), 'the backend is back in rotation');

  // The timeline: the operators' actions, newest last, filtered by pool.
  const { status, body } = await getJson(`${api}/api/events?since=1h&limit=100`);
  assert.equal(status, 200);
  const events = body.events as TimelineEntry[];
  for (const event of events) assertEventShape(event as unknown as Json);
  const kinds = events.map((event) => event.kind);
  for (const kind of ['freeze-set', 'drain-requested', 'undrain-requested']) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`);
  assert.ok(kinds.indexOf('drain-requested') < kinds.indexOf('undrain-requested'), 'newest last');
  const drainEvent = events.find((event) => event.kind === 'drain-requested')!;
  assert.deepEqual([drainEvent.pool, drainEvent.backend], ['web', backend.address]);
  const poolEvents = ((await getJson(`${api}/api/events?pool=web&limit=100`)).body.events as TimelineEntry[]);
  assert.ok(poolEvents.length > 0 && poolEvents.every((event) => event.pool === 'web'), 'pool= keeps that pool\'s events only');
  assert.equal(((await getJson(`${api}/api/events?limit=1`)).body.events as unknown[]).length, 1, 'limit= bounds the answer');

  // Errors: the contract's shape and stable codes.
  const problems: [Promise<{ status: number; body: Json }>, number, string][] = [
    [getJson(`${api}/api/nothing-here`), 404, 'CONCORD_E_API_NOT_FOUND'],
    [post(`${api}/api/autoscale/freeze`, { pool: 'web' }), 400, 'CONCORD_E_FREEZE_INVALID'],
    [post(`${api}/api/autoscale/freeze`, ['not', 'an', 'object']), 400, 'CONCORD_E_API_BAD_REQUEST'],
    [post(`${api}/api/pools/web/backends/127.0.0.1%3A1/drain`, undefined), 404, 'CONCORD_E_DRAIN_UNKNOWN_BACKEND'],
    [post(`${api}/api/pools/nope/backends/${address}/drain`, undefined), 404, 'CONCORD_E_DRAIN_UNKNOWN_BACKEND'],
    [getJson(`${api}/api/autoscale/freeze`), 405, 'CONCORD_E_API_METHOD_NOT_ALLOWED'],
    [getJson(`${api}/api/events?limit=0`), 400, 'CONCORD_E_API_BAD_REQUEST'],
  ];
  for (const [answer, wantedStatus, code] of problems) {
    const { status: got, body: error } = await answer;
    assert.equal(got, wantedStatus, code);
    assert.deepEqual(Object.keys(error), ['error']);
    assert.equal((error.error as Json).code, code);
    assert.ok(typeof (error.error as Json).message === 'string' && ((error.error as Json).message as string).length > 0);
  }

  // The dashboard's page is served by the same server.
  const page = await fetch(`${api}/`, { signal: AbortSignal.timeout(5000) });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await page.text(), /<script[^>]+src="\/ui\//);
});
