// TLS termination: one listener speaks HTTPS with HTTP/1.1 and HTTP/2 (chosen by ALPN), forwards to
// plain HTTP/1.1 backends with X-Forwarded-Proto: https, and Host taken from HTTP/2's :authority.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect, constants } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pool, startBackend, startProxy } from './proxy-harness.ts';

function selfSignedCertificate(dir: string): { certFile: string; keyFile: string } | undefined {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const result = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return result.status === 0 ? { certFile, keyFile } : undefined;
}

test('HTTPS with HTTP/1.1 and HTTP/2 (ALPN) in front of HTTP/1.1 backends', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-tls-'));
  const tls = selfSignedCertificate(dir);
  if (tls === undefined) {
    t.skip('needs openssl to make a test certificate');
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const seen: { proto: string | undefined; host: string | undefined; version: string }[] = [];
  const backend = await startBackend((req, res) => {
    seen.push({ proto: req.headers['x-forwarded-proto'] as string | undefined, host: req.headers.host, version: req.httpVersion });
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': 'one' }).end(`hello ${req.method} ${req.url}`);
  });
  const proxy = await startProxy({ proxy: { tls }, pools: [pool('web', [backend.address])] });
  try {
    const port = proxy.proxy.trafficAddress.port;
    const viaHttp1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/one', rejectUnauthorized: false, servername: 'localhost', agent: false, headers: { host: 'shop.example' } }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual([viaHttp1.status, viaHttp1.body], [200, 'hello GET /one']);
    assert.deepEqual(seen.at(-1), { proto: 'https', host: 'shop.example', version: '1.1' });

    const session = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' });
    try {
      const viaHttp2 = await new Promise<{ status: number; body: string; backendHeader: unknown }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/two', ':authority': 'api.example', 'content-type': 'text/plain' });
        let status = 0;
        let backendHeader: unknown;
        let body = '';
        stream.on('response', (headers) => {
          status = Number(headers[constants.HTTP2_HEADER_STATUS]);
          backendHeader = headers['x-backend'];
        });
        stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
        stream.on('end', () => resolve({ status, body, backendHeader }));
        stream.on('error', reject);
        stream.end('payload');
      });
      assert.deepEqual([viaHttp2.status, viaHttp2.body, viaHttp2.backendHeader], [200, 'hello POST /two', 'one']);
      assert.deepEqual(seen.at(-1), { proto: 'https', host: 'api.example', version: '1.1' }, 'Host comes from :authority');
    } finally {
      session.close();
    }
  } finally {
    await proxy.stop();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable certificate file is refused at start with the key named', async () => {
  await assert.rejects(startProxy({ proxy: { tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } }, pools: [pool('web', ['127.0.0.1:9'])] }),
    /proxy\.tls\.certFile: cannot read \/nonexistent\/cert\.pem/);
});
