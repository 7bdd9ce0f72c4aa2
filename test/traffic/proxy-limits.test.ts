// The proxy's resource limits (docs/proxy.md, "Resource limits") with real sockets on loopback and
// real backends: request heads over proxy.maxHeaderBytes get 431 on the fast path and on node:http;
// bodies over a pool's maxRequestBodyBytes get 413, declared ones before anything is forwarded and
// chunked ones as they stream; connections over proxy.maxClientConnections are closed at once.
// Every refusal is counted in concord_proxy_refused_total{limit}.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { eventually, pool, rawExchange, startBackend, startProxy, type TestBackend, type TestProxy } from './proxy-harness.ts';

async function refused(proxy: TestProxy, limit: string): Promise<number> {
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  return Number(new RegExp(`concord_proxy_refused_total\\{limit="${limit}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
}

/** A backend that answers with the number of body bytes it received. */
function countingBackend(): Promise<TestBackend> {
  return startBackend((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.writeHead(200, { 'content-length': String(bytes).length }).end(String(bytes)));
  });
}

for (const fastPath of [true, false]) {
  test(`proxy.maxHeaderBytes: a longer request head gets 431 with its code (fastPath ${fastPath}); a shorter one is served`, async () => {
    const backend = await countingBackend();
    const proxy = await startProxy({ proxy: { maxHeaderBytes: 2048, fastPath }, pools: [pool('web', [backend.address])] });
    try {
      const port = proxy.proxy.trafficAddress.port;
      const small = await rawExchange(port, [`GET / HTTP/1.1\r\nhost: a\r\nx-pad: ${'p'.repeat(1000)}\r\nconnection: close\r\n\r\n`]);
      assert.match(small.text, /^HTTP\/1\.1 200 /);
      const large = await rawExchange(port, [`GET / HTTP/1.1\r\nhost: a\r\nx-pad: ${'p'.repeat(3000)}\r\n\r\n`]);
      assert.match(large.text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
      assert.match(large.text, /x-concord-error: CONCORD_E_PROXY_HEADERS_TOO_LARGE/);
      assert.match(large.text, /over the proxy's limit of 2048 bytes \(proxy\.maxHeaderBytes\)/);
      assert.equal(large.closed, true, 'the connection is closed after a 431');
      assert.equal(backend.hits.get('/'), 1, 'the oversized request never reached the backend');
      assert.equal(await refused(proxy, 'maxHeaderBytes'), 1);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });
}

test('maxRequestBodyBytes per pool: a declared length over it gets 413 before forwarding; a chunked body is cut off once it passes the limit', async () => {
  const backend = await countingBackend();
  const proxy = await startProxy({
    proxy: { maxRequestBodyBytes: 0 },
    pools: [pool('small', [backend.address], { maxRequestBodyBytes: 1000 }), pool('open', [backend.address])],
    routes: [{ pathPrefix: '/small', pool: 'small' }, { pathPrefix: '/', pool: 'open' }],
  });
  try {
    const port = proxy.proxy.trafficAddress.port;
    const declared = await rawExchange(port, [`POST /small HTTP/1.1\r\nhost: a\r\ncontent-length: 2000\r\n\r\n${'b'.repeat(2000)}`]);
    assert.match(declared.text, /^HTTP\/1\.1 413 /);
    assert.match(declared.text, /CONCORD_E_PROXY_BODY_TOO_LARGE: request body over the limit of 1000 bytes \(pools\[small\]\.maxRequestBodyBytes\)/);
    assert.equal(backend.hits.get('/small'), undefined, 'a declared oversized body is refused before anything is forwarded');

    const chunk = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
    const streamed = await rawExchange(port, [
      'POST /small HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n', chunk('c'.repeat(600)), chunk('c'.repeat(600)), chunk('c'.repeat(600)), '0\r\n\r\n',
    ]);
    assert.match(streamed.text, /^HTTP\/1\.1 413 /);
    assert.match(streamed.text, /x-concord-error: CONCORD_E_PROXY_BODY_TOO_LARGE/);
    assert.equal(streamed.closed, true, 'the connection closes: the rest of the body is not read');

    const within = await rawExchange(port, ['POST /small HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n', chunk('d'.repeat(500)), '0\r\n\r\n']);
    assert.match(within.text, /^HTTP\/1\.1 200 [^]*\r\n\r\n500$/);
    const otherPool = await rawExchange(port, [`POST /big HTTP/1.1\r\nhost: a\r\ncontent-length: 2000\r\nconnection: close\r\n\r\n${'b'.repeat(2000)}`]);
    assert.match(otherPool.text, /^HTTP\/1\.1 200 [^]*\r\n\r\n2000$/, 'a pool without a limit of its own takes proxy.maxRequestBodyBytes (0: none)');
    assert.equal(await refused(proxy, 'maxRequestBodyBytes'), 2);
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

test('proxy.maxClientConnections: a connection over the bound is closed at once and counted; the open ones are served', async () => {
  const backend = await countingBackend();
  const proxy = await startProxy({ proxy: { maxClientConnections: 2 }, pools: [pool('web', [backend.address])] });
  const sockets: Socket[] = [];
  try {
    const port = proxy.proxy.trafficAddress.port;
    for (let i = 0; i < 2; i++) {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    const over = await rawExchange(port, ['GET / HTTP/1.1\r\nhost: a\r\n\r\n']);
    assert.deepEqual(over, { text: '', closed: true });
    assert.ok(await eventually(async () => (await refused(proxy, 'maxClientConnections')) === 1, 5_000));
    sockets[0]!.destroy();
    assert.ok(await eventually(async () => {
      const answer = await rawExchange(port, ['GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n']);
      return answer.text.startsWith('HTTP/1.1 200 ');
    }, 5_000), 'a slot freed by a closed connection is used again');
  } finally {
    for (const socket of sockets) socket.destroy();
    await proxy.stop();
    await backend.close();
  }
});
