// Auth across a real three-member cluster in this process: a token issued by one member works on
// every member (etcd clients with several endpoints move between members freely), a password
// change ends it everywhere, a write through a follower is authorized for its user when applied,
// and lease TimeToLive forwarded to the leader is checked there for the user, not a token. And
// logins by TLS client certificate: with --client-cert-auth, the certificate's common name is the user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { freePort } from '../support/free-port.ts';
import { QUIET_LOGGER, useTestDataRoot, waitFor } from '../support/store-member.ts';
import { makeCa, makeSignedCertificate } from '../support/certificates.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';

const root = useTestDataRoot('concord-auth-cluster-');
const protos = loadEtcdProtos();

type Client = Record<string, (request: object, metadata: Metadata, callback: (error: ServiceError | null, response: Record<string, unknown>) => void) => void>;
type Outcome = { ok: true; response: Record<string, unknown> } | { ok: false; details: string };

function client(service: 'KV' | 'Auth' | 'Lease', endpoint: string): Client {
  return new protos.clients[service](endpoint, credentials.createInsecure()) as unknown as Client;
}

function call(target: Client, method: string, request: object, token?: string): Promise<Outcome> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('token', token);
  return new Promise((resolve) => target[method]!(request, metadata, (error, response) => resolve(error ? { ok: false, details: error.details } : { ok: true, response })));
}

async function must(target: Client, method: string, request: object, token?: string): Promise<Record<string, unknown>> {
  const outcome = await call(target, method, request, token);
  assert.ok(outcome.ok, `${method}: ${outcome.ok ? '' : outcome.details}`);
  return outcome.response;
}

async function startCluster(names: string[]): Promise<StoreServer[]> {
  const peers = await Promise.all(names.map(async (name) => ({ name, url: `http://127.0.0.1:${await freePort()}` })));
  const initialCluster = peers.map((peer) => `${peer.name}=${peer.url}`).join(',');
  const servers = await Promise.all(peers.map((peer) => StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    name: peer.name, dataDir: join(root.dir, peer.name), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: peer.url, initialCluster, initialClusterState: 'new',
  })), { logger: QUIET_LOGGER })));
  await waitFor('a leader', () => servers.some((server) => server.member.isLeader()), 10_000);
  return servers;
}

