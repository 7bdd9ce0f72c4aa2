// Leases, as etcd's lessor (server/lease/lessor.go) and the "etcd3 API" lease section describe:
// grants raise short TTLs to the minimum, refuse TTLs above MaxLeaseTTL and existing IDs; revoking
// deletes the attached keys; only the leader tracks deadlines, extended by the election timeout
// on promotion.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseIdGenerator, LeaseStore, MAX_LEASE_TTL_SECONDS, leaseTimeToLive, minLeaseTtlSeconds } from '../../src/kv/lease.ts';
import { LeaseExpiryTracker } from '../../src/kv/lease-expiry.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import type { ApplyResult } from '../../src/kv/state-machine.ts';
import type { KvCommand } from '../../src/kv/types.ts';
import { assertKvError, b, text } from './helpers.ts';

test('the minimum TTL is 1.5 election timeouts rounded up to seconds, as etcd computes it', () => {
  assert.equal(minLeaseTtlSeconds(10, 100), 2, "etcd's defaults: 10 ticks of 100 ms give 1.5 s, so 2 s");
  assert.equal(minLeaseTtlSeconds(5, 100), 1, '(3 * 5 / 2) ticks is 7 ticks in integer division: 0.7 s, so 1 s');
  assert.equal(minLeaseTtlSeconds(10, 1000), 15);
});

test('grant raises a short TTL to the minimum and refuses ID 0, existing IDs and huge TTLs', () => {
  const leases = new LeaseStore({ minTtlSeconds: 5 });
  assert.deepEqual(leases.grant(1n, 2), { id: 1n, ttlSeconds: 5 });
  assert.deepEqual(leases.grant(2n, 60), { id: 2n, ttlSeconds: 60 });
  assertKvError(() => leases.grant(1n, 60), 'CONCORD_E_LEASE_EXISTS', 'etcdserver: lease already exists');
  assertKvError(() => leases.grant(0n, 60), 'CONCORD_E_LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
  assertKvError(() => leases.grant(3n, MAX_LEASE_TTL_SECONDS + 1), 'CONCORD_E_LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL');
  assert.deepEqual(leases.grant(3n, MAX_LEASE_TTL_SECONDS), { id: 3n, ttlSeconds: MAX_LEASE_TTL_SECONDS });
  assert.deepEqual(leases.list(), [1n, 2n, 3n]);
});

test('attached keys are listed in byte order and detach quietly from a missing lease', () => {
  const leases = new LeaseStore();
  leases.grant(7n, 10);
  leases.attach(7n, b('b'));
  leases.attach(7n, b('a'));
  assert.deepEqual(leases.get(7n)!.keys.map(text), ['a', 'b']);
  leases.detach(7n, b('a'));
  leases.detach(99n, b('a'));
  assert.deepEqual(leases.keysOf(7n).map(text), ['b']);
  assertKvError(() => leases.keysOf(99n), 'CONCORD_E_LEASE_NOT_FOUND');
  assertKvError(() => leases.attach(99n, b('x')), 'CONCORD_E_LEASE_NOT_FOUND');
});

test('lease IDs from the generator are positive, distinct, and carry the member in their top bits', () => {
  const generator = new LeaseIdGenerator(0xabcdn, 1_700_000_000_000);
  const ids = Array.from({ length: 1000 }, () => generator.next());
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) {
    assert.ok(id > 0n && id < 2n ** 63n);
    assert.equal(id >> 48n, 0xabcdn & 0x7fffn);
  }
  const again = new LeaseIdGenerator(0xabcdn, 1_700_000_000_000);
  assert.equal(again.next(), ids[0], 'the same member and start time give the same sequence');
  assert.notEqual(new LeaseIdGenerator(1n, 1_700_000_000_000).next(), ids[0]);
});

function applyAll(machine: KvStateMachine, commands: KvCommand[]): ApplyResult[] {
  return commands.map((command) => machine.apply(command, machine.appliedIndex + 1));
}

