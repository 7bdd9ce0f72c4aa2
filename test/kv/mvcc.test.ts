// MvccStore against etcd's documented behaviour. References:
// * "etcd3 API" (etcd.io/docs/v3.5/learning/api/): revisions, versions, ranges, txns, compaction.
// * etcd's server/etcdserver/txn (executeRange, checkTxn, applyCompare) and storage/mvcc
//   (rangeKeys, storeTxnWrite, updateCompactRev), whose behaviour the comments quote.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/kv/mvcc.ts';
import type { RangeRequest, RequestOp } from '../../src/kv/types.ts';
import { prefixRangeEnd } from '../../src/kv/key-range.ts';
import { assertKvError, b, text } from './helpers.ts';

const ALL: RangeRequest = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };

function keysOf(store: MvccStore, request: RangeRequest = ALL): string[] {
  return store.range(request).kvs.map((kv) => text(kv.key));
}

function put(key: string, value: string): RequestOp {
  return { type: 'put', request: { key: b(key), value: b(value) } };
}

test('the revision starts at 1 and the first write gets revision 2', () => {
  const store = new MvccStore();
  assert.equal(store.currentRevision, 1);
  assert.deepEqual(store.range({ key: b('a') }).header, { revision: 1 });
  assert.equal(store.put({ key: b('a'), value: b('1') }).header.revision, 2);
  assert.equal(store.currentRevision, 2);
});

test('"a deletion resets the version to zero and any modification of the key increases its version"', () => {
  const store = new MvccStore();
  store.put({ key: b('k'), value: b('1') }); // 2
  store.put({ key: b('k'), value: b('2') }); // 3
  store.put({ key: b('k'), value: b('3') }); // 4
  assert.deepEqual(store.get(b('k')), {
    key: b('k'),
    value: b('3'),
    createRevision: 2,
    modRevision: 4,
    version: 3,
    lease: 0n,
  });
  store.deleteRange({ key: b('k') }); // 5
  assert.equal(store.get(b('k')), undefined);
  store.put({ key: b('k'), value: b('again') }); // 6: a new generation
  const recreated = store.get(b('k'))!;
  assert.equal(recreated.version, 1);
  assert.equal(recreated.createRevision, 6);
  assert.equal(recreated.modRevision, 6);
});

test('reads at a past revision see the store as it was, and never change the revision', () => {
  const store = new MvccStore();
  store.put({ key: b('k'), value: b('1') }); // 2
  store.put({ key: b('k'), value: b('2') }); // 3
  store.deleteRange({ key: b('k') }); // 4
  store.put({ key: b('k'), value: b('3') }); // 5
  assert.equal(store.get(b('k'), 1), undefined);
  assert.equal(text(store.get(b('k'), 2)!.value), '1');
  assert.equal(text(store.get(b('k'), 3)!.value), '2');
  assert.equal(store.get(b('k'), 4), undefined);
  assert.equal(text(store.get(b('k'), 5)!.value), '3');
  const past = store.range({ key: b('k'), revision: 3 });
  assert.equal(past.header.revision, 5, 'the header carries the current revision, as etcd');
  assert.equal(store.currentRevision, 5);
});

test('rangeEnd: empty is one key, "\\0" is every key >= key, otherwise [key, rangeEnd)', () => {
  const store = new MvccStore();
  for (const key of ['a', 'ab', 'abc', 'b', 'c']) store.put({ key: b(key), value: b(key) });
  assert.deepEqual(keysOf(store, { key: b('ab'), rangeEnd: new Uint8Array(0) }), ['ab']);
  assert.deepEqual(keysOf(store, { key: b('ab'), rangeEnd: new Uint8Array([0]) }), ['ab', 'abc', 'b', 'c']);
  assert.deepEqual(keysOf(store, { key: b('ab'), rangeEnd: b('b') }), ['ab', 'abc']);
  assert.deepEqual(keysOf(store, { key: b('a'), rangeEnd: prefixRangeEnd(b('a')) }), ['a', 'ab', 'abc']);
  assert.deepEqual(keysOf(store, { key: b('b'), rangeEnd: b('a') }), [], 'an inverted range is empty');
});

test('keys compare byte-wise, not as text', () => {
  const store = new MvccStore();
  const high = new Uint8Array([0xc3, 0xa9]); // "é" in UTF-8 sorts after every ASCII key
  store.put({ key: high, value: b('x') });
  store.put({ key: b('z'), value: b('x') });
  store.put({ key: new Uint8Array([0x01]), value: b('x') });
  const keys = store.range(ALL).kvs.map((kv) => [...kv.key]);
  assert.deepEqual(keys, [[0x01], [0x7a], [0xc3, 0xa9]]);
});

