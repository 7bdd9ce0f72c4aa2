// The store location flags: `--store etcd://...|etcds://...` and etcdctl's `--endpoints` form, with
// errors that name what is wrong; and a TLS store reached with etcdctl's certificate flags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CoordError } from '../../src/coord/coord-store.ts';
import { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { formatStoreLocation, MAX_STORE_ENDPOINTS, parseStoreLocation } from '../../src/coord/store-url.ts';
import { makeCa, makeSignedCertificate } from '../support/certificates.ts';
import { startTestMember, useTestDataRoot } from '../support/store-member.ts';

const root = useTestDataRoot('concord-store-url-');

function refused(text: string, pattern: RegExp, tls = {}): void {
  assert.throws(() => parseStoreLocation(text, tls), (error: unknown) => error instanceof CoordError && error.code === 'CONCORD_E_STORE_URL_INVALID' && pattern.test(error.message), text);
}

test('etcd:// and etcds:// lists, bare host:port lists, http:// and https:// elements', () => {
  assert.deepEqual(parseStoreLocation('etcd://127.0.0.1:2379,10.0.0.2:2379'), { endpoints: ['127.0.0.1:2379', '10.0.0.2:2379'] });
  assert.deepEqual(parseStoreLocation('127.0.0.1:2379'), { endpoints: ['127.0.0.1:2379'] });
  assert.deepEqual(parseStoreLocation(' store-1.example:2379 , store-2.example:2379 '), { endpoints: ['store-1.example:2379', 'store-2.example:2379'] });
  assert.deepEqual(parseStoreLocation('http://127.0.0.1:2379,http://127.0.0.1:22379'), { endpoints: ['127.0.0.1:2379', '127.0.0.1:22379'] });
  assert.deepEqual(parseStoreLocation('etcd://[::1]:2379'), { endpoints: ['[::1]:2379'] });
  assert.deepEqual(parseStoreLocation('etcds://a:2379', { caFile: 'ca.pem' }), { endpoints: ['a:2379'], tls: { caFile: 'ca.pem' } });
  assert.deepEqual(parseStoreLocation('https://a:2379', { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'c.key' }), { endpoints: ['a:2379'], tls: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'c.key' } });
  assert.deepEqual(parseStoreLocation('etcds://a:2379'), { endpoints: ['a:2379'], tls: {} }, 'no CA: the system roots');
  assert.equal(formatStoreLocation(parseStoreLocation('http://a:1,b:2')), 'etcd://a:1,b:2');
  assert.equal(formatStoreLocation(parseStoreLocation('etcds://a:1')), 'etcds://a:1');
});

test('bad locations are refused with what is wrong and the expected form', () => {
  refused('', /empty; expected e\.g\. etcd:\/\//);
  refused('etcd://', /empty endpoint/);
  refused('etcd://a:2379,,b:2379', /empty endpoint \(a stray comma\?\)/);
  refused('etcd://localhost', /'localhost' .* is not host:port/);
  refused('etcd://a:99999', /port 99999 .* outside 1-65535/);
  refused('etcd://a:0', /port 0/);
  refused('zk://a:2181', /unknown scheme/);
  refused('a:1,ftp://b:2', /unknown scheme 'ftp:\/\/'/);
  refused('http://a:1,https://b:2', /mixes http:\/\/ and https:\/\//);
  refused('etcd://a:1,a:1', /a:1 appears twice/);
  refused(`etcd://${Array.from({ length: MAX_STORE_ENDPOINTS + 1 }, (_, i) => `h${i}:1`).join(',')}`, /at most 16/);
  refused('etcd://a:1', /plain text: write etcds:\/\//, { caFile: 'ca.pem' });
  refused('etcds://a:1', /give --cert and --key together/, { certFile: 'c.pem' });
});

test('etcds:// reaches a member that requires client certificates; without one it is refused', async () => {
  const ca = makeCa(root.dir, 'ca');
  const server = makeSignedCertificate(root.dir, 'server', ca);
  const client = makeSignedCertificate(root.dir, 'client', ca);
  const member = await startTestMember(root, 'tls', {
    listenClientUrls: 'https://127.0.0.1:0', certFile: server.cert, keyFile: server.key, trustedCaFile: ca.cert, clientCertAuth: 'true',
  });
  const endpoint = member.clientAddresses[0]!;
  const store = new EtcdCoordStore(parseStoreLocation(`etcds://${endpoint}`, { caFile: ca.cert, certFile: client.cert, keyFile: client.key }), { requestTimeoutMs: 3_000 });
  const anonymous = new EtcdCoordStore(parseStoreLocation(`etcds://${endpoint}`, { caFile: ca.cert }), { requestTimeoutMs: 1_000 });
  try {
    await store.put('/secure', 'yes');
    assert.equal((await store.get('/secure'))?.value, 'yes');
    await assert.rejects(anonymous.get('/secure'), (error: unknown) => error instanceof CoordError && error.code === 'CONCORD_E_STORE_UNAVAILABLE');
    assert.throws(
      () => new EtcdCoordStore(parseStoreLocation(`etcds://${endpoint}`, { caFile: join(root.dir, 'missing.pem') })),
      (error: unknown) => error instanceof CoordError && /cannot read the CA certificate \(--cacert\)/.test(error.message),
    );
  } finally {
    store.close();
    anonymous.close();
    await member.stop();
  }
});