test('keys follow their lease: put attaches, re-put without lease and delete detach', () => {
  const machine = new KvStateMachine();
  applyAll(machine, [
    { type: 'leaseGrant', request: { id: 5n, ttl: 60 } },
    { type: 'put', request: { key: b('a'), value: b('1'), lease: 5n } },
    { type: 'put', request: { key: b('b'), value: b('1'), lease: 5n } },
    { type: 'put', request: { key: b('c'), value: b('1'), lease: 5n } },
  ]);
  assert.deepEqual(machine.lease(5n)!.keys.map(text), ['a', 'b', 'c']);
  applyAll(machine, [
    { type: 'put', request: { key: b('a'), value: b('2') } },
    { type: 'put', request: { key: b('b'), value: b('2'), ignoreLease: true } },
    { type: 'deleteRange', request: { key: b('c') } },
  ]);
  assert.deepEqual(machine.lease(5n)!.keys.map(text), ['b']);
});

test('revoking a lease deletes its keys in one revision, as etcd does in one transaction', () => {
  const machine = new KvStateMachine();
  applyAll(machine, [
    { type: 'leaseGrant', request: { id: 5n, ttl: 60 } },
    { type: 'put', request: { key: b('z'), value: b('1'), lease: 5n } },
    { type: 'put', request: { key: b('a'), value: b('1'), lease: 5n } },
    { type: 'put', request: { key: b('keep'), value: b('1') } },
  ]);
  const revoked = applyAll(machine, [{ type: 'leaseRevoke', request: { id: 5n } }])[0]!;
  assert.ok(revoked.status === 'applied');
  assert.equal(revoked.revision, 5);
  assert.deepEqual(revoked.events.map((event) => [event.type, text(event.kv.key), event.kv.modRevision]), [
    ['delete', 'a', 5],
    ['delete', 'z', 5],
  ]);
  assert.deepEqual(revoked.response, { type: 'leaseRevoke', response: { header: { revision: 5 } } });
  assert.equal(machine.lease(5n), undefined);
  assert.deepEqual(machine.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) }).kvs.map((kv) => text(kv.key)), ['keep']);
  const again = applyAll(machine, [{ type: 'leaseRevoke', request: { id: 5n } }])[0]!;
  assert.ok(again.status === 'failed');
  assert.equal(again.error.message, 'etcdserver: requested lease not found');
});

test('revoking a lease without keys leaves the revision alone', () => {
  const machine = new KvStateMachine();
  const results = applyAll(machine, [
    { type: 'leaseGrant', request: { id: 9n, ttl: 1 } },
    { type: 'leaseRevoke', request: { id: 9n } },
  ]);
  const granted = results[0]!;
  const revoked = results[1]!;
  assert.ok(granted.status === 'applied');
  assert.deepEqual(granted.response, { type: 'leaseGrant', response: { header: { revision: 1 }, id: 9n, ttl: 2 } });
  assert.ok(revoked.status === 'applied');
  assert.equal(revoked.revision, 1);
  assert.deepEqual(revoked.events, []);
});

test('a put naming a revoked lease fails and changes nothing', () => {
  const machine = new KvStateMachine();
  applyAll(machine, [{ type: 'leaseGrant', request: { id: 5n, ttl: 60 } }, { type: 'leaseRevoke', request: { id: 5n } }]);
  const result = applyAll(machine, [{ type: 'put', request: { key: b('a'), value: b('1'), lease: 5n } }])[0]!;
  assert.ok(result.status === 'failed');
  assert.equal(result.error.code, 'CONCORD_E_LEASE_NOT_FOUND');
  assert.equal(machine.currentRevision, 1);
});

