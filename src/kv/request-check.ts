// Checks a request before it is applied, as etcd's kvServer does (server/etcdserver/api/v3rpc/
// key.go) before proposing: empty keys, contradicting put flags, the number of operations in a txn
// and keys written twice in one txn. The gRPC layer runs these to reject early; the store runs them
// again on apply so that a command that slipped through can never half-apply.

import type { Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.ts';
import type { KeyRange } from './key-range.ts';
import { keyInRange, keyRangeOf, toByteString } from './key-range.ts';
import { KvError, checkSafeInteger } from './errors.ts';

/** etcd's --max-txn-ops default: operations per txn branch (and compares). */
export const DEFAULT_MAX_TXN_OPS = 128;

export function checkRangeRequest(request: RangeRequest): void {
  if (request.key.length === 0) throw new KvError('CONCORD_E_KV_EMPTY_KEY', 'range');
  checkSafeInteger(request.limit ?? 0, 'range limit');
  checkSafeInteger(request.revision ?? 0, 'range revision');
  checkSafeInteger(request.minModRevision ?? 0, 'minModRevision');
  checkSafeInteger(request.maxModRevision ?? 0, 'maxModRevision');
  checkSafeInteger(request.minCreateRevision ?? 0, 'minCreateRevision');
  checkSafeInteger(request.maxCreateRevision ?? 0, 'maxCreateRevision');
}

export function checkPutRequest(request: PutRequest): void {
  if (request.key.length === 0) throw new KvError('CONCORD_E_KV_EMPTY_KEY', 'put');
  if (request.ignoreValue === true && (request.value?.length ?? 0) !== 0) {
    throw new KvError('CONCORD_E_KV_VALUE_PROVIDED');
  }
  if (request.ignoreLease === true && (request.lease ?? 0n) !== 0n) {
    throw new KvError('CONCORD_E_KV_LEASE_PROVIDED');
  }
}

export function checkDeleteRequest(request: DeleteRangeRequest): void {
  if (request.key.length === 0) throw new KvError('CONCORD_E_KV_EMPTY_KEY', 'delete');
}

function checkCompare(compare: Compare): void {
  if (compare.key.length === 0) throw new KvError('CONCORD_E_KV_EMPTY_KEY', 'compare');
  if (compare.target === 'version') checkSafeInteger(compare.version, 'compare version');
  if (compare.target === 'create') checkSafeInteger(compare.createRevision, 'compare createRevision');
  if (compare.target === 'mod') checkSafeInteger(compare.modRevision, 'compare modRevision');
}

/**
 * etcd's checkTxnRequest: the largest of (compares, success ops, failure ops) must not exceed
 * maxTxnOps, and a nested txn gets what is left of the budget (maxTxnOps minus that largest count).
 */
export function checkTxnRequest(request: TxnRequest, maxTxnOps: number): void {
  const compares = request.compare ?? [];
  const success = request.success ?? [];
  const failure = request.failure ?? [];
  const operations = Math.max(compares.length, success.length, failure.length);
  if (operations > maxTxnOps) {
    throw new KvError('CONCORD_E_KV_TOO_MANY_OPS', `${operations} operations, at most ${maxTxnOps} allowed`);
  }
  for (const compare of compares) checkCompare(compare);
  for (const op of [...success, ...failure]) checkRequestOp(op, maxTxnOps - operations);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  switch (op.type) {
    case 'range':
      return checkRangeRequest(op.request);
    case 'put':
      return checkPutRequest(op.request);
    case 'deleteRange':
      return checkDeleteRequest(op.request);
    case 'txn':
      return checkTxnRequest(op.request, maxTxnOps);
  }
}

/** Every check etcd makes on a txn before proposing it. */
export function checkTxn(request: TxnRequest, maxTxnOps: number): void {
  checkTxnRequest(request, maxTxnOps);
  checkWrites(request.success ?? []);
  checkWrites(request.failure ?? []);
}

interface Writes {
  puts: Set<string>;
  deletes: KeyRange[];
}

/**
 * etcd's checkIntervals: within one list of ops (including nested txns), no key may be put twice
 * and no put may fall inside a deleted range. Puts in the success and failure branches of the same
 * nested txn may name the same key, because only one branch runs. Deletes may overlap each other:
 * a key deleted twice is written once (the second delete finds it gone).
 *
 * Deliberate differences: see checkLaterNestedDeletes; and etcd builds a delete's interval from the raw rangeEnd, so a delete with
 * rangeEnd '\0' ("every key from key on") overlaps nothing there; here it covers what it deletes.
 */
function checkWrites(ops: readonly RequestOp[]): Writes {
  const deletes: KeyRange[] = [];
  for (const op of ops) {
    if (op.type === 'deleteRange') deletes.push(keyRangeOf(op.request.key, op.request.rangeEnd));
  }
  const puts = new Set<string>();
  const nested: Writes[] = [];
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const then = checkWrites(op.request.success ?? []);
    const otherwise = checkWrites(op.request.failure ?? []);
    for (const key of then.puts) addPut(puts, deletes, key);
    for (const key of otherwise.puts) addPut(puts, deletes, key, then.puts);
    deletes.push(...then.deletes, ...otherwise.deletes);
    nested.push({ puts: new Set([...then.puts, ...otherwise.puts]), deletes: [...then.deletes, ...otherwise.deletes] });
  }
  checkLaterNestedDeletes(nested);
  for (const op of ops) {
    if (op.type === 'put') addPut(puts, deletes, toByteString(op.request.key));
  }
  return { puts, deletes };
}

/**
 * The mirror case that etcd's checkIntervals lets through: a put in one nested txn and a delete of
 * the same key in a LATER nested txn of the same list (the put was checked before that delete was
 * known). etcd then writes the key twice in one revision; Concord refuses it as a duplicate key,
 * like every other key written twice in one txn.
 */
function checkLaterNestedDeletes(nested: readonly Writes[]): void {
  for (let i = 0; i < nested.length; i++) {
    for (let j = i + 1; j < nested.length; j++) {
      for (const key of nested[i]!.puts) {
        if (nested[j]!.deletes.some((range) => keyInRange(range, key))) {
          throw new KvError('CONCORD_E_KV_DUPLICATE_KEY', `key ${JSON.stringify(key)}`);
        }
      }
    }
  }
}

function addPut(puts: Set<string>, deletes: readonly KeyRange[], key: string, exclusive?: Set<string>): void {
  const putTwice = puts.has(key) && !(exclusive?.has(key) ?? false);
  if (putTwice || deletes.some((range) => keyInRange(range, key))) {
    throw new KvError('CONCORD_E_KV_DUPLICATE_KEY', `key ${JSON.stringify(key)}`);
  }
  puts.add(key);
}
