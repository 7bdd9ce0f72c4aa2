// Admission control in a real HTTP front on loopback, against a backend whose responses the test
// releases by hand: refusals never reach the backend, queued requests get the next free slot in
// priority order, deadlines, client quotas, exemptions, overrides through the admin port, metrics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { parseShedConfig } from '../../../src/control/shed-config.ts';
import { createAdmission, type AdmissionEvent, type PoolAdmission } from '../../../src/traffic/admission/admission.ts';
import { ShedMetrics } from '../../../src/traffic/admission/shed-metrics.ts';
import { get, startHeldBackend, startTestFront, until, type HeldBackend, type Reply, type TestFront } from './test-front.ts';

interface Setup {
  admission: PoolAdmission;
  backend: HeldBackend;
  front: TestFront;
  agent: Agent;
  metrics: ShedMetrics;
  events: AdmissionEvent[];
  close(): Promise<void>;
}

async function setUp(shed: unknown): Promise<Setup> {
  const metrics = new ShedMetrics();
  const events: AdmissionEvent[] = [];
  const admission = createAdmission({ pool: 'web', settings: parseShedConfig(shed), metrics, onEvent: (event) => events.push(event) });
  const backend = await startHeldBackend();
  const front = await startTestFront(new Map([['web', admission]]), backend.url);
  const agent = new Agent({ connections: 100 });
  return {
    admission, backend, front, agent, metrics, events,
    close: async () => {
      backend.respondAll();
      admission.close();
      await agent.close();
      await front.close();
      await backend.close();
    },
  };
}

const FIXED_2 = { algorithm: 'fixed', fixed: { limit: 2 }, queue: { maxLength: 1, maxWaitMs: 10_000 }, priority: { reservedShare: { critical: 0, default: 0 } } };

test('over the limit a request waits, over the queue it is refused with 503 and never reaches the backend', async () => {
  const s = await setUp(FIXED_2);
  try {
    const first = get(s.agent, `${s.front.url}/1`);
    const second = get(s.agent, `${s.front.url}/2`);
    await until(() => s.backend.arrivals.length === 2, 'two requests at the backend');
    const third = get(s.agent, `${s.front.url}/3`);
    await until(() => s.admission.snapshot().queueLength === 1, 'the third request queued');
    const refused = await get(s.agent, `${s.front.url}/4`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['x-concord-shed'], 'queue-full');
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.body, '');
    assert.deepEqual(s.backend.arrivals, ['/1', '/2'], 'the refused request never touched the backend');
    s.backend.respondOne();
    assert.equal((await first).status, 200);
    await until(() => s.backend.arrivals.length === 3, 'the queued request forwarded once a slot freed');
    assert.equal(s.backend.arrivals[2], '/3');
    s.backend.respondAll();
    assert.deepEqual([(await second).status, (await third).status], [200, 200]);
    await until(() => s.admission.snapshot().inflight === 0, 'every slot released');
    const metricsText = await s.metrics.registry.metrics();
    assert.match(metricsText, /concord_shed_rejected_total\{pool="web",reason="queue-full",priority="default"\} 1/);
    assert.match(metricsText, /concord_shed_admitted_total\{pool="web",priority="default"\} 3/);
    assert.match(metricsText, /concord_shed_limit\{pool="web"\} 2/);
    assert.match(metricsText, /concord_shed_inflight\{pool="web"\} 0/);
    assert.deepEqual(s.events.map((e) => [e.type, e.pool]), [['shedding-started', 'web']]);
    assert.equal(s.events[0]!.type === 'shedding-started' && s.events[0]!.reason, 'queue-full');
  } finally {
    await s.close();
  }
});

test('a waiter is refused at its deadline (maxWaitMs) with queue-timeout', async () => {
  const s = await setUp({ ...FIXED_2, fixed: { limit: 1 }, queue: { maxLength: 5, maxWaitMs: 50 } });
  try {
    const first = get(s.agent, `${s.front.url}/1`);
    await until(() => s.backend.arrivals.length === 1, 'the first request at the backend');
    const startedMs = performance.now();
    const waited = await get(s.agent, `${s.front.url}/2`);
    const elapsedMs = performance.now() - startedMs;
    assert.equal(waited.status, 503);
    assert.equal(waited.headers['x-concord-shed'], 'queue-timeout');
    assert.ok(elapsedMs >= 45, `refused after ${elapsedMs} ms, before its 50 ms deadline`);
    assert.deepEqual(s.backend.arrivals, ['/1']);
    s.backend.respondOne();
    assert.equal((await first).status, 200);
  } finally {
    await s.close();
  }
});

test('the priority header: critical displaces a queued sheddable request and gets the next slot', async () => {
  const s = await setUp({ ...FIXED_2, fixed: { limit: 1 } });
  try {
    const running = get(s.agent, `${s.front.url}/running`);
    await until(() => s.backend.arrivals.length === 1, 'the first request at the backend');
    const sheddable = get(s.agent, `${s.front.url}/sheddable`, { 'x-concord-priority': 'sheddable' });
    await until(() => s.admission.snapshot().queueLength === 1, 'the sheddable request queued');
    const critical = get(s.agent, `${s.front.url}/critical`, { 'x-concord-priority': 'critical' });
    const displaced = await sheddable;
    assert.equal(displaced.status, 503);
    assert.equal(displaced.headers['x-concord-shed'], 'displaced');
    s.backend.respondOne();
    await until(() => s.backend.arrivals.length === 2, 'the critical request forwarded');
    assert.equal(s.backend.arrivals[1], '/critical');
    s.backend.respondOne();
    assert.deepEqual([(await running).status, (await critical).status], [200, 200]);
    assert.match(await s.metrics.registry.metrics(), /concord_shed_rejected_total\{pool="web",reason="displaced",priority="sheddable"\} 1/);
  } finally {
    await s.close();
  }
});