test('a token from one member works on the others; a password change ends it on all; follower writes and leader-side checks', async () => {
  const servers = await startCluster(['au1', 'au2', 'au3']);
  const endpoints = servers.map((server) => server.clientAddresses[0]!);
  const auth = endpoints.map((endpoint) => client('Auth', endpoint));
  const kv = endpoints.map((endpoint) => client('KV', endpoint));
  const lease = endpoints.map((endpoint) => client('Lease', endpoint));
  try {
    const follower = servers.findIndex((server) => !server.member.isLeader());
    const other = servers.findIndex((server, i) => i !== follower);
    await must(auth[follower]!, 'UserAdd', { name: 'root', password: 'rootpw' });
    await must(auth[follower]!, 'UserGrantRole', { user: 'root', role: 'root' });
    await must(auth[follower]!, 'UserAdd', { name: 'alice', password: 'alicepw' });
    await must(auth[follower]!, 'RoleAdd', { name: 'app' });
    await must(auth[follower]!, 'RoleGrantPermission', { name: 'app', perm: { permType: 'READWRITE', key: Buffer.from('app/'), range_end: Buffer.from('app0') } });
    await must(auth[follower]!, 'UserGrantRole', { user: 'alice', role: 'app' });
    await must(auth[follower]!, 'AuthEnable', {});

    const aliceToken = (await must(auth[follower]!, 'Authenticate', { name: 'alice', password: 'alicepw' })).token as string;
    const rootToken = (await must(auth[other]!, 'Authenticate', { name: 'root', password: 'rootpw' })).token as string;
    // Every member learns a token when it applies the Authenticate; wait until all have.
    for (let i = 0; i < servers.length; i++) {
      await waitFor(`member ${i} knows the token`, async () => (await call(kv[i]!, 'Range', { key: Buffer.from('app/x'), serializable: true }, aliceToken)).ok);
    }
    await must(kv[follower]!, 'Put', { key: Buffer.from('app/x'), value: Buffer.from('1') }, aliceToken);
    for (const target of kv) assert.deepEqual(await call(target, 'Put', { key: Buffer.from('secret'), value: Buffer.from('1') }, aliceToken), { ok: false, details: 'etcdserver: permission denied' });

    // A lease with a key alice may not read: its keys are not shown to her, wherever she asks.
    const id = (await must(lease[follower]!, 'LeaseGrant', { TTL: 600 }, rootToken)).ID;
    await must(kv[other]!, 'Put', { key: Buffer.from('secret'), value: Buffer.from('1'), lease: id }, rootToken);
    for (const target of lease) {
      assert.deepEqual(await call(target, 'LeaseTimeToLive', { ID: id, keys: true }, aliceToken), { ok: false, details: 'etcdserver: permission denied' });
      const answer = await must(target, 'LeaseTimeToLive', { ID: id, keys: true }, rootToken);
      assert.deepEqual((answer.keys as Buffer[]).map(String), ['secret']);
    }

    await must(auth[other]!, 'UserChangePassword', { name: 'alice', password: 'changed' }, rootToken);
    for (let i = 0; i < servers.length; i++) {
      await waitFor(`member ${i} refuses the old token`, async () => {
        const outcome = await call(kv[i]!, 'Range', { key: Buffer.from('app/x'), serializable: true }, aliceToken);
        return !outcome.ok && outcome.details === 'etcdserver: invalid auth token';
      });
    }
  } finally {
    for (const clients of [auth, kv, lease]) for (const target of clients) (target as unknown as { close(): void }).close();
    await Promise.all(servers.map((server) => server.stop({ handOverLeadership: false })));
  }
});

test('with --client-cert-auth, a client certificate logs in as the user its common name names, no password needed', async () => {
  const ca = makeCa(root.dir, 'auth-ca');
  const serverCertificate = makeSignedCertificate(root.dir, 'auth-tls-server', ca);
  const server = await StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    name: 'auth-tls', dataDir: join(root.dir, 'auth-tls'), listenClientUrls: 'https://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0',
    certFile: serverCertificate.cert, keyFile: serverCertificate.key, trustedCaFile: ca.cert, clientCertAuth: 'true',
  })), { logger: QUIET_LOGGER });
  const as = (commonName: string) => {
    const certificate = makeSignedCertificate(root.dir, commonName, ca);
    return async (...args: string[]) => runEtcdctl({ endpoint: `https://${server.clientAddresses[0]}`, args: ['--cacert', ca.cert, '--cert', certificate.cert, '--key', certificate.key, ...args] });
  };
  try {
    const asRoot = as('root');
    for (const args of [
      ['user', 'add', 'root', '--new-user-password=rootpw'], ['user', 'add', 'cn-user', '--no-password'], ['role', 'add', 'app'],
      ['role', 'grant-permission', 'app', 'readwrite', 'app/', '--prefix'], ['user', 'grant-role', 'cn-user', 'app'], ['auth', 'enable'],
    ]) {
      const outcome = await asRoot(...args);
      assert.equal(outcome.exitCode, 0, `${args.join(' ')}: ${outcome.stderr}`);
    }
    assert.match((await asRoot('user', 'list')).stdout, /cn-user/, "root's certificate is enough to administer, with auth on");
    const asCnUser = as('cn-user');
    assert.equal((await asCnUser('put', 'app/x', '1')).exitCode, 0);
    assert.match((await asCnUser('put', 'other', '1')).stderr, /etcdserver: permission denied/);
    assert.match((await as('stranger')('put', 'app/x', '1')).stderr, /etcdserver: permission denied/, 'a common name that is no user gets nothing');
    // A token still wins over the certificate, as in etcd: root's password login acts as root.
    assert.equal((await asCnUser('put', 'other', '1', '--user=root:rootpw')).exitCode, 0);
  } finally {
    await server.stop();
  }
});
