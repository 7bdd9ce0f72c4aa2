// Membership of a real cluster (members in this process, talking over loopback sockets): etcd's
// Cluster API through etcdctl, a learner that joins, catches up and is promoted, a member moved to
// a new peer URL (member update), removal of the leader and of a member that is down, a removed
// member that comes back, move-leader, and the leadership hand-over of a planned stop.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import type { StoreServerLogger } from '../../src/server/store-server.ts';
import { freePort } from '../support/free-port.ts';
import { etcdctlOk, useTestDataRoot, waitFor } from '../support/store-member.ts';
import type { TestDataRoot } from '../support/store-member.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';

const root = useTestDataRoot('concord-membership-');

interface Member {
  name: string;
  peerUrl: string;
  server?: StoreServer;
  removed: boolean;
  logs: string[];
}

function logger(member: Member): StoreServerLogger {
  const keep = (level: string) => (text: string) => member.logs.push(`${level} ${text}`);
  return { info: keep('info'), warn: keep('warn'), error: keep('error') };
}

async function newMember(name: string): Promise<Member> {
  return { name, peerUrl: `http://127.0.0.1:${await freePort()}`, removed: false, logs: [] };
}

async function startMember(dataRoot: TestDataRoot, member: Member, initialCluster: Member[], state: 'new' | 'existing', extra: Record<string, string> = {}): Promise<StoreServer> {
  const config = resolveServerConfig({}, settingsFromFlags({
    name: member.name,
    dataDir: join(dataRoot.dir, member.name),
    listenClientUrls: 'http://127.0.0.1:0',
    listenPeerUrls: member.peerUrl,
    initialCluster: initialCluster.map((peer) => `${peer.name}=${peer.peerUrl}`).join(','),
    initialClusterState: state,
    ...extra,
  }));
  member.server = await StoreServer.start(config, { logger: logger(member), onRemoved: () => (member.removed = true) });
  return member.server;
}

function endpoint(member: Member): string {
  return member.server!.clientAddresses[0]!;
}

function leaderOf(members: Member[]): Member | undefined {
  return members.find((member) => member.server?.member.isLeader());
}

async function waitForLeader(members: Member[], timeoutMs = 10_000): Promise<Member> {
  await waitFor('a leader', () => leaderOf(members) !== undefined, timeoutMs);
  return leaderOf(members)!;
}

async function stopAll(members: Member[]): Promise<void> {
  await Promise.all(members.map((member) => member.server?.stop({ handOverLeadership: false })));
}

async function startCluster(names: string[]): Promise<Member[]> {
  const members = await Promise.all(names.map(newMember));
  await Promise.all(members.map((member) => startMember(root, member, members, 'new')));
  await waitForLeader(members);
  return members;
}

test('three members bootstrap; a write through any member is read through every other; member list names them all', async () => {
  const members = await startCluster(['a1', 'a2', 'a3']);
  try {
    await etcdctlOk(endpoint(members[1]!), ['put', 'greeting', 'hello']);
    for (const member of members) assert.match(await etcdctlOk(endpoint(member), ['get', 'greeting']), /hello/);
    await waitFor('every member published its client URL', () => members[0]!.server!.member.memberList().every((known) => known.clientUrls.length === 1));
    const list = JSON.parse(await etcdctlOk(endpoint(members[2]!), ['member', 'list', '-w', 'json'])) as { members: { name: string; peerURLs: string[]; clientURLs: string[] }[] };
    assert.deepEqual(list.members.map((known) => known.name).sort(), ['a1', 'a2', 'a3']);
    for (const known of list.members) {
      const member = members.find((candidate) => candidate.name === known.name)!;
      assert.deepEqual(known.peerURLs, [member.peerUrl]);
      assert.deepEqual(known.clientURLs, [`http://${endpoint(member)}`]);
    }
    // A lease kept alive through a follower: the keep-alive is forwarded to the leader.
    const follower = members.find((member) => !member.server!.member.isLeader())!;
    const granted = await etcdctlOk(endpoint(follower), ['lease', 'grant', '30']);
    const leaseId = /lease ([0-9a-f]+) granted/.exec(granted)![1]!;
    assert.match(await etcdctlOk(endpoint(follower), ['lease', 'keep-alive', '--once', leaseId]), /keepalived with TTL\(30\)/);
    assert.match(await etcdctlOk(endpoint(follower), ['lease', 'timetolive', leaseId]), /remaining\((29|30)s\)/);
  } finally {
    await stopAll(members);
  }
});