test('limit cuts the result and sets more; count is every key in the range', () => {
  const store = new MvccStore();
  for (const key of ['a', 'b', 'c', 'd']) store.put({ key: b(key), value: b(key) });
  const limited = store.range({ ...ALL, limit: 2 });
  assert.deepEqual(limited.kvs.map((kv) => text(kv.key)), ['a', 'b']);
  assert.equal(limited.more, true);
  assert.equal(limited.count, 4);
  const exact = store.range({ ...ALL, limit: 4 });
  assert.equal(exact.more, false);
  assert.equal(store.range({ ...ALL, limit: 0 }).kvs.length, 4, 'limit 0 means no limit');
});

test('sorting by every target; a target other than key sorts ascending by default', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('3') }); // 2
  store.put({ key: b('b'), value: b('1') }); // 3
  store.put({ key: b('c'), value: b('2') }); // 4
  store.put({ key: b('a'), value: b('4') }); // 5: a has version 2, mod 5
  const sorted = (sortTarget: 'key' | 'version' | 'create' | 'mod' | 'value', sortOrder?: 'ascend' | 'descend' | 'none') =>
    keysOf(store, { ...ALL, sortTarget, ...(sortOrder === undefined ? {} : { sortOrder }) });
  assert.deepEqual(sorted('key', 'descend'), ['c', 'b', 'a']);
  assert.deepEqual(sorted('key', 'none'), ['a', 'b', 'c']);
  assert.deepEqual(sorted('value'), ['b', 'c', 'a'], 'default order for a value target is ascend');
  assert.deepEqual(sorted('value', 'descend'), ['a', 'c', 'b']);
  assert.deepEqual(sorted('mod', 'ascend'), ['b', 'c', 'a']);
  assert.deepEqual(sorted('create', 'descend'), ['c', 'b', 'a']);
  assert.deepEqual(sorted('version', 'descend'), ['a', 'b', 'c'], 'ties keep ascending key order');
  const limited = store.range({ ...ALL, sortTarget: 'mod', sortOrder: 'descend', limit: 1 });
  assert.deepEqual(limited.kvs.map((kv) => text(kv.key)), ['a'], 'limit applies after sorting');
  assert.equal(limited.more, true);
});

test('revision filters drop keys after count is taken, as etcd', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('1') }); // 2
  store.put({ key: b('b'), value: b('1') }); // 3
  store.put({ key: b('c'), value: b('1') }); // 4
  store.put({ key: b('a'), value: b('2') }); // 5
  assert.deepEqual(keysOf(store, { ...ALL, minModRevision: 4 }), ['a', 'c']);
  assert.deepEqual(keysOf(store, { ...ALL, maxModRevision: 3 }), ['b']);
  assert.deepEqual(keysOf(store, { ...ALL, minCreateRevision: 3 }), ['b', 'c']);
  assert.deepEqual(keysOf(store, { ...ALL, maxCreateRevision: 2 }), ['a']);
  assert.equal(store.range({ ...ALL, maxCreateRevision: 2 }).count, 3);
});

test('keysOnly empties values; countOnly returns only the count', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('value') });
  store.put({ key: b('b'), value: b('value') });
  const keysOnly = store.range({ ...ALL, keysOnly: true });
  assert.deepEqual(keysOnly.kvs.map((kv) => [text(kv.key), kv.value.length, kv.version]), [['a', 0, 1], ['b', 0, 1]]);
  assert.equal(text(store.get(b('a'))!.value), 'value', 'the stored value is untouched');
  assert.deepEqual(store.range({ ...ALL, countOnly: true }), { header: { revision: 3 }, kvs: [], more: false, count: 2 });
});

test('a future revision and a compacted one fail with etcd\'s messages', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('1') }); // 2
  store.put({ key: b('a'), value: b('2') }); // 3
  assertKvError(() => store.range({ key: b('a'), revision: 4 }), 'CONCORD_E_KV_FUTURE_REVISION', 'etcdserver: mvcc: required revision is a future revision');
  store.compact(3);
  assertKvError(() => store.range({ key: b('a'), revision: 2 }), 'CONCORD_E_KV_COMPACTED', 'etcdserver: mvcc: required revision has been compacted');
  assert.equal(text(store.get(b('a'), 3)!.value), '2', 'the compact revision itself is still readable');
});

