// What a range returns once the keys visible at the read revision are known, following etcd's
// executeRange (server/etcdserver/txn): `count` is the number of keys in the range before filters
// and limit; the revision filters drop keys; the sort applies; `limit` cuts and sets `more`;
// keysOnly empties values; countOnly returns no keys at all.

import type { KeyValue, RangeRequest, SortOrder, SortTarget } from './types.ts';
import { EMPTY_VALUE } from './types.ts';
import { compareBytes } from './key-range.ts';

export interface RangeSelection {
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

/** `visible` holds the range's keys at the read revision, ascending by key. */
export function selectRange(visible: KeyValue[], request: RangeRequest): RangeSelection {
  const count = visible.length;
  if (request.countOnly === true) return { kvs: [], more: false, count };
  const sorted = sortKvs(visible.filter(revisionFilter(request)), request.sortOrder, request.sortTarget);
  const limit = request.limit ?? 0;
  const more = limit > 0 && sorted.length > limit;
  const limited = more ? sorted.slice(0, limit) : sorted;
  const kvs = request.keysOnly === true ? limited.map((kv) => ({ ...kv, value: EMPTY_VALUE })) : limited;
  return { kvs, more, count };
}

function revisionFilter(request: RangeRequest): (kv: KeyValue) => boolean {
  // 0 means "no bound", as in etcd.
  const minMod = request.minModRevision ?? 0;
  const maxMod = request.maxModRevision ?? 0;
  const minCreate = request.minCreateRevision ?? 0;
  const maxCreate = request.maxCreateRevision ?? 0;
  return (kv) =>
    (minMod === 0 || kv.modRevision >= minMod) &&
    (maxMod === 0 || kv.modRevision <= maxMod) &&
    (minCreate === 0 || kv.createRevision >= minCreate) &&
    (maxCreate === 0 || kv.createRevision <= maxCreate);
}

/**
 * etcd sorts ascending by default when a target other than the key is named, and skips sorting
 * ascending by key because the index already yields that order. Ties keep ascending key order
 * (etcd's sort is not stable, so any tie order is etcd-compatible; this one is deterministic).
 */
function sortKvs(kvs: KeyValue[], order: SortOrder | undefined, target: SortTarget | undefined): KeyValue[] {
  const sortTarget = target ?? 'key';
  let sortOrder = order ?? 'none';
  if (sortOrder === 'none' && sortTarget !== 'key') sortOrder = 'ascend';
  if (sortOrder === 'none' || (sortOrder === 'ascend' && sortTarget === 'key')) return kvs;
  const compare = comparatorFor(sortTarget);
  const direction = sortOrder === 'ascend' ? 1 : -1;
  return [...kvs].sort((a, b) => direction * compare(a, b));
}

function comparatorFor(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'key':
      return (a, b) => compareBytes(a.key, b.key);
    case 'version':
      return (a, b) => a.version - b.version;
    case 'create':
      return (a, b) => a.createRevision - b.createRevision;
    case 'mod':
      return (a, b) => a.modRevision - b.modRevision;
    case 'value':
      return (a, b) => compareBytes(a.value, b.value);
  }
}
