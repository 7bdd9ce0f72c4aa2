// Locks and elections on a real member in this process: the Lock and Election gRPC services
// (through a client built from our protos), and the client-side recipes that most users run
// instead (the etcd3 npm client's lock and election, etcdctl's `lock` and `elect`), which need the
// KV, Lease and Watch services to behave as etcd's do.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, status } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { CampaignResponse, EtcdServiceName, LeaderResponse, LockResponse, RangeResponse } from '../../src/api/etcd/proto-loader.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { EtcdctlProcess, runEtcdctl } from '../compat/etcdctl.ts';
import { startTestMember, useTestDataRoot } from '../support/store-member.ts';

/** Bound on any one gRPC call that is not meant to wait. */
const CALL_TIMEOUT_MS = 5_000;
/** How long a call that must keep waiting is watched before the test moves on. */
const STILL_WAITING_MS = 300;
/** Bound on waiting for something that must happen (a lock handed over, a leader observed). */
const EVENTUALLY_MS = 8_000;

type Service = Client & Record<string, (...args: unknown[]) => unknown>;

interface Member {
  server: StoreServer;
  kv: Service;
  lease: Service;
  lock: Service;
  election: Service;
  close(): Promise<void>;
}

const dataRoot = useTestDataRoot('concord-election-lock-');

async function startMember(name: string): Promise<Member> {
  // Expired leases are looked for every 100 ms, so a 2 s lease ends within a fraction of a second of its TTL.
  const server = await startTestMember(dataRoot, name, {}, { serviceOptions: { lease: { expiryCheckIntervalMs: 100 } } });
  const make = (service: EtcdServiceName) => {
    const Constructor = loadEtcdProtos().clients[service];
    return new Constructor(server.clientAddresses[0]!, credentials.createInsecure()) as Service;
  };
  const clients = { kv: make('KV'), lease: make('Lease'), lock: make('Lock'), election: make('Election') };
  return {
    server,
    ...clients,
    async close() {
      for (const service of Object.values(clients)) service.close();
      await server.stop();
    },
  };
}

function call<Response>(service: Service, method: string, request: object, timeoutMs = CALL_TIMEOUT_MS): Promise<Response> {
  return new Promise((resolve, reject) => {
    service[method]!(request, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, response: Response) => {
      if (error) reject(error);
      else resolve(response);
    });
  });
}

async function grant(member: Member, ttlSeconds = 60): Promise<string> {
  return (await call<{ ID: string }>(member.lease, 'LeaseGrant', { TTL: String(ttlSeconds) })).ID;
}

async function keysUnder(member: Member, prefix: string): Promise<string[]> {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const range = await call<RangeResponse>(member.kv, 'Range', { key: Buffer.from(prefix), range_end: Buffer.from(end) });
  return range.kvs.map((kv) => kv.key.toString());
}

