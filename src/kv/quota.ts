// The space quota (etcd's --quota-backend-bytes): a write that would take the store's estimated
// size to the quota or beyond fails with NOSPACE and raises the NOSPACE alarm; from then on only
// reads, deletes, compactions and lease revokes are served until an operator disarms the alarm.
// Costs use etcd's estimates (server/etcdserver/quota.go): a key-value change costs its key and
// value bytes plus 256 bytes of metadata, a lease 64 bytes.

import type { KeyValue, PutRequest, RequestOp, TxnRequest } from './types.ts';

/** etcd's kvOverhead: the estimated cost of a key's metadata, in bytes. */
export const KV_OVERHEAD_BYTES = 256;
/** etcd's leaseOverhead: the estimated cost of storing a lease, in bytes. */
export const LEASE_OVERHEAD_BYTES = 64;
/** etcd's DefaultQuotaBytes: 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd's MaxQuotaBytes: larger quotas are allowed but etcd warns that they degrade performance. */
export const MAX_RECOMMENDED_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;

/** Estimated bytes one retained change of a key occupies. */
export function changeSizeBytes(kv: KeyValue): number {
  return KV_OVERHEAD_BYTES + kv.key.length + kv.value.length;
}

export function costPut(request: PutRequest): number {
  return KV_OVERHEAD_BYTES + request.key.length + (request.value?.length ?? 0);
}

/** Only one branch of a txn runs, so the txn costs what its more expensive branch costs (as etcd). */
export function costTxn(request: TxnRequest): number {
  return Math.max(costOps(request.success ?? []), costOps(request.failure ?? []));
}

function costOps(ops: readonly RequestOp[]): number {
  let cost = 0;
  for (const op of ops) {
    if (op.type === 'put') cost += costPut(op.request);
    else if (op.type === 'txn') cost += costTxn(op.request);
  }
  return cost;
}

/**
 * Whether a write of `costBytes` fits: etcd's backendQuota.Available admits a request while
 * size + cost stays strictly below the quota. A negative quota disables the check; 0 means default.
 */
export function fitsQuota(sizeBytes: number, costBytes: number, quotaBackendBytes: number): boolean {
  if (quotaBackendBytes < 0 || costBytes === 0) return true;
  const quota = quotaBackendBytes === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : quotaBackendBytes;
  return sizeBytes + costBytes < quota;
}