test('a learner joins, catches up, is refused promotion until it has, then becomes a voter', async () => {
  const members = await startCluster(['b1', 'b2', 'b3']);
  const learner = await newMember('b4');
  try {
    for (let i = 0; i < 20; i++) await etcdctlOk(endpoint(members[0]!), ['put', `k${i}`, `v${i}`]);
    const follower = members.find((member) => !member.server!.member.isLeader())!;
    const added = await etcdctlOk(endpoint(follower), ['member', 'add', 'b4', `--peer-urls=${learner.peerUrl}`, '--learner']);
    const learnerId = /Member\s+([0-9a-f]+) added/.exec(added)?.[1];
    assert.ok(learnerId, `member add printed: ${added}`);
    const refused = await runEtcdctl({ endpoint: endpoint(follower), args: ['member', 'promote', learnerId] });
    assert.match(refused.stderr, /can only promote a learner member which is in sync with leader/, 'a learner that has not started is not in sync');
    await startMember(root, learner, [members[0]!, learner], 'existing');
    await waitFor('the learner caught up', async () => /v19/.test((await runEtcdctl({ endpoint: endpoint(learner), args: ['get', 'k19', '--consistency=s'] })).stdout));
    // A learner that had caught up and then fell behind (stopped while the log grew by far more
    // than a tenth) is refused again, with the same error; back up, it catches up and is promoted.
    await learner.server!.stop({ handOverLeadership: false });
    for (let i = 0; i < 40; i++) await etcdctlOk(endpoint(members[0]!), ['put', `later${i}`, `w${i}`]);
    const refusedWhileBehind = await runEtcdctl({ endpoint: endpoint(follower), args: ['member', 'promote', learnerId] });
    assert.match(refusedWhileBehind.stderr, /can only promote a learner member which is in sync with leader/, 'a learner that fell behind is not in sync');
    await startMember(root, learner, [members[0]!, learner], 'existing');
    await waitFor('the learner caught up again', async () => /w39/.test((await runEtcdctl({ endpoint: endpoint(learner), args: ['get', 'later39', '--consistency=s'] })).stdout));
    await waitFor('promotion succeeds', async () => (await runEtcdctl({ endpoint: endpoint(follower), args: ['member', 'promote', learnerId] })).exitCode === 0);
    assert.deepEqual(members[0]!.server!.member.membership().voters.length, 4);
    await etcdctlOk(endpoint(learner), ['put', 'from-b4', 'yes']);
    assert.match(await etcdctlOk(endpoint(members[2]!), ['get', 'from-b4']), /yes/);
  } finally {
    await stopAll([...members, learner]);
  }
});