/** Resolves to 'pending' if the promise has not settled within ms. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Lock service ----

test('Lock: the second locker waits until the first unlocks', async () => {
  const member = await startMember('lock-two');
  try {
    const [first, second] = [await grant(member), await grant(member)];
    const held = await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: first });
    assert.equal(held.key.toString(), `door/${BigInt(first).toString(16)}`, 'the key is name/lease-in-hex, as etcd names it');
    const waiting = call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: second }, EVENTUALLY_MS);
    assert.equal(await settledWithin(waiting, STILL_WAITING_MS), 'pending', 'the second locker waits');
    assert.deepEqual(await keysUnder(member, 'door/'), [held.key.toString(), `door/${BigInt(second).toString(16)}`], 'both queued');
    const unlocked = await call<{ header: { revision: string } }>(member.lock, 'Unlock', { key: held.key });
    const acquired = await waiting;
    assert.equal(acquired.key.toString(), `door/${BigInt(second).toString(16)}`);
    assert.ok(Number(acquired.header!.revision) >= Number(unlocked.header.revision), 'acquired after the unlock');
  } finally {
    await member.close();
  }
});

test('Lock: a holder whose lease is revoked or expires releases the lock', async () => {
  const member = await startMember('lock-lease');
  try {
    const revoked = await grant(member);
    const expiring = await grant(member, 2);
    const last = await grant(member);
    await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: revoked });
    const second = call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: expiring }, EVENTUALLY_MS);
    assert.equal(await settledWithin(second, STILL_WAITING_MS), 'pending');
    await call(member.lease, 'LeaseRevoke', { ID: revoked });
    const secondHolds = await second;
    assert.equal(secondHolds.key.toString(), `door/${BigInt(expiring).toString(16)}`, 'the revoke deleted the holder\'s key');
    // The second holder's 2 s lease is never kept alive: its expiry hands the lock on.
    const third = await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: last }, EVENTUALLY_MS);
    assert.equal(third.key.toString(), `door/${BigInt(last).toString(16)}`);
    const expired = await call<{ TTL: string }>(member.lease, 'LeaseTimeToLive', { ID: expiring });
    assert.equal(expired.TTL, '-1', 'the lock was handed on by the expiry of the holder\'s lease');
  } finally {
    await member.close();
  }
});

test('Lock: a caller whose deadline passes stops waiting and leaves the line; errors are etcd\'s', async () => {
  const member = await startMember('lock-deadline');
  try {
    const [holder, impatient] = [await grant(member), await grant(member)];
    const held = await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: holder });
    await assert.rejects(call(member.lock, 'Lock', { name: Buffer.from('door'), lease: impatient }, 300),
      (error: ServiceError) => error.code === status.DEADLINE_EXCEEDED);
    // The cleanup is a write of its own, right after the deadline.
    for (const deadline = Date.now() + EVENTUALLY_MS; (await keysUnder(member, 'door/')).length > 1 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(await keysUnder(member, 'door/'), [held.key.toString()], 'the impatient waiter\'s key is deleted');

    await assert.rejects(call(member.lock, 'Lock', { name: Buffer.from('other'), lease: '12345' }), /etcdserver: requested lease not found/);
    // Lease 0: etcd makes a 60 s session lease for the lock.
    const session = await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('session'), lease: '0' });
    const sessionKey = await call<RangeResponse>(member.kv, 'Range', { key: session.key });
    assert.notEqual(sessionKey.kvs[0]!.lease, '0', 'the key carries a granted lease');
    const ttl = await call<{ grantedTTL: string }>(member.lease, 'LeaseTimeToLive', { ID: sessionKey.kvs[0]!.lease });
    assert.equal(ttl.grantedTTL, '60');
    // Session leases take their IDs from a part of the ID space the Lease service does not use.
    assert.notEqual(await grant(member), sessionKey.kvs[0]!.lease, 'a client\'s grant gets an ID of its own');
  } finally {
    await member.close();
  }
});

test('a waiting Lock ends when the server stops, and the stop does not hang', async () => {
  const member = await startMember('lock-stop');
  const [holder, waiter] = [await grant(member), await grant(member)];
  await call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: holder });
  const waiting = call<LockResponse>(member.lock, 'Lock', { name: Buffer.from('door'), lease: waiter }, EVENTUALLY_MS);
  assert.equal(await settledWithin(waiting, STILL_WAITING_MS), 'pending');
  await member.close();
  await assert.rejects(waiting, (error: ServiceError) => error.code === status.UNAVAILABLE || error.code === status.CANCELLED);
});

// ---- Election service ----

test('Election: campaign, leader, proclaim, resign; the next candidate waits its turn', async () => {
  const member = await startMember('election');
  try {
    const name = Buffer.from('council');
    await assert.rejects(call(member.election, 'Leader', { name }), (error: ServiceError) => error.code === status.UNKNOWN && /election: no leader/.test(error.details));
    const [firstLease, secondLease] = [await grant(member), await grant(member)];
    const first = await call<CampaignResponse>(member.election, 'Campaign', { name, lease: firstLease, value: Buffer.from('alice') });
    assert.equal(first.leader!.key.toString(), `council/${BigInt(firstLease).toString(16)}`);
    assert.equal(first.leader!.rev, first.header!.revision, 'a new candidate\'s key is created by the campaign');
    const second = call<CampaignResponse>(member.election, 'Campaign', { name, lease: secondLease, value: Buffer.from('bob') }, EVENTUALLY_MS);
    assert.equal(await settledWithin(second, STILL_WAITING_MS), 'pending', 'the second candidate waits');

    await call(member.election, 'Proclaim', { leader: first.leader, value: Buffer.from('alice, again') });
    const leader = await call<LeaderResponse>(member.election, 'Leader', { name });
    assert.equal(leader.kv!.value.toString(), 'alice, again');
    await assert.rejects(call(member.election, 'Proclaim', { leader: { ...first.leader, rev: '1' }, value: Buffer.from('x') }), /election: not leader/);
    await assert.rejects(call(member.election, 'Proclaim', { value: Buffer.from('x') }), /"leader" field must be provided/);

    await call(member.election, 'Resign', { leader: first.leader });
    const elected = await second;
    assert.equal(elected.leader!.key.toString(), `council/${BigInt(secondLease).toString(16)}`);
    assert.equal((await call<LeaderResponse>(member.election, 'Leader', { name })).kv!.value.toString(), 'bob');
    // Resigning with a stale leader key changes nothing and, as in etcd, is not an error.
    await call(member.election, 'Resign', { leader: first.leader });
    assert.equal((await call<LeaderResponse>(member.election, 'Leader', { name })).kv!.value.toString(), 'bob');
  } finally {
    await member.close();
  }
});

test('Election: Observe streams the leader, its new values, and the next leader', async () => {
  const member = await startMember('observe');
  try {
    const name = Buffer.from('council');
    const seen: string[] = [];
    const stream = member.election.Observe!({ name }) as NodeJS.EventEmitter & { cancel(): void };
    stream.on('data', (response: LeaderResponse) => seen.push(response.kv!.value.toString()));
    stream.on('error', () => {});
    const waitFor = async (count: number) => {
      for (const deadline = Date.now() + EVENTUALLY_MS; seen.length < count && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(seen.length >= count, `expected ${count} leader changes, saw ${JSON.stringify(seen)}`);
    };
    const [firstLease, secondLease] = [await grant(member), await grant(member)];
    const first = await call<CampaignResponse>(member.election, 'Campaign', { name, lease: firstLease, value: Buffer.from('alice') });
    await waitFor(1);
    const second = call<CampaignResponse>(member.election, 'Campaign', { name, lease: secondLease, value: Buffer.from('bob') }, EVENTUALLY_MS);
    await call(member.election, 'Proclaim', { leader: first.leader, value: Buffer.from('alice 2') });
    await waitFor(2);
    await call(member.election, 'Resign', { leader: first.leader });
    await second;
    await waitFor(3);
    assert.deepEqual(seen, ['alice', 'alice 2', 'bob'], 'a waiting candidate is not reported until it leads');
    stream.cancel();
  } finally {
    await member.close();
  }
});

// ---- Client-side recipes ----

test('the etcd3 client\'s lock and election work', async () => {
  const member = await startMember('etcd3');
  const client = new Etcd3({ hosts: member.server.clientAddresses[0]! });
  const nextClient = new Etcd3({ hosts: member.server.clientAddresses[0]! });
  try {
    const order: string[] = [];
    await client.lock('x').ttl(5).do(async () => {
      order.push('a in');
      // The etcd3 client's lock does not wait: a second locker fails at once while the lock is held.
      await client.lock('x').ttl(5).do(async () => order.push('b in')).catch((error: unknown) => {
        order.push(error instanceof EtcdLockFailedError ? 'b refused' : `b failed: ${String(error)}`);
      });
      order.push('a out');
    });
    await client.lock('x').do(async () => order.push('c in'));
    assert.deepEqual(order, ['a in', 'b refused', 'a out', 'c in'], 'released locks can be taken again');

    const election = client.election('e', 5);
    const observer = await election.observe();
    const changes: (string | undefined)[] = [];
    observer.on('change', (value) => changes.push(value));
    const campaign = election.campaign('first');
    await campaign.wait();
    assert.equal(await election.leader(), 'first');
    await campaign.proclaim('second');
    assert.equal(await election.leader(), 'second');
    // The next candidate is another participant, with a client of its own. In one shared client
    // the etcd3 library (1.1) cancels a watch stream of its own when a campaign resigns, takes the
    // stream's CANCELLED for a failed host and closes every channel of that client, so a call in
    // flight on it fails with 'Channel closed before call started' (seen in 2 of 12 runs).
    const next = nextClient.election('e', 5).campaign('next');
    await campaign.resign();
    await next.wait();
    assert.equal(await election.leader(), 'next');
    for (const deadline = Date.now() + EVENTUALLY_MS; !changes.includes('next') && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(changes.includes('first') && changes.includes('next'), `observed ${JSON.stringify(changes)}`);
    await next.resign();
    await observer.cancel();
  } finally {
    client.close();
    nextClient.close();
    await member.close();
  }
});

test('etcdctl lock and elect work', async () => {
  const member = await startMember('etcdctl');
  const endpoint = member.server.clientAddresses[0]!;
  try {
    const locked = await runEtcdctl({ args: ['lock', 'job', '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY"'], endpoint });
    assert.equal(locked.exitCode, 0, locked.stderr);
    assert.match(locked.stdout, /^key=job\/[0-9a-f]+\n$/);
    assert.deepEqual(await keysUnder(member, 'job/'), [], 'etcdctl unlocked after the command');

    const campaigner = new EtcdctlProcess({ args: ['elect', 'chair', 'proposal-one'], endpoint });
    assert.ok(await campaigner.waitForLines(2, EVENTUALLY_MS), 'the campaigner prints its key and proposal once it leads');
    const observer = new EtcdctlProcess({ args: ['elect', '-l', 'chair'], endpoint });
    assert.ok(await observer.waitForLines(2, EVENTUALLY_MS));
    const observed = await observer.interrupt();
    assert.match(observed.stdout, /^chair\/[0-9a-f]+\nproposal-one\n$/);
    const campaign = await campaigner.interrupt();
    assert.match(campaign.stdout, /^chair\/[0-9a-f]+\nproposal-one\n$/);
    assert.deepEqual(await keysUnder(member, 'chair/'), [], '^C made etcdctl resign');
  } finally {
    await member.close();
  }
});
