// Transaction compares, as etcd's applyCompare: every key in the compare's range must satisfy it.
// A missing key (or an empty range) compares as a zero KeyValue (version 0, revisions 0, lease 0),
// except that a value compare on a missing key always fails: gRPC cannot tell an empty value
// from no value, so etcd refuses to guess.

import type { Compare, KeyValue } from './types.ts';
import { compareBytes } from './key-range.ts';

export function compareSucceeds(compare: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) return compare.target !== 'value' && resultHolds(compare, targetOrder(compare, ZERO_KV));
  return kvs.every((kv) => resultHolds(compare, targetOrder(compare, kv)));
}

const ZERO_KV: KeyValue = {
  key: new Uint8Array(0),
  createRevision: 0,
  modRevision: 0,
  version: 0,
  value: new Uint8Array(0),
  lease: 0n,
};

/** The sign of (the key's target field) minus (the compare's operand). */
function targetOrder(compare: Compare, kv: KeyValue): number {
  switch (compare.target) {
    case 'version':
      return Math.sign(kv.version - compare.version);
    case 'create':
      return Math.sign(kv.createRevision - compare.createRevision);
    case 'mod':
      return Math.sign(kv.modRevision - compare.modRevision);
    case 'value':
      return Math.sign(compareBytes(kv.value, compare.value));
    case 'lease':
      return kv.lease === compare.lease ? 0 : kv.lease > compare.lease ? 1 : -1;
  }
}

function resultHolds(compare: Compare, order: number): boolean {
  switch (compare.result) {
    case 'equal':
      return order === 0;
    case 'notEqual':
      return order !== 0;
    case 'greater':
      return order > 0;
    case 'less':
      return order < 0;
  }
}