test('the expiry tracker does nothing until promoted, then gives every lease its TTL plus the extension', () => {
  const tracker = new LeaseExpiryTracker({ expiredLeaseRetryIntervalMs: 10_000 });
  tracker.granted(1n, 10, 0);
  assert.deepEqual(tracker.expired(1_000_000), [], 'followers track no deadlines');
  assertKvError(() => tracker.renew(1n, 0), 'CONCORD_E_LEASE_NOT_PRIMARY', 'etcdserver: not leader');
  tracker.promote([{ id: 1n, ttlSeconds: 10 }, { id: 2n, ttlSeconds: 5 }], 1000, 1000);
  assert.equal(tracker.remainingTtlSeconds(1n, 1000), 11);
  assert.deepEqual(tracker.expired(6999), []);
  assert.deepEqual(tracker.expired(7000), [2n], 'lease 2: 1000 + 1000 + 5000');
  assert.deepEqual(tracker.expired(12000), [1n], 'lease 2 was handed out already and waits for its retry');
  tracker.demote();
  assert.equal(tracker.remainingTtlSeconds(1n, 0), undefined);
});

test('keep-alive resets the deadline to now + TTL; an expired lease cannot be renewed', () => {
  const tracker = new LeaseExpiryTracker();
  tracker.promote([], 0, 0);
  tracker.granted(1n, 10, 0);
  assert.equal(tracker.renew(1n, 9000), 10);
  assert.equal(tracker.remainingTtlSeconds(1n, 9000), 10);
  assert.equal(tracker.remainingTtlSeconds(1n, 9001), 9, 'whole seconds, truncated as etcd reports them');
  assert.deepEqual(tracker.expired(18999), []);
  assertKvError(() => tracker.renew(1n, 19000), 'CONCORD_E_LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
  assert.equal(tracker.remainingTtlSeconds(1n, 25000), 0, 'never negative');
  assertKvError(() => tracker.renew(42n, 0), 'CONCORD_E_LEASE_NOT_FOUND');
});

test('expired leases come out earliest first, in bounded batches, and again after the retry interval', () => {
  const tracker = new LeaseExpiryTracker({ expiredLeaseRetryIntervalMs: 3000 });
  tracker.promote([], 0, 0);
  for (let id = 1n; id <= 5n; id++) tracker.granted(id, Number(6n - id), 0); // lease 5 expires first
  assert.deepEqual(tracker.expired(10_000, 2), [5n, 4n]);
  assert.deepEqual(tracker.expired(10_000, 10), [3n, 2n, 1n]);
  assert.deepEqual(tracker.expired(12_999, 10), []);
  tracker.revoked(5n);
  assert.deepEqual(tracker.expired(13_000, 10), [4n, 3n, 2n, 1n], 'revokes that did not apply are proposed again');
  assert.equal(tracker.trackedCount, 4);
});

test('TimeToLive combines the granted TTL and keys with the leader\'s remaining TTL; a missing lease has TTL -1', () => {
  const machine = new KvStateMachine();
  applyAll(machine, [
    { type: 'leaseGrant', request: { id: 3n, ttl: 30 } },
    { type: 'put', request: { key: b('k'), value: b('v'), lease: 3n } },
  ]);
  const tracker = new LeaseExpiryTracker();
  tracker.promote(machine.leaseTtls(), 0, 1000);
  const live = leaseTimeToLive(machine.lease(3n), tracker.remainingTtlSeconds(3n, 5000), { id: 3n, keys: true }, machine.currentRevision);
  assert.deepEqual({ ...live, keys: live.keys.map(text) }, { header: { revision: 2 }, id: 3n, ttl: 26, grantedTtl: 30, keys: ['k'] });
  assert.deepEqual(leaseTimeToLive(machine.lease(3n), 26, { id: 3n }, 2).keys, [], 'keys only when asked');
  assert.deepEqual(leaseTimeToLive(machine.lease(4n), undefined, { id: 4n }, 2), { header: { revision: 2 }, id: 4n, ttl: -1, grantedTtl: 0, keys: [] });
});
