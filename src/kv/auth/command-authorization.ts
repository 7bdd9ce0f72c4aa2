// Which permissions each key-value command needs, checked when the command is applied (etcd's
// authApplierV3, etcdserver/apply_auth.go), so every member decides the same way at the same log
// position, whatever it knew when the request arrived.
//
// * Put: write on the key; with prev_kv also read on it; with a lease, write on every key already
//   attached to the lease (a user who could not revoke the lease may not extend it).
// * DeleteRange: write on the range; with prev_kv also read on it.
// * Txn: read on every compared range, and each operation of both branches, nested txns included,
//   as its own request would need (etcd's checkTxnAuth; a txn put's lease and prev_kv are not
//   checked there, as in etcd).
// * LeaseRevoke: write on every key attached to the lease (a lease without keys: nobody is refused).
// * Compaction and arming or disarming an alarm: the root role. etcd 3.4 checks neither, so that any
//   client, even one without a user, can compact the history or clear NOSPACE; Concord refuses it.
// * LeaseGrant: nothing, as in etcd.
//
// Malformed requests are refused as such before any permission is looked at, because etcd refuses
// them in its API layer: a put without a key says "key is not provided", not "permission denied".

import type { DeleteRangeRequest, KvCommand, PutRequest, RequestOp, TxnRequest } from '../types.ts';
import type { Requester } from './auth-types.ts';
import type { AuthStore } from './auth-store.ts';
import { checkDeleteRequest, checkPutRequest, checkTxn } from '../request-check.ts';

export interface LeaseKeys {
  /** The keys attached to a lease; empty for a lease that does not exist. */
  keysOf(id: bigint): Uint8Array[];
}

/** Throws etcd's error when `requester` may not have `command` applied. */
export function authorizeCommand(auth: AuthStore, leases: LeaseKeys, command: KvCommand, requester: Requester, maxTxnOps: number): void {
  if (!auth.enabled || requester.kind === 'member') return;
  switch (command.type) {
    case 'put':
      checkPutRequest(command.request);
      return authorizePut(auth, leases, command.request, requester);
    case 'deleteRange':
      checkDeleteRequest(command.request);
      return authorizeDelete(auth, command.request, requester);
    case 'txn':
      checkTxn(command.request, maxTxnOps);
      return authorizeTxn(auth, command.request, requester);
    case 'leaseRevoke':
      return authorizeLeaseKeys(auth, leases, command.request.id, requester);
    case 'compact':
      return auth.checkAdmin(requester);
    case 'alarm':
      if (command.request.action !== 'get') auth.checkAdmin(requester);
      return;
    default:
      // LeaseGrant needs nothing; auth commands are checked by the auth store itself.
      return;
  }
}

function authorizePut(auth: AuthStore, leases: LeaseKeys, request: PutRequest, requester: Requester): void {
  auth.checkWrite(requester, request.key);
  authorizeLeaseKeys(auth, leases, request.lease ?? 0n, requester);
  if (request.prevKv === true) auth.checkRead(requester, request.key);
}

function authorizeDelete(auth: AuthStore, request: DeleteRangeRequest, requester: Requester): void {
  auth.checkWrite(requester, request.key, request.rangeEnd);
  if (request.prevKv === true) auth.checkRead(requester, request.key, request.rangeEnd);
}

function authorizeTxn(auth: AuthStore, request: TxnRequest, requester: Requester): void {
  for (const compare of request.compare ?? []) auth.checkRead(requester, compare.key, compare.rangeEnd);
  for (const op of [...(request.success ?? []), ...(request.failure ?? [])]) authorizeTxnOp(auth, op, requester);
}

function authorizeTxnOp(auth: AuthStore, op: RequestOp, requester: Requester): void {
  switch (op.type) {
    case 'range':
      return auth.checkRead(requester, op.request.key, op.request.rangeEnd);
    case 'put':
      return auth.checkWrite(requester, op.request.key);
    case 'deleteRange':
      if (op.request.prevKv === true) auth.checkRead(requester, op.request.key, op.request.rangeEnd);
      return auth.checkWrite(requester, op.request.key, op.request.rangeEnd);
    case 'txn':
      return authorizeTxn(auth, op.request, requester);
  }
}

/** etcd's checkLeasePuts: the root role may; anyone else needs write on every attached key. */
function authorizeLeaseKeys(auth: AuthStore, leases: LeaseKeys, id: bigint, requester: Requester): void {
  if (id === 0n) return;
  const keys = leases.keysOf(id);
  if (keys.length === 0 || auth.isAdmin(requester)) return;
  for (const key of keys) auth.checkWrite(requester, key);
}