test('an empty key is refused everywhere with "key is not provided"', () => {
  const store = new MvccStore();
  const message = 'etcdserver: key is not provided';
  assertKvError(() => store.range({ key: new Uint8Array(0) }), 'CONCORD_E_KV_EMPTY_KEY', message);
  assertKvError(() => store.put({ key: new Uint8Array(0), value: b('x') }), 'CONCORD_E_KV_EMPTY_KEY', message);
  assertKvError(() => store.deleteRange({ key: new Uint8Array(0) }), 'CONCORD_E_KV_EMPTY_KEY', message);
  assertKvError(
    () => store.txn({ compare: [{ target: 'version', result: 'equal', key: new Uint8Array(0), version: 0 }] }),
    'CONCORD_E_KV_EMPTY_KEY',
    message,
  );
  assert.equal(store.currentRevision, 1);
});

test('put returns the previous key-value when asked', () => {
  const store = new MvccStore();
  assert.deepEqual(store.put({ key: b('k'), value: b('1'), prevKv: true }), { header: { revision: 2 } });
  const second = store.put({ key: b('k'), value: b('2'), prevKv: true });
  assert.equal(text(second.prevKv!.value), '1');
  assert.equal(second.prevKv!.modRevision, 2);
  assert.equal(store.put({ key: b('k'), value: b('3') }).prevKv, undefined);
});

test('ignoreValue and ignoreLease keep the current value and lease, and need the key to exist', () => {
  const leases = new Set([7n, 8n]);
  const store = new MvccStore({ leaseExists: (id) => leases.has(id) });
  assertKvError(() => store.put({ key: b('k'), ignoreValue: true }), 'CONCORD_E_KV_KEY_NOT_FOUND', 'etcdserver: key not found');
  assertKvError(() => store.put({ key: b('k'), ignoreLease: true }), 'CONCORD_E_KV_KEY_NOT_FOUND', 'etcdserver: key not found');
  store.put({ key: b('k'), value: b('v'), lease: 7n });
  store.put({ key: b('k'), ignoreValue: true, lease: 8n });
  assert.deepEqual([text(store.get(b('k'))!.value), store.get(b('k'))!.lease], ['v', 8n]);
  store.put({ key: b('k'), value: b('w'), ignoreLease: true });
  assert.deepEqual([text(store.get(b('k'))!.value), store.get(b('k'))!.lease], ['w', 8n]);
  assertKvError(() => store.put({ key: b('k'), value: b('x'), ignoreValue: true }), 'CONCORD_E_KV_VALUE_PROVIDED', 'etcdserver: value is provided');
  assertKvError(() => store.put({ key: b('k'), lease: 7n, ignoreLease: true }), 'CONCORD_E_KV_LEASE_PROVIDED', 'etcdserver: lease is provided');
});

