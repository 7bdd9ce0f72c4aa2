// The fast path end to end, with real sockets on loopback: requests outside its strict subset are
// handed to node:http on the same connection (and answered as node:http answers them, counted by
// reason); request-smuggling attempts never reach a backend as a second request; a slow head is
// cut off (slowloris); pipelined requests are answered in order; responses are relayed with their
// own framing (length, chunked with trailers, until close), interim 1xx dropped, and answers
// that cannot be read without doubt refused with a 502; upstream connections are reused and
// capped; a client that leaves mid-response stops the upstream exchange.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2cServer } from 'node:http2';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { request } from 'node:http';
import { eventually, pool, rawExchange, startBackend, startProxy, type TestBackend, type TestProxy } from './proxy-harness.ts';

/** Status codes of the HTTP responses in `text`, in order. */
function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => Number(match[1]));
}

async function handOffs(proxy: TestProxy): Promise<Map<string, number>> {
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  return new Map([...metrics.matchAll(/concord_proxy_fast_path_handoffs_total\{reason="([^"]+)"\} (\d+)/g)].map((match) => [match[1]!, Number(match[2])]));
}

/** A backend that echoes what it saw: method, path, body, and the headers the proxy forwarded. */
async function echoBackend(): Promise<TestBackend> {
  return startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: req.url, httpVersion: req.httpVersion, body: Buffer.concat(chunks).toString('latin1'), headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
}

function jsonBodies(text: string): { method: string; path: string; httpVersion: string; body: string; headers: Record<string, string> }[] {
  return [...text.matchAll(/\r\n\r\n(\{.*?\})(?=HTTP\/1\.1|$)/gs)].map((match) => JSON.parse(match[1]!));
}

test('requests outside the fast path\'s subset are handed to node:http on the same connection, answered as node:http answers them, and counted', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  const port = proxy.proxy.trafficAddress.port;
  try {
    // Accepted by node:http: forwarded by the Node path.
    const chunked = await rawExchange(port, ['POST /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n']);
    assert.deepEqual(statuses(chunked.text), [200]);
    assert.equal(jsonBodies(chunked.text)[0]!.body, 'hello');
    const old = await rawExchange(port, ['GET /old HTTP/1.0\r\nHost: a\r\n\r\n']);
    assert.deepEqual(statuses(old.text), [200]);
    assert.equal(old.closed, true, 'the connection closes, as HTTP/1.0 without keep-alive wants');
    const absolute = await rawExchange(port, ['GET http://a/abs HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.equal(jsonBodies(absolute.text)[0]!.path, 'http://a/abs');
    const big = await rawExchange(port, [`GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'b'.repeat(10_000)}\r\n\r\n`]);
    assert.equal(jsonBodies(big.text)[0]!.headers['x-big']!.length, 10_000, 'a head over the fast path\'s 8 KiB but within Node\'s 16 KiB is served by Node');
    // Refused by node:http: its 400, and nothing reaches the backend.
    const noHost = await rawExchange(port, ['GET /nohost HTTP/1.1\r\n\r\n']);
    assert.deepEqual(statuses(noHost.text), [400]);
    const folded = await rawExchange(port, ['GET /folded HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n']);
    assert.deepEqual(statuses(folded.text), [400]);
    assert.equal(backend.hits.get('/nohost'), undefined);
    assert.equal(backend.hits.get('/folded'), undefined);
    const counted = await handOffs(proxy);
    for (const reason of ['transfer-encoding', 'version', 'target', 'head-too-large', 'no-host', 'obs-fold']) assert.equal(counted.get(reason), 1, reason);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a connection keeps working across a hand-off: fast requests, then one node:http must serve, then more', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const reply = await rawExchange(proxy.proxy.trafficAddress.port, [
      'GET /first HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST /second HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'GET /third HTTP/1.1\r\nHost: a\r\n\r\n',
    ], { gapMs: 100, idleMs: 800 });
    assert.deepEqual(jsonBodies(reply.text).map((seen) => [seen.path, seen.body]), [['/first', ''], ['/second', 'abc'], ['/third', '']]);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('request smuggling attempts: the backend never sees a second, hidden request, nor anything its own parser refuses', async () => {
  const backend = await echoBackend();
  const refusedByBackend: string[] = [];
  backend.server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    refusedByBackend.push(error.code ?? error.message);
    socket.destroy();
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  const port = proxy.proxy.trafficAddress.port;
  const hidden = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
  const attempts = [
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length + 5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${hidden}0\r\n\r\n`,
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +${hidden.length}\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length} 0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0x${hidden.length.toString(16)}\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\nHost: a\nContent-Length: ${hidden.length}\n\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\rContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
    `POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length}\r\nConnection: content-length\r\n\r\n${hidden}`,
    `GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
  ];
  try {
    for (const attempt of attempts) {
      const reply = await rawExchange(port, [attempt], { idleMs: 600 });
      assert.equal(backend.hits.get('/smuggled'), undefined, `smuggled through: ${JSON.stringify(attempt)}`);
      for (const seen of jsonBodies(reply.text)) assert.notEqual(seen.path, '/smuggled');
    }
    assert.ok((backend.hits.get('/a') ?? 0) >= 1, 'the well-formed ones were forwarded');
    assert.deepEqual(refusedByBackend, [], 'the proxy forwarded something node:http refuses');
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('slowloris: a head not complete within headersTimeoutMs gets 408 and the connection is closed; so is a connection that never sends one', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ proxy: { headersTimeoutMs: 400 }, pools: [pool('web', [backend.address])] });
  const port = proxy.proxy.trafficAddress.port;
  try {
    const started = performance.now();
    const drip = ['GET / HTTP/1.1\r\n', 'Host: a\r\n', ...Array.from({ length: 40 }, (_, i) => `X-${i}: y\r\n`)];
    const slow = await rawExchange(port, drip, { gapMs: 50, idleMs: 5000 });
    const elapsedMs = performance.now() - started;
    assert.equal(slow.closed, true);
    assert.match(slow.text, /^HTTP\/1\.1 408/);
    assert.ok(elapsedMs >= 380 && elapsedMs < 1900, `closed after ${Math.round(elapsedMs)} ms (headersTimeoutMs 400, 40 lines at 50 ms would take 2 s)`);
    const silentStarted = performance.now();
    const silent = await rawExchange(port, [], { idleMs: 5000 });
    assert.equal(silent.closed, true);
    assert.ok(performance.now() - silentStarted < 3000);
    assert.equal(backend.hits.size, 0);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('an idle keep-alive connection is closed after clientIdleMs', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ proxy: { clientIdleMs: 300 }, pools: [pool('web', [backend.address])] });
  try {
    const started = performance.now();
    const reply = await rawExchange(proxy.proxy.trafficAddress.port, ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'], { idleMs: 5000 });
    assert.deepEqual(statuses(reply.text), [200]);
    assert.equal(reply.closed, true);
    assert.ok(performance.now() - started >= 280);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('pipelined requests are answered in order, bodies and all; Connection: close ends the connection after its response', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const reply = await rawExchange(proxy.proxy.trafficAddress.port, [
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloDELETE /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n',
    ]);
    assert.deepEqual(jsonBodies(reply.text).map((seen) => [seen.method, seen.path, seen.body]), [['GET', '/1', ''], ['POST', '/2', 'hello'], ['DELETE', '/3', '']]);
    assert.equal(reply.closed, true);
    assert.match(reply.text, /connection: close/i);
    assert.equal(backend.hits.get('/4'), undefined, 'nothing after a Connection: close request is served');
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a large upload and download stream through with backpressure, byte for byte', async () => {
  const backend = await startBackend((req, res) => {
    if (req.method === 'POST') {
      let length = 0;
      req.on('data', (chunk: Buffer) => (length += chunk.length));
      req.on('end', () => res.end(`got ${length}`));
      return;
    }
    const block = Buffer.alloc(1 << 16, 0x61);
    res.writeHead(200, { 'content-length': 64 * block.length });
    let sent = 0;
    const pump = () => {
      while (sent < 64) {
        sent++;
        if (!res.write(block)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const upload = Buffer.alloc(3_000_000, 0x62);
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = request(`${proxy.url}/up`, { method: 'POST', headers: { 'content-length': upload.length } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(upload);
    });
    assert.equal(uploaded, `got ${upload.length}`);
    const downloaded = await new Promise<number>((resolve, reject) => {
      request(`${proxy.url}/down`, (res) => {
        let length = 0;
        // A slow reader: the proxy must hold the backend back rather than buffer everything.
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve(length));
        res.on('error', reject);
      }).on('error', reject).end();
    });
    assert.equal(downloaded, 64 * (1 << 16));
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

/** A backend speaking raw bytes: `answer` gets each request's head and writes whatever it wants. */
async function rawBackend(answer: (socket: Socket, head: string) => void): Promise<{ server: TcpServer; address: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        answer(socket, head);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server, address: `127.0.0.1:${port}`, connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('responses are relayed with their own framing: chunked with trailers, until close, interim 1xx dropped, HEAD without body', async () => {
  const backend = await rawBackend((socket, head) => {
    const path = head.split(' ')[1];
    if (path === '/chunked') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n');
    else if (path === '/close') socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    else if (path === '/hints') socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else if (path === '/head') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  const port = proxy.proxy.trafficAddress.port;
  try {
    const chunked = await rawExchange(port, ['GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.match(chunked.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(chunked.text.endsWith('\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n'), JSON.stringify(chunked.text));
    assert.doesNotMatch(chunked.text, /^trailer:/im, 'Trailer is hop-by-hop');
    const untilClose = await rawExchange(port, ['GET /close HTTP/1.1\r\nHost: a\r\n\r\n']);
    assert.equal(untilClose.closed, true);
    assert.match(untilClose.text, /connection: close\r\n\r\nuntil the end$/);
    const hints = await rawExchange(port, ['GET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.deepEqual(statuses(hints.text), [200]);
    assert.ok(hints.text.endsWith('\r\n\r\nok'));
    const head = await rawExchange(port, ['HEAD /head HTTP/1.1\r\nHost: a\r\n\r\nHEAD /head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.deepEqual(statuses(head.text), [200, 200], 'two answers to two HEADs: no body was waited for');
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a backend answer that cannot be read without doubt is refused with a 502, never relayed', async () => {
  const answers: Record<string, string> = {
    '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '/two-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello',
    '/bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 5\n\nhello',
    '/split': 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n',
    '/fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 0\r\nContent-Length: 0\r\n\r\n',
    '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
    '/101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n',
  };
  const backend = await rawBackend((socket, head) => socket.write(answers[head.split(' ')[1]!] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
  const proxy = await startProxy({ pools: [pool('web', [backend.address], { retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } })] });
  try {
    for (const path of Object.keys(answers)) {
      const reply = await rawExchange(proxy.proxy.trafficAddress.port, [`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`]);
      assert.deepEqual(statuses(reply.text), [502], `${path}: ${JSON.stringify(reply.text)}`);
      assert.match(reply.text, /x-concord-error: CONCORD_E_PROXY_UPSTREAM_FAILED/);
      assert.match(reply.text, /invalid-response/);
    }
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('upstream connections are kept alive and reused, and maxConnectionsPerBackend caps them', async () => {
  const backend = await rawBackend((socket) => setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 20));
  const proxy = await startProxy({ pools: [pool('web', [backend.address], { maxConnectionsPerBackend: 2 })] });
  try {
    for (let i = 0; i < 5; i++) assert.deepEqual(statuses((await rawExchange(proxy.proxy.trafficAddress.port, ['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'])).text), [200]);
    assert.equal(backend.connections(), 1, 'sequential requests share one upstream connection');
    const replies = await Promise.all(Array.from({ length: 12 }, () => fetch(`${proxy.url}/`).then(async (response) => [response.status, await response.text()])));
    assert.deepEqual(replies, Array.from({ length: 12 }, () => [200, 'ok']));
    assert.equal(backend.connections(), 2, 'concurrent requests wait for one of at most 2 connections');
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('a client that leaves mid-response stops the exchange: the upstream connection is closed and the request logged as 499', async () => {
  let upstreamClosed = false;
  const backend = await rawBackend((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial');
    socket.on('close', () => (upstreamClosed = true));
  });
  const proxy = await startProxy({ pools: [pool('web', [backend.address])] });
  try {
    const socket = connect(proxy.proxy.trafficAddress.port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.write('GET /leave HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.ok(await eventually(() => received.includes('partial'), 5000));
    socket.destroy();
    assert.ok(await eventually(() => upstreamClosed, 5000), 'the upstream connection is closed');
    assert.ok(await eventually(() => proxy.proxy.requestsInFlight === 0, 5000));
    proxy.proxy.log.flush();
    assert.ok(await eventually(() => proxy.log.lines.some((line) => line.msg === 'request' && line.path === '/leave' && line.status === 499), 5000));
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('an HTTP/1.1 request for an h2c pool is handed to the Node path, which speaks HTTP/2 to the backend', async () => {
  const backend = createH2cServer((req, res) => res.end(`h2 saw ${req.url}`));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(backend.address() as { port: number }).port}`;
  const proxy = await startProxy({ pools: [pool('grpc', [address], { upstreamProtocol: 'h2c' })] });
  try {
    const reply = await fetch(`${proxy.url}/over-h2`);
    assert.equal(await reply.text(), 'h2 saw /over-h2');
    assert.equal((await handOffs(proxy)).get('pool-protocol'), 1);
  } finally {
    await proxy.stop();
    await new Promise((resolve) => backend.close(resolve));
  }
});

test('with proxy.fastPath false, node:http serves everything and nothing is handed off', async () => {
  const backend = await echoBackend();
  const proxy = await startProxy({ proxy: { fastPath: false }, pools: [pool('web', [backend.address])] });
  try {
    const reply = await rawExchange(proxy.proxy.trafficAddress.port, ['POST /n HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi'], { idleMs: 500 });
    assert.deepEqual(jsonBodies(reply.text).map((seen) => [seen.path, seen.body]), [['/n', 'hi']]);
    assert.match(reply.text, /keep-alive: timeout=/i, "node:http's own response headers");
    assert.equal((await handOffs(proxy)).size, 0);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});
