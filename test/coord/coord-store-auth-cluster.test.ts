// EtcdCoordStore with credentials against a three-member Concord cluster in this process, all
// members as endpoints: the connection pool spreads calls over the members, so a token obtained
// through one member is used on the others, and a member that restarts has forgotten every token
// (they live in memory): the client renews and goes on. Users and auth are set up with etcdctl.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../../src/coord/store-url.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { freeLoopbackPorts } from '../support/child-processes.ts';
import { etcdctlOk, QUIET_LOGGER, useTestDataRoot, waitFor } from '../support/store-member.ts';

const NAMES = ['ca1', 'ca2', 'ca3'];
/** Calls per phase: with three members and random choice, every member serves some. */
const CALLS = 30;

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  server: StoreServer | undefined;
}

const members: Member[] = [];
let initialCluster = '';
let client: EtcdCoordStore;

function start(member: Member, state: 'new' | 'existing'): Promise<StoreServer> {
  return StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    name: member.name, dataDir: join(root.dir, member.name), listenClientUrls: member.clientUrl, listenPeerUrls: member.peerUrl,
    initialCluster, initialClusterState: state, heartbeatIntervalMs: '25', electionTimeoutMs: '250',
  })), { logger: QUIET_LOGGER });
}

// Registered before the data root's hooks, so the members stop before their folder is removed.
after(async () => {
  client?.close();
  for (const member of members) await member.server?.stop();
});

const root = useTestDataRoot('concord-coord-auth-cluster-');

before(async () => {
  const ports = await freeLoopbackPorts(NAMES.length * 2);
  NAMES.forEach((name, i) => members.push({ name, clientUrl: `http://127.0.0.1:${ports[2 * i]}`, peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`, server: undefined }));
  initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(',');
  const servers = await Promise.all(members.map((member) => start(member, 'new')));
  servers.forEach((server, i) => (members[i]!.server = server));
  await waitFor('a leader', () => servers.some((server) => server.member.isLeader()), 10_000);
  const endpoint = members[0]!.clientUrl.replace('http://', '');
  await etcdctlOk(endpoint, ['user', 'add', 'root:rootpw']);
  await etcdctlOk(endpoint, ['user', 'add', 'alice:alice-pw']);
  await etcdctlOk(endpoint, ['role', 'add', 'app']);
  await etcdctlOk(endpoint, ['role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix']);
  await etcdctlOk(endpoint, ['user', 'grant-role', 'alice', 'app']);
  await etcdctlOk(endpoint, ['auth', 'enable']);
  client = new EtcdCoordStore(parseStoreLocation(members.map((member) => member.clientUrl).join(',')), { requestTimeoutMs: 3_000, credentials: { user: 'alice', password: 'alice-pw' } });
});

test('a token is used on every member; after a member restarts (its tokens forgotten) calls renew and go on', async () => {
  for (let i = 0; i < CALLS; i++) {
    await client.put(`/app/${i}`, String(i));
    assert.equal((await client.get(`/app/${i}`))?.value, String(i));
  }
  const follower = members.find((member) => member.server?.member.isLeader() === false)!;
  await follower.server!.stop();
  follower.server = await start(follower, 'existing');
  await waitFor('the restarted member to serve reads', async () => (await client.range('/app/', { prefix: true, countOnly: true })).count === CALLS, 10_000);
  for (let i = 0; i < CALLS; i++) {
    await client.put(`/app/after/${i}`, String(i));
    assert.equal((await client.get(`/app/after/${i}`))?.value, String(i));
  }
  assert.equal((await client.range('/app/after/', { prefix: true, countOnly: true })).count, CALLS);
});
