// The CoordStore contract, run against each backend (the embedded Concord store and a real etcd):
// the same operations, the same expected results. Each backend's test file calls
// defineCoordStoreContract with a way to start one member.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordError, type CoordStore, type LeaseHandle, type WatchEvent } from '../../src/coord/coord-store.ts';
import { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { Election, Lock, RecipeAbortedError } from '../../src/coord/recipes.ts';
import { parseStoreLocation } from '../../src/coord/store-url.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { freePort } from '../support/free-port.ts';
import { delay } from '../support/child-processes.ts';

export interface ContractBackend {
  /** host:port of the member's client API. */
  endpoint: string;
  stop(): Promise<void>;
}

/** Bound on waiting for something the store should do promptly. */
const EVENTUALLY_MS = 6_000;
/** The TTL of the leases the contract grants: the shortest both backends accept with the test members' timing. */
const TTL_SECONDS = 1;
/** How long a contender that must keep waiting is watched before the test moves on. */
const STILL_WAITING_MS = 400;

async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = EVENTUALLY_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

function settledWithin<T>(promise: Promise<T>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true, () => true), delay(ms).then(() => false)]);
}

export function defineCoordStoreContract(backendName: string, start: () => Promise<ContractBackend>): void {
  let backend: ContractBackend;
  let store: CoordStore;
  const others: CoordStore[] = [];
  /** Another client of the same member (another controller, say). */
  const another = () => {
    const client = new EtcdCoordStore(parseStoreLocation(backend.endpoint), { requestTimeoutMs: 3_000 });
    others.push(client);
    return client;
  };

  before(async () => {
    backend = await start();
    store = new EtcdCoordStore(parseStoreLocation(`etcd://${backend.endpoint}`), { requestTimeoutMs: 3_000 });
  });
  after(async () => {
    for (const client of others) client.close();
    store?.close();
    await backend?.stop();
  });

  test(`${backendName}: put, get, range by prefix with sort and limit, count, delete`, async () => {
    const first = await store.put('/kv/a', 'one');
    await store.put('/kv/b', 'two');
    await store.put('/kv/c', 'three');
    await store.put('/kw/x', 'outside');
    const a = await store.get('/kv/a');
    assert.equal(a?.value, 'one');
    assert.equal(a?.createRevision, first.revision);
    assert.equal(a?.version, 1n);
    assert.equal(await store.get('/kv/missing'), undefined);

    const all = await store.range('/kv/', { prefix: true });
    assert.deepEqual(all.kvs.map((kv) => kv.key), ['/kv/a', '/kv/b', '/kv/c']);
    assert.equal(all.count, 3);
    const newest = await store.range('/kv/', { prefix: true, sort: { target: 'create', order: 'descend' }, limit: 1 });
    assert.deepEqual(newest.kvs.map((kv) => kv.value), ['three']);
    assert.equal(newest.more, true);
    assert.equal(newest.count, 3);
    const counted = await store.range('/kv/', { prefix: true, countOnly: true });
    assert.equal(counted.count, 3);
    assert.deepEqual(counted.kvs, []);
    const keysOnly = await store.range('/kv/', { prefix: true, keysOnly: true });
    assert.deepEqual(keysOnly.kvs.map((kv) => [kv.key, kv.value]), [['/kv/a', ''], ['/kv/b', ''], ['/kv/c', '']]);
    const before = await store.range('/kv/', { prefix: true, maxCreateRevision: first.revision });
    assert.deepEqual(before.kvs.map((kv) => kv.key), ['/kv/a']);
    const ranged = await store.range('/kv/a', { rangeEnd: '/kv/c' });
    assert.deepEqual(ranged.kvs.map((kv) => kv.key), ['/kv/a', '/kv/b']);

    const overwritten = await store.put('/kv/a', 'uno');
    const a2 = await store.get('/kv/a');
    assert.equal(a2?.version, 2n);
    assert.equal(a2?.createRevision, first.revision);
    assert.equal(a2?.modRevision, overwritten.revision);
    const atFirst = await store.range('/kv/a', { revision: first.revision });
    assert.equal(atFirst.kvs[0]?.value, 'one', 'a read at an old revision sees the old value');

    assert.equal((await store.delete('/kv/a')).deleted, 1);
    assert.equal((await store.delete('/kv/', { prefix: true })).deleted, 2);
    assert.equal((await store.range('/kv/', { prefix: true })).count, 0);
    assert.equal((await store.get('/kw/x'))?.value, 'outside', 'a prefix delete stays inside its prefix');
  });

  test(`${backendName}: transactions compare create, mod, version and value; the failure branch runs otherwise`, async () => {
    const created = await store.txn({
      compare: [{ key: '/txn/k', target: 'create', result: '=', value: 0n }],
      success: [{ kind: 'put', key: '/txn/k', value: 'v1' }, { kind: 'put', key: '/txn/other', value: 'x' }],
      failure: [{ kind: 'range', key: '/txn/k' }],
    });
    assert.equal(created.succeeded, true);
    assert.equal(created.results.length, 2);
    const again = await store.txn({
      compare: [{ key: '/txn/k', target: 'create', result: '=', value: 0n }],
      success: [{ kind: 'put', key: '/txn/k', value: 'v2' }],
      failure: [{ kind: 'range', key: '/txn/k' }],
    });
    assert.equal(again.succeeded, false);
    const found = again.results[0];
    assert.equal(found?.kind, 'range');
    assert.equal(found?.kind === 'range' ? found.result.kvs[0]?.createRevision : undefined, created.revision);

    const guarded = (compare: Parameters<CoordStore['txn']>[0]['compare']) => store.txn({ compare, success: [{ kind: 'put', key: '/txn/k', value: 'guarded' }] });
    assert.equal((await guarded([{ key: '/txn/k', target: 'create', result: '=', value: created.revision + 100n }])).succeeded, false);
    assert.equal((await guarded([{ key: '/txn/k', target: 'value', result: '=', value: 'nope' }])).succeeded, false);
    assert.equal((await guarded([{ key: '/txn/k', target: 'version', result: '>', value: 5n }])).succeeded, false);
    assert.equal((await guarded([{ key: '/txn/k', target: 'mod', result: '<', value: created.revision }])).succeeded, false);
    assert.equal((await store.get('/txn/k'))?.value, 'v1', 'no failed compare wrote anything');
    const both = await guarded([
      { key: '/txn/k', target: 'create', result: '=', value: created.revision },
      { key: '/txn/k', target: 'value', result: '=', value: 'v1' },
      { key: '/txn/k', target: 'version', result: '=', value: 1n },
      { key: '/txn/k', target: 'mod', result: '=', value: created.revision },
      { key: '/txn/gone', target: 'version', result: '=', value: 0n },
    ]);
    assert.equal(both.succeeded, true);
    assert.ok(both.revision > created.revision);
    assert.equal((await store.get('/txn/k'))?.value, 'guarded');

    await store.delete('/txn/k');
    assert.equal((await guarded([{ key: '/txn/k', target: 'create', result: '=', value: created.revision }])).succeeded, false, 'a deleted key has create revision 0');
    const deleted = await store.txn({ compare: [], success: [{ kind: 'delete', key: '/txn/', prefix: true }] });
    assert.deepEqual(deleted.results, [{ kind: 'delete', deleted: 1 }]);
  });

  test(`${backendName}: a watch from a past revision replays history in order, then follows live writes; cancel stops it`, async () => {
    const first = await store.put('/watch/a', '1');
    await store.put('/watch/b', '2');
    await store.delete('/watch/a');
    const seen: WatchEvent[] = [];
    const watch = await store.watch('/watch/', { prefix: true, fromRevision: first.revision, prevKv: true }, { onEvents: (events) => seen.push(...events) });
    await eventually('the three past events', () => seen.length >= 3);
    assert.deepEqual(seen.map((e) => [e.type, e.kv.key, e.kv.value]), [['put', '/watch/a', '1'], ['put', '/watch/b', '2'], ['delete', '/watch/a', '']]);
    assert.equal(seen[2]!.prevKv?.value, '1', 'a delete carries the previous value when asked');
    const live = await store.put('/watch/c', '3');
    await store.put('/elsewhere', 'not watched');
    await eventually('the live event', () => seen.length >= 4);
    assert.deepEqual([seen[3]!.type, seen[3]!.kv.key, seen[3]!.kv.modRevision], ['put', '/watch/c', live.revision]);
    assert.equal(watch.lastRevision(), live.revision);
    await watch.cancel();
    await store.put('/watch/d', '4');
    await delay(200);
    assert.equal(seen.length, 4, 'nothing arrives after cancel');

    const fromNow: WatchEvent[] = [];
    const current = await another().watch('/watch/', { prefix: true }, { onEvents: (events) => fromNow.push(...events) });
    const next = await store.put('/watch/e', '5');
    await eventually('an event on a watch started from now', () => fromNow.length === 1);
    assert.equal(fromNow[0]!.kv.modRevision, next.revision, 'a watch from now sees no history');
    await current.cancel();
  });

  test(`${backendName}: a watch from a compacted revision fails with CONCORD_E_STORE_COMPACTED and the compaction revision`, async () => {
    const old = await store.put('/compact/k', 'old');
    const latest = await store.put('/compact/k', 'new');
    const compacted = await runEtcdctl({ endpoint: backend.endpoint, args: ['compact', String(latest.revision)] });
    assert.equal(compacted.exitCode, 0, compacted.stderr);
    const errors: CoordError[] = [];
    const events: WatchEvent[] = [];
    await store.watch('/compact/', { prefix: true, fromRevision: old.revision }, { onEvents: (batch) => events.push(...batch), onError: (error) => errors.push(error) }).then(
      () => eventually('the watch to end', () => errors.length > 0),
      (error: unknown) => errors.push(error as CoordError),
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'CONCORD_E_STORE_COMPACTED');
    assert.match(errors[0]!.message, new RegExp(`compacted its history up to ${latest.revision}`));
    assert.deepEqual(events, [], 'no event is delivered from a history that is gone');
  });

  test(`${backendName}: a lease's keys live while it is kept alive, go when it is revoked, and expire once keep-alives stop`, async () => {
    const kept = await store.grantLease(TTL_SECONDS);
    assert.equal(kept.ttlSeconds, TTL_SECONDS);
    await store.put('/lease/kept', 'x', { lease: kept.id });
    assert.equal((await store.get('/lease/kept'))?.lease, kept.id);
    await delay(TTL_SECONDS * 1000 * 2.5);
    assert.equal((await store.get('/lease/kept'))?.value, 'x', 'kept alive past 2.5 TTLs');
    assert.ok(kept.alive());
    await kept.keepAliveOnce();
    await kept.revoke();
    assert.equal(await store.get('/lease/kept'), undefined, 'revoke deletes the keys at once');
    assert.equal(kept.alive(), false);

    const crashed = await store.grantLease(TTL_SECONDS);
    let lost: CoordError | undefined;
    crashed.onLost((error) => (lost = error));
    await store.put('/lease/crashed', 'y', { lease: crashed.id });
    crashed.release(); // what a crash or a long pause does
    await eventually('the key of a released lease expires', async () => (await store.get('/lease/crashed')) === undefined);
    assert.equal(lost, undefined, 'a deliberate release is not a loss');

    // A pause: time passes for this process without any keep-alive being confirmed.
    let pausedForMs = 0;
    const pausable = new EtcdCoordStore(parseStoreLocation(backend.endpoint), { requestTimeoutMs: 3_000, nowMs: () => performance.now() + pausedForMs });
    others.push(pausable);
    const paused = await pausable.grantLease(TTL_SECONDS);
    paused.onLost((error) => (lost = error));
    await delay(600); // keep-alives flow and are confirmed
    assert.equal(lost, undefined);
    pausedForMs = TTL_SECONDS * 1000 + 1;
    await eventually('the lease is reported lost once its deadline passes', () => lost !== undefined, 2_000);
    assert.equal((lost as CoordError | undefined)?.code, 'CONCORD_E_STORE_LEASE_LOST');
    assert.equal(paused.alive(), false);
    await paused.revoke();
  });

  test(`${backendName}: an election has one leader at a time; the next contender leads when it resigns or its lease expires; tokens grow`, async () => {
    const election = new Election(store, '/election/');
    const leases: LeaseHandle[] = [];
    const lease = async (client: CoordStore) => {
      const granted = await client.grantLease(TTL_SECONDS);
      leases.push(granted);
      return granted;
    };
    try {
      const first = await election.campaign(await lease(store), 'first');
      assert.equal((await election.leader())?.value, 'first');
      assert.equal((await election.leader())?.createRevision, first.token);
      const secondClient = another();
      const secondElection = new Election(secondClient, '/election/');
      const second = secondElection.campaign(await lease(secondClient), 'second');
      assert.equal(await settledWithin(second, STILL_WAITING_MS), false, 'a second contender waits while the first leads');
      assert.equal(await election.resign(first), true);
      const secondTurn = await second;
      assert.ok(secondTurn.token > first.token, 'the fencing token grows with each leader');
      assert.equal((await election.leader())?.value, 'second');
      assert.equal(await election.isLeader(first), false);
      assert.equal(await secondElection.isLeader(secondTurn), true);

      const fenced = await store.txn({ compare: [{ key: first.key, target: 'create', result: '=', value: first.token }], success: [{ kind: 'put', key: '/election-fenced', value: 'stale' }] });
      assert.equal(fenced.succeeded, false, "a deposed leader's fenced transaction fails");

      const third = election.campaign(await lease(store), 'third');
      assert.equal(await settledWithin(third, STILL_WAITING_MS), false);
      secondTurn.lease.release(); // the leader's process dies: no resign, its lease runs out
      const thirdTurn = await third;
      assert.ok(thirdTurn.token > secondTurn.token);
      assert.equal((await election.leader())?.value, 'third');

      const abort = new AbortController();
      const fourth = election.campaign(await lease(store), 'fourth', abort.signal);
      await delay(100);
      abort.abort();
      await assert.rejects(fourth, RecipeAbortedError);
      assert.equal((await store.range('/election/', { prefix: true })).count, 1, 'an abandoned campaign leaves no key behind');
    } finally {
      for (const granted of leases) await granted.revoke().catch(() => undefined);
    }
  });

  test(`${backendName}: a lock admits one holder at a time, in order of arrival`, async () => {
    const lock = new Lock(store, '/lock/');
    const leases = await Promise.all([1, 2, 3].map(() => store.grantLease(TTL_SECONDS)));
    try {
      const order: string[] = [];
      const first = await lock.acquire(leases[0]!);
      const second = lock.acquire(leases[1]!).then((held) => (order.push('second'), held));
      await delay(50);
      const third = lock.acquire(leases[2]!).then((held) => (order.push('third'), held));
      assert.equal(await settledWithin(Promise.race([second, third]), STILL_WAITING_MS), false);
      await lock.release(first);
      const secondHeld = await second;
      assert.equal(await settledWithin(third, STILL_WAITING_MS), false, 'the third waits for the second');
      await lock.release(secondHeld);
      await lock.release(await third);
      assert.deepEqual(order, ['second', 'third']);
    } finally {
      for (const lease of leases) await lease.revoke().catch(() => undefined);
    }
  });

  test(`${backendName}: an unreachable store fails with CONCORD_E_STORE_UNAVAILABLE within the request timeout`, async () => {
    const nobody = new EtcdCoordStore(parseStoreLocation(`127.0.0.1:${await freePort()}`), { requestTimeoutMs: 500 });
    try {
      const started = Date.now();
      await assert.rejects(nobody.get('/x'), (error: unknown) => error instanceof CoordError && error.code === 'CONCORD_E_STORE_UNAVAILABLE' && /check that its members are running/.test(error.message));
      assert.ok(Date.now() - started < 10_000, 'bounded by the request timeout and the client retries');
    } finally {
      nobody.close();
    }
  });
}