test('a put naming a lease that does not exist fails with "requested lease not found"', () => {
  const store = new MvccStore();
  assertKvError(() => store.put({ key: b('k'), value: b('v'), lease: 5n }), 'CONCORD_E_LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
  assert.equal(store.currentRevision, 1);
});

test('deleteRange counts and returns what it deleted; deleting nothing keeps the revision', () => {
  const store = new MvccStore();
  for (const key of ['a', 'b', 'c']) store.put({ key: b(key), value: b(key) }); // 2..4
  const nothing = store.deleteRange({ key: b('x'), prevKv: true });
  assert.deepEqual(nothing, { header: { revision: 4 }, deleted: 0, prevKvs: [] });
  assert.equal(store.currentRevision, 4);
  const some = store.deleteRange({ key: b('a'), rangeEnd: b('c'), prevKv: true });
  assert.equal(some.header.revision, 5);
  assert.equal(some.deleted, 2);
  assert.deepEqual(some.prevKvs.map((kv) => text(kv.value)), ['a', 'b']);
  assert.deepEqual(keysOf(store), ['c']);
  assert.deepEqual(store.deleteRange({ key: b('c') }).prevKvs, [], 'prevKvs only when asked');
});

test('every change of one delete shares its revision, with sub-revisions in key order', () => {
  const store = new MvccStore();
  for (const key of ['a', 'b']) store.put({ key: b(key), value: b(key) });
  store.deleteRange({ ...ALL });
  const events = store.eventsAt(4);
  assert.deepEqual(events.map((event) => [event.type, text(event.kv.key), event.kv.modRevision]), [
    ['delete', 'a', 4],
    ['delete', 'b', 4],
  ]);
  assert.deepEqual(events[0]!.kv, { key: b('a'), createRevision: 0, modRevision: 4, version: 0, value: new Uint8Array(0), lease: 0n });
  assert.equal(text(events[0]!.prevKv!.value), 'a');
});

test('a txn takes the success branch when every compare holds, else the failure branch', () => {
  const store = new MvccStore();
  store.put({ key: b('k'), value: b('1') }); // 2
  const txn = (value: string) =>
    store.txn({
      compare: [{ target: 'value', result: 'equal', key: b('k'), value: b(value) }],
      success: [put('k', 'matched')],
      failure: [{ type: 'range', request: { key: b('k') } }],
    });
  const failed = txn('nope');
  assert.equal(failed.succeeded, false);
  assert.equal(failed.header.revision, 2, 'a txn of reads does not change the revision');
  assert.equal(store.currentRevision, 2);
  assert.equal(failed.responses[0]!.type, 'range');
  const succeeded = txn('1');
  assert.equal(succeeded.succeeded, true);
  assert.equal(succeeded.header.revision, 3);
  assert.equal(text(store.get(b('k'))!.value), 'matched');
});

test('all writes of a txn share one revision with increasing sub-revisions, and later ops see earlier ones', () => {
  const store = new MvccStore();
  store.put({ key: b('gone'), value: b('x') }); // 2
  const response = store.txn({
    success: [
      put('a', '1'),
      { type: 'deleteRange', request: { key: b('gone') } },
      { type: 'range', request: { ...ALL } },
      put('b', '2'),
    ],
  });
  assert.equal(response.header.revision, 3);
  assert.equal(store.currentRevision, 3);
  assert.deepEqual(store.eventsAt(3).map((event) => [event.type, text(event.kv.key)]), [
    ['put', 'a'],
    ['delete', 'gone'],
    ['put', 'b'],
  ]);
  const read = response.responses[2]!;
  assert.ok(read.type === 'range');
  assert.deepEqual(read.response.kvs.map((kv) => text(kv.key)), ['a'], 'the range sees the put and the delete before it');
  assert.equal(read.response.header.revision, 3);
  const deleted = response.responses[1]!;
  assert.ok(deleted.type === 'deleteRange');
  assert.equal(deleted.response.header.revision, 3);
});

test('compares: missing keys compare as zero, a value compare on a missing key fails, ranges need every key', () => {
  const store = new MvccStore({ leaseExists: () => true });
  store.put({ key: b('p/1'), value: b('a'), lease: 9n }); // 2
  store.put({ key: b('p/2'), value: b('b') }); // 3
  const holds = (compare: Parameters<MvccStore['txn']>[0]['compare']) => store.txn({ compare }).succeeded;
  assert.equal(holds([{ target: 'version', result: 'equal', key: b('missing'), version: 0 }]), true);
  assert.equal(holds([{ target: 'create', result: 'equal', key: b('missing'), createRevision: 0 }]), true);
  assert.equal(holds([{ target: 'value', result: 'equal', key: b('missing'), value: new Uint8Array(0) }]), false);
  assert.equal(holds([{ target: 'value', result: 'notEqual', key: b('missing'), value: b('x') }]), false);
  const prefix = { key: b('p/'), rangeEnd: prefixRangeEnd(b('p/')) };
  assert.equal(holds([{ target: 'mod', result: 'greater', ...prefix, modRevision: 1 }]), true);
  assert.equal(holds([{ target: 'mod', result: 'greater', ...prefix, modRevision: 2 }]), false, 'p/1 has mod 2');
  assert.equal(holds([{ target: 'value', result: 'less', ...prefix, value: b('c') }]), true);
  assert.equal(holds([{ target: 'lease', result: 'equal', key: b('p/1'), lease: 9n }]), true);
  assert.equal(holds([{ target: 'lease', result: 'equal', key: b('p/2'), lease: 0n }]), true);
  assert.equal(holds([{ target: 'version', result: 'greater', key: b('p/1'), version: 0 }, { target: 'version', result: 'less', key: b('p/1'), version: 1 }]), false, 'every compare must hold');
});

test('a key written twice in one txn is refused before anything is applied', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('0') }); // 2
  const duplicate = (ops: RequestOp[]) => assertKvError(() => store.txn({ success: ops }), 'CONCORD_E_KV_DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request');
  duplicate([put('x', '1'), put('x', '2')]);
  duplicate([{ type: 'deleteRange', request: { key: b('a'), rangeEnd: b('z') } }, put('x', '1')]);
  duplicate([put('x', '1'), { type: 'deleteRange', request: { key: b('x') } }]);
  duplicate([put('x', '1'), { type: 'txn', request: { success: [put('x', '2')] } }]);
  duplicate([{ type: 'txn', request: { success: [put('x', '1')] } }, { type: 'txn', request: { failure: [put('x', '2')] } }]);
  duplicate([{ type: 'deleteRange', request: { key: b('w'), rangeEnd: new Uint8Array([0]) } }, put('x', '1')]);
  duplicate([{ type: 'deleteRange', request: { key: b('x') } }, { type: 'txn', request: { success: [put('x', '1')] } }]);
  // Found by the command-codec property test: a nested put followed by a later nested delete of the
  // same key (etcd's check lets this through and writes the key twice in one revision).
  duplicate([
    { type: 'txn', request: { failure: [put('x', '1')] } },
    { type: 'txn', request: { success: [{ type: 'deleteRange', request: { key: b('x') } }] } },
  ]);
  assert.equal(store.currentRevision, 2);
  assert.equal(text(store.get(b('a'))!.value), '0');
});

