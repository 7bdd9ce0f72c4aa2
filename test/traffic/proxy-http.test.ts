// HTTP semantics through the proxy against real backends on loopback: streaming both ways,
// chunked and content-length, HEAD/204/304, Expect: 100-continue, hop-by-hop headers, forwarding
// headers, request ids, WebSocket-style upgrades, a backend dying mid-response, timeouts, retries
// and their budget, the shed marker, routing, admission control and the admin API.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import type { Admission } from '../../src/traffic/proxy/admission.ts';
import { freeLoopbackPorts } from '../support/child-processes.ts';
import { eventually, pool, startBackend, startProxy } from './proxy-harness.ts';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  informational: number[];
}

function call(url: string, options: { method?: string; path?: string; headers?: OutgoingHttpHeaders; body?: Buffer | Buffer[] } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = new URL(options.path ?? '/', url);
    const informational: number[] = [];
    const req = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), informational }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('information', (info) => informational.push(info.statusCode));
    req.on('error', reject);
    const send = () => {
      if (Array.isArray(options.body)) for (const part of options.body) req.write(part);
      else if (options.body !== undefined) req.write(options.body);
      req.end();
    };
    if (options.headers?.expect === '100-continue') req.on('continue', send);
    else send();
  });
}

test('bodies stream both ways (chunked and content-length); HEAD, 204 and 304 have no body', async () => {
  const backend = await startBackend((req, res) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked back
      req.on('data', (chunk: Buffer) => res.write(chunk));
      req.on('end', () => res.end());
      return;
    }
    if (req.url === '/empty') return void res.writeHead(204).end();
    if (req.url === '/cached') return void res.writeHead(304, { etag: '"v1"' }).end();
    res.writeHead(200, { 'content-length': 11, 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const payload = randomBytes(3 * 1024 * 1024);
    const chunked = await call(proxy.url, { method: 'POST', path: '/echo', body: [payload.subarray(0, 1_000_000), payload.subarray(1_000_000)] });
    assert.equal(chunked.status, 200);
    assert.ok(chunked.body.equals(payload), 'a 3 MiB chunked upload comes back byte for byte');
    const sized = await call(proxy.url, { method: 'PUT', path: '/echo', headers: { 'content-length': payload.length }, body: payload });
    assert.ok(sized.body.equals(payload));
    const plain = await call(proxy.url, { path: '/plain' });
    assert.deepEqual([plain.status, plain.headers['content-length'], plain.body.toString()], [200, '11', 'hello world']);
    const head = await call(proxy.url, { method: 'HEAD', path: '/plain' });
    assert.deepEqual([head.status, head.headers['content-length'], head.body.length], [200, '11', 0]);
    const empty = await call(proxy.url, { path: '/empty' });
    assert.deepEqual([empty.status, empty.body.length], [204, 0]);
    const cached = await call(proxy.url, { path: '/cached', headers: { 'if-none-match': '"v1"' } });
    assert.deepEqual([cached.status, cached.headers.etag, cached.body.length], [304, '"v1"', 0]);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('hop-by-hop headers are removed both ways; X-Forwarded-* and a request id are added', async () => {
  let seen: IncomingHttpHeaders = {};
  const backend = await startBackend((req, res) => {
    seen = req.headers;
    res.writeHead(200, [['Connection', 'x-secret'], ['X-Secret', 'backend'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Keep-Alive', 'timeout=1']].flat()).end('ok');
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const reply = await call(proxy.url, { headers: { host: 'shop.example', connection: 'x-private', 'x-private': 'client', 'x-forwarded-for': '203.0.113.9', te: 'trailers', 'proxy-authorization': 'Basic x' } });
    assert.equal(reply.status, 200);
    assert.equal(seen['x-private'], undefined, 'a header named in Connection is not forwarded');
    assert.equal(seen.te, undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen.host, 'shop.example', 'Host is passed through');
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], 'shop.example');
    assert.match(String(seen['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(reply.headers['x-secret'], undefined, "a header named in the backend's Connection is not relayed");
    assert.deepEqual(reply.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers survive');
    await call(proxy.url, { headers: { 'x-request-id': 'given-42' } });
    assert.equal(seen['x-request-id'], 'given-42', "the client's request id is kept");
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('Expect: 100-continue gets a 100 before the body is sent', async () => {
  const backend = await startBackend((req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.end(`got ${length} bytes`));
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const reply = await call(proxy.url, { method: 'POST', headers: { expect: '100-continue', 'content-length': 5000 }, body: Buffer.alloc(5000, 1) });
    assert.deepEqual(reply.informational, [100]);
    assert.deepEqual([reply.status, reply.body.toString()], [200, 'got 5000 bytes']);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('an upgrade (WebSocket handshake) passes through, then bytes flow both ways', async () => {
  const backend = await startBackend((_req, res) => res.end('not an upgrade'));
  backend.server.on('upgrade', (req, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-seen-proto: ${req.headers['x-forwarded-proto']}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.from(chunk.toString().toUpperCase())));
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const socket = connect({ host: '127.0.0.1', port: proxy.proxy.trafficAddress.port });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.write('GET /chat HTTP/1.1\r\nhost: chat.example\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n');
    assert.ok(await eventually(() => received.includes('\r\n\r\n'), 8000), 'the 101 arrives');
    assert.match(received, /^HTTP\/1\.1 101 Switching Protocols/);
    assert.match(received, /x-seen-proto: http/);
    socket.write('hello over the tunnel');
    assert.ok(await eventually(() => received.includes('HELLO OVER THE TUNNEL'), 8000));
    socket.destroy();
    assert.ok(await eventually(() => proxy.proxy.requestsInFlight === 0, 8000), 'the tunnel is counted until it closes');
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a backend that dies mid-response gives the client a clean error, not a hang', async () => {
  const backend = await startBackend((req, res) => {
    res.writeHead(200, { 'content-length': 100_000 });
    res.write(Buffer.alloc(10_000, 0x61));
    setTimeout(() => req.socket.destroy(), 50);
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const started = performance.now();
    await assert.rejects(call(proxy.url), /aborted|socket hang up|ECONNRESET/);
    assert.ok(performance.now() - started < 5000);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a backend that never answers gets 504 after firstByteMs; one that goes silent mid-body is cut off after idleMs', async () => {
  const backend = await startBackend((req, res) => {
    if (req.url === '/silent-body') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('partial');
    }
    // otherwise: never answer
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address], { timeouts: { firstByteMs: 300, idleMs: 300 }, retries: { attempts: 0 } })] });
  try {
    const started = performance.now();
    const hung = await call(proxy.url, { path: '/hang' });
    assert.equal(hung.status, 504);
    assert.equal(hung.headers['x-concord-error'], 'CONCORD_E_PROXY_UPSTREAM_TIMEOUT');
    assert.match(hung.body.toString(), /sent no response within 300 ms/);
    assert.ok(performance.now() - started >= 250);
    await assert.rejects(call(proxy.url, { path: '/silent-body' }), /aborted|socket hang up|ECONNRESET/);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

for (const fastPath of [true, false]) {
  test(`a hung backend: an idempotent request is retried on another backend after firstByteMs, within the budget; a POST gets 504 (${fastPath ? 'the fast path' : 'node:http and undici'})`, async () => {
    const hung = await startBackend(() => {
      // never answers
    });
    const good = await startBackend((_req, res) => res.end('good'));
    const proxy = await startProxy({
      proxy: { fastPath },
      pools: [pool('web', [hung.address, good.address], { balance: 'round-robin', timeouts: { firstByteMs: 200 }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } })],
    });
    try {
      for (let i = 0; i < 4; i++) {
        const reply = await call(proxy.url, { path: `/get-${i}` });
        assert.deepEqual([reply.status, reply.body.toString()], [200, 'good'], 'every GET is answered, by the backend that answers');
      }
      assert.ok((hung.hits.get('/get-0') ?? 0) + (hung.hits.get('/get-1') ?? 0) + (hung.hits.get('/get-2') ?? 0) + (hung.hits.get('/get-3') ?? 0) >= 1, 'some GETs went to the hung backend first');
      const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
      assert.match(metrics, /concord_proxy_retries_total\{pool="web",reason="first-byte-timeout"\} [1-9]/);
      const statuses = new Set<number>();
      for (let i = 0; i < 4; i++) statuses.add((await call(proxy.url, { method: 'POST', path: '/post', body: Buffer.from('x') })).status);
      assert.ok(statuses.has(504), 'a POST to the hung backend is not retried: 504');
    } finally {
      await proxy.stop();
      await Promise.all([hung.close(), good.close()]);
    }
  });
}

for (const fastPath of [true, false]) {
  test(`a shed 503 is never retried by a proxy; a retriable status goes to another backend; POST is not retried (${fastPath ? 'the fast path' : 'node:http and undici'})`, async () => {
    const failing = await startBackend((req, res) => {
      if (req.url === '/shed') return void res.writeHead(503, { 'x-concord-shed': 'overload', 'retry-after': '1' }).end('shed');
      res.writeHead(503).end('failing');
    });
    const good = await startBackend((_req, res) => res.end('good'));
    const proxy = await startProxy({ proxy: { fastPath }, pools: [pool('web', [failing.address, good.address], { balance: 'round-robin', outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } })] });
    try {
      for (let i = 0; i < 10; i++) {
        const reply = await call(proxy.url, { path: '/get' });
        assert.deepEqual([reply.status, reply.body.toString()], [200, 'good']);
      }
      assert.ok((failing.hits.get('/get') ?? 0) >= 3, 'the failing backend was tried and its answers retried');
      const posts = await Promise.all(Array.from({ length: 6 }, () => call(proxy.url, { method: 'POST', path: '/post', headers: { 'content-length': 2 }, body: Buffer.from('hi') })));
      assert.ok(posts.some((reply) => reply.status === 503), 'a POST that reached a failing backend is not retried');
      const shedHitsBefore = good.hits.get('/shed') ?? 0;
      const shed = await Promise.all(Array.from({ length: 6 }, () => call(proxy.url, { path: '/shed' })));
      const shedReplies = shed.filter((reply) => reply.headers['x-concord-shed'] === 'overload');
      assert.ok(shedReplies.length >= 1, 'the shed 503 reaches the client');
      for (const reply of shedReplies) assert.equal(reply.status, 503);
      assert.equal((good.hits.get('/shed') ?? 0) - shedHitsBefore + shedReplies.length, 6, 'each shed request was answered once, never retried');
      const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
      assert.match(metrics, /concord_proxy_retries_total\{pool="web",reason="status"\} [1-9]/);
    } finally {
      await proxy.stop();
      await failing.close();
      await good.close();
    }
  });
}

test('requests that never reached a backend (refused) are retried for any method, outside the budget', async () => {
  const [closedPort] = await freeLoopbackPorts(1);
  const good = await startBackend((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => res.end(`got ${body}`));
  });
  const proxy = await startProxy({
    pools: [pool('web', [`127.0.0.1:${closedPort}`, good.address], {
      balance: 'round-robin', retries: { budgetPercent: 0, minRetryConcurrency: 0 }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 },
    })],
  });
  try {
    for (let i = 0; i < 6; i++) {
      const reply = await call(proxy.url, { method: 'POST', headers: { 'content-length': 5 }, body: Buffer.from('hello') });
      assert.deepEqual([reply.status, reply.body.toString()], [200, 'got hello']);
    }
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /concord_proxy_retries_total\{pool="web",reason="connect-failure"\} [1-9]/);
  } finally {
    await proxy.stop();
    await good.close();
  }
});

test('an exhausted retry budget passes the failure through and is counted', async () => {
  const failing = await startBackend((_req, res) => res.writeHead(502).end('bad'));
  const good = await startBackend((_req, res) => res.end('good'));
  const proxy = await startProxy({
    pools: [pool('web', [failing.address, good.address], {
      balance: 'round-robin', retries: { budgetPercent: 0, minRetryConcurrency: 0 }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 },
    })],
  });
  try {
    const replies = await Promise.all(Array.from({ length: 4 }, () => call(proxy.url)));
    assert.ok(replies.some((reply) => reply.status === 502));
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /concord_proxy_retry_budget_exhausted_total\{pool="web"\} [1-9]/);
  } finally {
    await proxy.stop();
    await failing.close();
    await good.close();
  }
});

test('routes choose the pool by host and path prefix; no match is a 404', async () => {
  const api = await startBackend((_req, res) => res.end('api'));
  const web = await startBackend((_req, res) => res.end('web'));
  const proxy = await startProxy({
    pools: [pool('api', [api.address]), pool('web', [web.address])],
    routes: [{ host: '*.example.com', pathPrefix: '/api', pool: 'api' }, { host: 'www.example.com', pool: 'web' }],
  });
  try {
    assert.equal((await call(proxy.url, { path: '/api/users', headers: { host: 'eu.example.com:8080' } })).body.toString(), 'api');
    assert.equal((await call(proxy.url, { path: '/', headers: { host: 'www.example.com' } })).body.toString(), 'web');
    const none = await call(proxy.url, { path: '/', headers: { host: 'other.org' } });
    assert.equal(none.status, 404);
    assert.match(none.body.toString(), /no route for host other\.org/);
    assert.equal(none.headers['x-concord-error'], 'CONCORD_E_PROXY_NO_ROUTE');
  } finally {
    await proxy.stop();
    await api.close();
    await web.close();
  }
});

test('admission control runs before balancing: a rejected request never reaches a backend', async () => {
  const backend = await startBackend((_req, res) => res.end('ok'));
  const released: { rttMs: number; dropped: boolean }[] = [];
  const admission: Admission = {
    admit: (request) => request.headers['x-concord-priority'] === 'sheddable'
      ? { admitted: false, status: 503, headers: { 'retry-after': '1', 'x-concord-shed': 'sheddable' }, reason: 'shed: over the concurrency limit' }
      : { admitted: true, release: (outcome) => released.push(outcome) },
  };
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] }, { admission });
  try {
    const shed = await call(proxy.url, { path: '/x', headers: { 'x-concord-priority': 'sheddable' } });
    assert.deepEqual([shed.status, shed.headers['x-concord-shed'], shed.headers['retry-after']], [503, 'sheddable', '1']);
    assert.equal(backend.hits.get('/x'), undefined);
    assert.equal((await call(proxy.url, { path: '/x' })).status, 200);
    assert.equal(released.length, 1);
    assert.equal(released[0]!.dropped, false);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('admin API: /backends, /events, /metrics, drain and undrain; the access log has one line per request', async () => {
  const a = await startBackend((_req, res) => res.end('a'));
  const b = await startBackend((_req, res) => res.end('b'));
  const proxy = await startProxy({ pools: [pool('web', [a.address, b.address], { balance: 'round-robin' })] });
  try {
    for (let i = 0; i < 4; i++) await call(proxy.url, { path: '/before' });
    const drained = await fetch(`${proxy.adminUrl}/pools/web/backends/${a.address}/drain`, { method: 'POST' });
    assert.equal(drained.status, 202);
    assert.equal(((await drained.json()) as { state: string }).state, 'drained', 'an idle backend is drained at once');
    for (let i = 0; i < 4; i++) assert.equal((await call(proxy.url, { path: '/after' })).body.toString(), 'b');
    const report = (await (await fetch(`${proxy.adminUrl}/backends`)).json()) as { pools: { backends: { address: string; state: string }[] }[] };
    assert.deepEqual(report.pools[0]!.backends.map((backend) => backend.state), ['drained', 'healthy']);
    const events = (await (await fetch(`${proxy.adminUrl}/events`)).json()) as { events: { seq: number; kind: string; backend: string }[] };
    assert.deepEqual(events.events.map((event) => [event.kind, event.backend]), [['drain-started', a.address], ['drained', a.address]]);
    const later = (await (await fetch(`${proxy.adminUrl}/events?after=${events.events[1]!.seq}`)).json()) as { events: unknown[] };
    assert.deepEqual(later.events, []);
    await fetch(`${proxy.adminUrl}/pools/web/backends/${a.address}/undrain`, { method: 'POST' });
    const hitsBefore = a.hits.get('/again') ?? 0;
    for (let i = 0; i < 4; i++) await call(proxy.url, { path: '/again' });
    assert.ok((a.hits.get('/again') ?? 0) > hitsBefore, 'undrained: back in rotation');
    assert.equal((await fetch(`${proxy.adminUrl}/pools/web/backends/127.0.0.1:1/drain`, { method: 'POST' })).status, 404);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`concord_proxy_requests_total\\{pool="web",backend="${b.address}",status="200"\\} [1-9]`));
    assert.match(metrics, /concord_proxy_request_duration_seconds_bucket\{le="0.0005",pool="web"\}/);
    assert.match(metrics, new RegExp(`concord_proxy_backend_state\\{pool="web",backend="${a.address}",state="healthy"\\} 1`));
    assert.match(metrics, /concord_proxy_active_requests\{pool="web",backend=/);
    proxy.proxy.log.flush();
    assert.ok(await eventually(() => proxy.log.lines.filter((line) => line.msg === 'request').length === 12, 8000));
    const line = proxy.log.lines.find((entry) => entry.msg === 'request')!;
    for (const key of ['requestId', 'method', 'path', 'client', 'pool', 'backend', 'status', 'attempts', 'durationMs']) assert.ok(key in line, key);
  } finally {
    await proxy.stop();
    await a.close();
    await b.close();
  }
});

test('stopping drains: in-flight requests finish, new connections are refused', async () => {
  const backend = await startBackend((_req, res) => {
    setTimeout(() => res.end('slow but fine'), 300);
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const inFlight = Promise.all(Array.from({ length: 5 }, () => call(proxy.url)));
    assert.ok(await eventually(() => proxy.proxy.requestsInFlight === 5, 8000));
    const stopping = proxy.proxy.stop(5000);
    const replies = await inFlight;
    for (const reply of replies) assert.deepEqual([reply.status, reply.body.toString()], [200, 'slow but fine']);
    await stopping;
    await assert.rejects(call(proxy.url), /ECONNREFUSED/);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('with no other backend to try, the backend\'s own error reaches the client', async () => {
  const only = await startBackend((_req, res) => res.writeHead(502, { 'x-from': 'backend' }).end('backend says 502'));
  const proxy = await startProxy({ pools: [pool('web', [only.address], { outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } })] });
  try {
    const reply = await call(proxy.url);
    assert.deepEqual([reply.status, reply.headers['x-from'], reply.body.toString()], [502, 'backend', 'backend says 502']);
    assert.equal(only.hits.get('/'), 1, 'not retried on the same backend');
  } finally {
    await proxy.stop();
    await only.close();
  }
});