test('etcdctl member update moves a member to a new peer URL: the cluster reaches it there once it restarts on it', async () => {
  const members = await startCluster(['u1', 'u2', 'u3']);
  try {
    const leader = leaderOf(members)!;
    const moving = members.find((member) => member !== leader)!;
    const id = moving.server!.memberId.toString(16);
    await moving.server!.stop({ handOverLeadership: false });
    moving.peerUrl = `http://127.0.0.1:${await freePort()}`;
    assert.match(await etcdctlOk(endpoint(leader), ['member', 'update', id, `--peer-urls=${moving.peerUrl}`]), new RegExp(`Member\\s+${id} updated`));
    // The simple format, whose hex IDs survive (JSON's uint64 IDs would not, through JSON.parse).
    const listed = (await etcdctlOk(endpoint(leader), ['member', 'list'])).split('\n').find((line) => line.startsWith(`${id},`));
    assert.equal(listed?.split(', ')[3], moving.peerUrl, `member list shows the new peer URL: ${listed}`);
    await etcdctlOk(endpoint(leader), ['put', 'while-moving', 'yes']);
    // With 'new', the flags' identity (derived from the initial URLs) no longer matches the data dir,
    // and the error says what to do; 'existing' uses the data dir's own identity.
    await assert.rejects(startMember(root, moving, members, 'new'), /--initial-cluster-state existing: that uses the data dir's own identity/);
    // Nothing listens on the old URL any more: only the new one can bring the moved member up to date.
    await startMember(root, moving, members, 'existing');
    await waitFor('the moved member gets the write made while it was down', async () => /yes/.test((await runEtcdctl({ endpoint: endpoint(moving), args: ['get', 'while-moving', '--consistency=s'] })).stdout), 10_000);
  } finally {
    await stopAll(members);
  }
});

test('removing the leader: it steps down and stops; the others elect a leader and go on', async () => {
  const members = await startCluster(['c1', 'c2', 'c3']);
  try {
    const leader = leaderOf(members)!;
    const follower = members.find((member) => member !== leader)!;
    await etcdctlOk(endpoint(follower), ['member', 'remove', leader.server!.memberId.toString(16)]);
    await waitFor('the removed leader stops', () => leader.removed);
    assert.ok(leader.logs.some((line) => /has been removed from the cluster/.test(line)));
    const rest = members.filter((member) => member !== leader);
    await waitForLeader(rest);
    await etcdctlOk(endpoint(follower), ['put', 'after', 'removal']);
    assert.equal(follower.server!.member.membership().voters.length, 2);
  } finally {
    await stopAll(members.filter((member) => !member.removed));
  }
});

test('a member that is down can be removed; when it comes back it is refused and stops', async () => {
  const members = await startCluster(['d1', 'd2', 'd3']);
  try {
    const leader = leaderOf(members)!;
    const down = members.find((member) => member !== leader)!;
    await down.server!.stop({ handOverLeadership: false });
    await etcdctlOk(endpoint(leader), ['member', 'remove', down.server!.memberId.toString(16)]);
    await etcdctlOk(endpoint(leader), ['put', 'still', 'working']);
    await startMember(root, down, members, 'new');
    await waitFor('the returning member learns it was removed and stops', () => down.removed);
    assert.ok(down.logs.some((line) => /permanently removed/.test(line)), down.logs.join('\n'));
    assert.ok(leader.logs.some((line) => /refused a peer connection .*permanently removed/.test(line)), 'the cluster logs the refusal');
    down.server = undefined;
  } finally {
    await stopAll(members);
  }
});

test('etcdctl move-leader hands leadership over; a planned stop of the leader hands it over without an election timeout', async () => {
  // A long election timeout: a hand-over must not wait for it.
  const names = ['e1', 'e2', 'e3'];
  const members = await Promise.all(names.map(newMember));
  await Promise.all(members.map((member) => startMember(root, member, members, 'new', { electionTimeout: '6000', heartbeatInterval: '100' })));
  try {
    const leader = await waitForLeader(members, 20_000);
    const target = members.find((member) => member !== leader)!;
    assert.match(await etcdctlOk(endpoint(leader), ['move-leader', target.server!.memberId.toString(16)]), /Leadership transferred/);
    assert.equal(leaderOf(members), target);
    const stopStarted = Date.now();
    await target.server!.stop();
    const rest = members.filter((member) => member !== target);
    await waitForLeader(rest, 6_000);
    assert.ok(Date.now() - stopStarted < 3_000, `a new leader within half the 6 s election timeout (took ${Date.now() - stopStarted} ms)`);
    assert.ok(target.logs.some((line) => /handed leadership to/.test(line)));
    target.server = undefined;
  } finally {
    await stopAll(members);
  }
});

test('a member started with another cluster token cannot talk to the cluster; the cluster logs it and carries on', async () => {
  const members = await startCluster(['f1', 'f2', 'f3']);
  const stranger = await newMember('f1');
  try {
    // Same names and URLs as f1, different token: another cluster's member dialing this one.
    stranger.peerUrl = `http://127.0.0.1:${await freePort()}`;
    const impostorCluster = [stranger, members[1]!, members[2]!];
    await startMember({ dir: join(root.dir, 'stranger') }, stranger, impostorCluster, 'new', { initialClusterToken: 'another-cluster' });
    await waitFor('the refusal is logged', () => members.some((member) => member.logs.some((line) => /error refused a peer connection .*belongs to cluster/.test(line))));
    await etcdctlOk(endpoint(members[0]!), ['put', 'unaffected', 'yes']);
  } finally {
    await stopAll([...members, stranger]);
  }
});