test('puts in the two branches of one nested txn may share a key, and deletes may overlap', () => {
  const store = new MvccStore();
  const nested: RequestOp = {
    type: 'txn',
    request: {
      compare: [{ target: 'version', result: 'equal', key: b('x'), version: 0 }],
      success: [put('x', 'then')],
      failure: [put('x', 'else')],
    },
  };
  const response = store.txn({ success: [nested] });
  assert.equal(text(store.get(b('x'))!.value), 'then');
  const inner = response.responses[0]!;
  assert.ok(inner.type === 'txn');
  assert.equal(inner.response.succeeded, true);
  assert.equal(inner.response.header.revision, 0, 'etcd fills only the outer header');
  store.txn({ success: [{ type: 'deleteRange', request: { key: b('a'), rangeEnd: b('z') } }, { type: 'deleteRange', request: { key: b('x') } }] });
  assert.equal(store.get(b('x')), undefined);
  assert.equal(store.eventsAt(3).length, 1, 'a key deleted twice is written once');
});

test('at most maxTxnOps operations per branch, and nested txns share the budget', () => {
  const store = new MvccStore({ maxTxnOps: 4 });
  const puts = (count: number) => Array.from({ length: count }, (_, i) => put(`k${i}`, 'v'));
  const message = 'etcdserver: too many operations in txn request';
  assertKvError(() => store.txn({ success: puts(5) }), 'CONCORD_E_KV_TOO_MANY_OPS', message);
  store.txn({ success: puts(4), failure: puts(4) });
  const compares = Array.from({ length: 5 }, () => ({ target: 'version' as const, result: 'equal' as const, key: b('k'), version: 0 }));
  assertKvError(() => store.txn({ compare: compares }), 'CONCORD_E_KV_TOO_MANY_OPS', message);
  // The outer txn uses 2, leaving 2 for the nested one.
  assertKvError(() => store.txn({ success: [put('a', '1'), { type: 'txn', request: { success: puts(3) } }] }), 'CONCORD_E_KV_TOO_MANY_OPS', message);
  store.txn({ success: [put('a', '1'), { type: 'txn', request: { success: [put('b', '1'), put('c', '1')] } }] });
});

test('a failing check in the chosen branch applies nothing', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('1') }); // 2
  assertKvError(() => store.txn({ success: [put('b', '1'), { type: 'range', request: { key: b('a'), revision: 3 } }] }), 'CONCORD_E_KV_FUTURE_REVISION');
  assertKvError(() => store.txn({ success: [put('b', '1'), { type: 'put', request: { key: b('c'), ignoreValue: true } }] }), 'CONCORD_E_KV_KEY_NOT_FOUND');
  assertKvError(() => store.txn({ success: [put('b', '1'), { type: 'put', request: { key: b('c'), value: b('x'), lease: 3n } }] }), 'CONCORD_E_LEASE_NOT_FOUND');
  assert.equal(store.currentRevision, 2);
  assert.equal(store.get(b('b')), undefined);
  // The other branch is not checked: it does not run.
  store.txn({ compare: [{ target: 'version', result: 'equal', key: b('a'), version: 1 }], success: [put('b', '1')], failure: [{ type: 'range', request: { key: b('a'), revision: 99 } }] });
  assert.equal(store.currentRevision, 3);
});