test('a client over its quota gets 429 with Retry-After; exempt paths pass a full limit', async () => {
  const s = await setUp({
    ...FIXED_2, fixed: { limit: 1 }, queue: { maxLength: 0 },
    clientRateLimit: { keyHeader: 'x-api-key', ratePerSecond: 0.5, burst: 1 },
    exempt: [{ path: '/healthz' }],
  });
  try {
    const replies: Reply[] = [];
    const first = get(s.agent, `${s.front.url}/a`, { 'x-api-key': 'k1' });
    await until(() => s.backend.arrivals.length === 1, 'the first request at the backend');
    replies.push(await get(s.agent, `${s.front.url}/b`, { 'x-api-key': 'k1' }));
    assert.equal(replies[0]!.status, 429);
    assert.equal(replies[0]!.headers['x-concord-shed'], 'client-rate-limit');
    assert.equal(replies[0]!.headers['retry-after'], '2', 'one token at 0.5/s takes 2 s');
    const other = await get(s.agent, `${s.front.url}/c`, { 'x-api-key': 'k2' });
    assert.equal(other.status, 503, 'another key has tokens, but the limit (1) is full and there is no queue');
    assert.equal(other.headers['x-concord-shed'], 'concurrency-limit');
    const health = get(s.agent, `${s.front.url}/healthz`);
    await until(() => s.backend.arrivals.includes('/healthz'), 'the health check at the backend');
    assert.equal(s.admission.snapshot().inflight, 1, 'exempt requests are not counted');
    s.backend.respondAll();
    assert.deepEqual([(await first).status, (await health).status], [200, 200]);
    assert.equal(s.events.filter((e) => e.type === 'shedding-started').length, 1, 'the 429 started no episode; the 503 did');
  } finally {
    await s.close();
  }
});

test('the admin override turns shedding off and pins a fixed limit at runtime; GET /shed shows it', async () => {
  const s = await setUp({ ...FIXED_2, fixed: { limit: 1 }, queue: { maxLength: 0 } });
  const admin = new Agent();
  try {
    const put = async (body: unknown) => {
      const { request } = await import('undici');
      const response = await request(`${s.front.adminUrl}/shed/override`, { method: 'PUT', body: JSON.stringify(body), dispatcher: admin });
      return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> };
    };
    const held = [get(s.agent, `${s.front.url}/1`)];
    await until(() => s.backend.arrivals.length === 1, 'one request in flight');
    assert.equal((await get(s.agent, `${s.front.url}/refused`)).status, 503);
    assert.equal((await put({ pool: 'web', mode: 'off' })).status, 200);
    for (let i = 2; i <= 4; i++) held.push(get(s.agent, `${s.front.url}/${i}`));
    await until(() => s.backend.arrivals.length === 4, 'every request forwarded while shedding is off');
    assert.equal((await put({ mode: 'fixed', limit: 5 })).status, 200, 'without a pool: every pool');
    assert.equal(s.admission.snapshot().limit, 5);
    held.push(get(s.agent, `${s.front.url}/5`));
    await until(() => s.backend.arrivals.length === 5, 'the fifth request under the pinned limit of 5');
    assert.equal((await get(s.agent, `${s.front.url}/6`)).headers['x-concord-shed'], 'concurrency-limit');
    const bad = await put({ pool: 'web', mode: 'fixed' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.error), /limit/);
    assert.equal((await put({ pool: 'api', mode: 'off' })).status, 404);
    const state = await get(admin, `${s.front.adminUrl}/shed`);
    const parsed = JSON.parse(state.body) as { pools: { pool: string; limit: number; override: { mode: string } }[]; events: { type: string }[] };
    assert.deepEqual(parsed.pools.map((p) => [p.pool, p.limit, p.override.mode]), [['web', 5, 'fixed']]);
    assert.deepEqual(parsed.events.map((e) => e.type), ['shedding-started', 'override-changed', 'override-changed']);
    s.backend.respondAll();
    for (const reply of await Promise.all(held)) assert.equal(reply.status, 200);
  } finally {
    await admin.close();
    await s.close();
  }
});

test('a client that goes away while queued frees its place; close() refuses the waiters left', async () => {
  const s = await setUp({ ...FIXED_2, fixed: { limit: 1 }, queue: { maxLength: 2, maxWaitMs: 10_000 } });
  try {
    const first = get(s.agent, `${s.front.url}/1`);
    await until(() => s.backend.arrivals.length === 1, 'one request in flight');
    const leaving = new AbortController();
    const gone = get(s.agent, `${s.front.url}/gone`, {}, leaving.signal).catch((error: unknown) => error);
    const staying = get(s.agent, `${s.front.url}/staying`);
    await until(() => s.admission.snapshot().queueLength === 2, 'two waiting');
    leaving.abort();
    await gone;
    await until(() => s.admission.snapshot().queueLength === 1, 'the abandoned place freed');
    s.admission.close();
    const refused = await staying;
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['x-concord-shed'], 'closing');
    s.backend.respondOne();
    assert.equal((await first).status, 200);
    assert.deepEqual(s.backend.arrivals, ['/1']);
  } finally {
    await s.close();
  }
});
