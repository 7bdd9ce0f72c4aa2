// Metrics scraped from the proxies' admin endpoints (real HTTP servers on loopback standing in for
// two proxies): combined per backend and per pool, a bad or silent proxy left out and reported once,
// and no sample at all when no proxy answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { ProxyMetricsSource } from '../../src/autoscale/controller/proxy-metrics-source.ts';

async function serve(answer: () => { status?: number; body: string; delayMs?: number }): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    const { status = 200, body, delayMs = 0 } = answer();
    setTimeout(() => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body);
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/backends`, server };
}

const proxyA = {
  pools: [{
    name: 'web', shedPerSecond: 2, errorRatio: 0.1, latencyMs: { mean: 10, p50: 8, p95: 20, p99: 40 }, external: { queue: 5 },
    backends: [{ address: '10.0.0.1:80', healthy: true, inflight: 2, requestsPerSecond: 30 }, { address: '10.0.0.2:80', healthy: false, inflight: 0, requestsPerSecond: 0 }],
  }, { name: 'api', backends: [] }],
};
const proxyB = {
  pools: [{
    name: 'web', shedPerSecond: 1, errorRatio: 0, latencyMs: { mean: 20, p50: 9, p95: 50, p99: 45 }, external: { queue: 7 },
    backends: [{ address: '10.0.0.1:80', healthy: false, inflight: 3, requestsPerSecond: 10 }, { address: '10.0.0.3:80' }],
  }],
};

test('two proxies combine: in-flight and requests/s add, healthy if any says so, weighted error ratio and mean, highest percentiles', async (t) => {
  const a = await serve(() => ({ body: JSON.stringify(proxyA) }));
  const b = await serve(() => ({ body: JSON.stringify(proxyB) }));
  t.after(() => {
    a.server.close();
    b.server.close();
  });
  const source = new ProxyMetricsSource({ urls: [a.url, b.url], nowMs: () => 1_000 });
  const sample = (await source.sample('web'))!;
  assert.equal(sample.sampledAtMs, 1_000, 'the scrape time, on the controller\'s clock');
  assert.deepEqual(sample.backends, [
    { address: '10.0.0.1:80', healthy: true, inflight: 5, requestsPerSecond: 40 },
    { address: '10.0.0.2:80', healthy: false, inflight: 0, requestsPerSecond: 0 },
    { address: '10.0.0.3:80' },
  ]);
  assert.equal(sample.pool!.shedPerSecond, 3);
  assert.equal(sample.pool!.errorRatio, 0.1 * 30 / 40);
  assert.deepEqual(sample.pool!.latencyMs, { mean: (10 * 30 + 20 * 10) / 40, p50: 9, p95: 50, p99: 45 });
  assert.deepEqual(sample.pool!.external, { queue: 7 });
  const api = (await source.sample('api'))!;
  assert.equal(api.pool, undefined, 'a pool without shed, error and latency figures has no pool metrics');
  assert.deepEqual(await source.sample('unknown'), { sampledAtMs: 1_000, backends: [] });
});

test('a proxy that is silent, too talkative or wrong is left out and reported once, then once more when it recovers; none answering: no sample', async (t) => {
  let mode: 'ok' | 'bad-json' | 'bad-shape' | 'slow' | 'huge' | 'error' = 'bad-json';
  const flaky = await serve(() => {
    switch (mode) {
      case 'ok': return { body: JSON.stringify(proxyB) };
      case 'bad-json': return { body: '{"pools": [' };
      case 'bad-shape': return { body: JSON.stringify({ pools: [{ name: 'web', backends: [{ address: 'x', inflight: -1 }] }] }) };
      case 'slow': return { body: JSON.stringify(proxyB), delayMs: 2_000 };
      case 'huge': return { body: JSON.stringify({ pools: [], padding: 'x'.repeat(5_000) }) };
      case 'error': return { status: 500, body: '{}' };
    }
  });
  const good = await serve(() => ({ body: JSON.stringify(proxyA) }));
  t.after(() => {
    flaky.server.close();
    good.server.close();
  });
  const problems: string[] = [];
  let now = 0;
  const source = new ProxyMetricsSource({ urls: [flaky.url, good.url], timeoutMs: 300, maxResponseBytes: 4_096, nowMs: () => (now += 10_000), onProblem: (message) => problems.push(message) });
  assert.deepEqual((await source.sample('web'))!.backends.map((b) => b.address), ['10.0.0.1:80', '10.0.0.2:80'], 'the good proxy still counts');
  await source.sample('web');
  assert.equal(problems.length, 1, 'reported once while it stays bad');
  assert.match(problems[0]!, /left out of the metrics: the answer is not JSON/);
  for (const [bad, pattern] of [['bad-shape', /pools\.0\.backends\.0\.inflight/], ['slow', /no answer within 300 ms/], ['huge', /larger than 4096 bytes/], ['error', /HTTP 500/]] as const) {
    mode = 'ok';
    await source.sample('web');
    mode = bad;
    await source.sample('web');
    assert.match(problems[problems.length - 1]!, pattern);
    assert.match(problems[problems.length - 2]!, /answers again/);
  }
  const silent = new ProxyMetricsSource({ urls: [flaky.url], timeoutMs: 300, nowMs: () => (now += 10_000) });
  mode = 'error';
  assert.equal(await silent.sample('web'), undefined, 'no proxy answers: a metrics outage');
  assert.throws(() => new ProxyMetricsSource({ urls: ['127.0.0.1:7071'] }), /not an http:\/\/ or https:\/\/ URL/);
});