test('compaction keeps the latest version of each live key and refuses old or future revisions', () => {
  const store = new MvccStore();
  store.put({ key: b('a'), value: b('1') }); // 2
  store.put({ key: b('a'), value: b('2') }); // 3
  store.put({ key: b('b'), value: b('1') }); // 4
  store.deleteRange({ key: b('b') }); // 5
  store.put({ key: b('c'), value: b('1') }); // 6
  assertKvError(() => store.compact(7), 'CONCORD_E_KV_FUTURE_REVISION', 'etcdserver: mvcc: required revision is a future revision');
  assert.deepEqual(store.compact(5), { header: { revision: 6 } });
  assert.equal(store.currentRevision, 6, 'compaction does not change the revision');
  assert.equal(store.compactRevision, 5);
  assertKvError(() => store.compact(5), 'CONCORD_E_KV_COMPACTED', 'etcdserver: mvcc: required revision has been compacted');
  assertKvError(() => store.compact(4), 'CONCORD_E_KV_COMPACTED');
  assert.deepEqual(store.range({ ...ALL, revision: 5 }).kvs.map((kv) => [text(kv.key), text(kv.value), kv.version]), [['a', '2', 2]]);
  assert.deepEqual(keysOf(store), ['a', 'c']);
  assertKvError(() => store.get(b('a'), 4), 'CONCORD_E_KV_COMPACTED');
  store.compact(6);
  assert.equal(text(store.get(b('a'))!.value), '2', 'an untouched key survives every compaction');
});

test('sizeBytes grows with history and shrinks when compaction drops it', () => {
  const store = new MvccStore();
  assert.equal(store.sizeBytes(), 0);
  store.put({ key: b('k'), value: b('12345') });
  assert.equal(store.sizeBytes(), 256 + 1 + 5, "etcd's cost model: 256 bytes of metadata plus key and value");
  store.put({ key: b('k'), value: b('1') });
  const before = store.sizeBytes();
  store.compact(3);
  assert.equal(store.sizeBytes(), before - (256 + 1 + 5));
});

test('hashKv is equal for equal histories, differs otherwise, and covers only revisions up to its argument', () => {
  const build = (values: string[]) => {
    const store = new MvccStore();
    values.forEach((value, i) => store.put({ key: b(`k${i % 2}`), value: b(value) }));
    return store;
  };
  const first = build(['a', 'b', 'c', 'd']);
  assert.equal(first.hashKv().hash, build(['a', 'b', 'c', 'd']).hashKv().hash);
  assert.notEqual(first.hashKv().hash, build(['a', 'b', 'c', 'x']).hashKv().hash);
  assert.deepEqual(
    { ...first.hashKv(3), header: undefined },
    { ...build(['a', 'b']).hashKv(), header: undefined },
    'hashing at revision 3 ignores what came later',
  );
  assertKvError(() => first.hashKv(6), 'CONCORD_E_KV_FUTURE_REVISION');
  first.compact(4);
  assertKvError(() => first.hashKv(3), 'CONCORD_E_KV_COMPACTED');
  assert.equal(first.hashKv().compactRevision, 4);
});

test('eventsAt gives each revision\'s changes with the previous key-values', () => {
  const store = new MvccStore();
  store.put({ key: b('k'), value: b('1') }); // 2
  store.put({ key: b('k'), value: b('2') }); // 3
  assert.deepEqual(store.eventsAt(1), []);
  assert.equal(store.eventsAt(2)[0]!.prevKv, undefined);
  assert.equal(text(store.eventsAt(3)[0]!.prevKv!.value), '1');
  store.compact(3);
  assert.equal(store.eventsAt(3)[0]!.prevKv, undefined, 'what a change at the compact revision replaced is gone');
  assertKvError(() => store.eventsAt(2), 'CONCORD_E_KV_COMPACTED');
  assertKvError(() => store.eventsAt(4), 'CONCORD_E_KV_FUTURE_REVISION');
});

test('the store keeps its own copies of keys and values', () => {
  const store = new MvccStore();
  const key = b('k');
  const value = b('v');
  store.put({ key, value });
  key[0] = 0x78;
  value[0] = 0x78;
  assert.equal(text(store.get(b('k'))!.value), 'v');
});
