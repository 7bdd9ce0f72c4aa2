// The vocabulary of the etcd-compatible key-value store: requests and responses mirror etcd's
// protobuf messages (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto) in camelCase, so that the gRPC
// layer maps them field by field. Optional request fields follow proto3: absent means the zero value.
//
// Units: revisions are JS numbers (safe integers, checked where they enter); lease IDs and every
// other 64-bit ID are bigint; keys and values are bytes compared byte-wise, as etcd does.

import type { AuthCommand, AuthCommandResponse, Requester } from './auth/auth-types.ts';

/** A key's state at one revision (mvccpb.KeyValue). */
export interface KeyValue {
  key: Uint8Array;
  /** Revision of the last creation of this key; a delete ends the key's generation. */
  createRevision: number;
  /** Revision of the last modification of this key. */
  modRevision: number;
  /** Number of modifications since creation; a delete resets it to 0. */
  version: number;
  value: Uint8Array;
  /** 0n when the key has no lease. */
  lease: bigint;
}

/** Filled by the store; the gRPC layer adds clusterId, memberId and raftTerm. */
export interface ResponseHeader {
  revision: number;
}

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

/**
 * rangeEnd semantics (etcd3 API): absent or empty = the single key `key`; one zero byte = every key
 * >= `key`; otherwise the half-open interval [key, rangeEnd).
 */
export interface RangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** 0 (or negative) = no limit. */
  limit?: number;
  /** 0 (or negative) = the current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Served by the shell (no ReadIndex); the store ignores it. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  more: boolean;
  /** Number of keys in the range at the read revision, before limit and filters (as etcd). */
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value?: Uint8Array;
  lease?: bigint;
  prevKv?: boolean;
  /** Keep the key's current value; the key must exist and `value` must be empty. */
  ignoreValue?: boolean;
  /** Keep the key's current lease; the key must exist and `lease` must be 0. */
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareResult = 'equal' | 'greater' | 'less' | 'notEqual';

interface CompareBase {
  result: CompareResult;
  key: Uint8Array;
  /** Same semantics as RangeRequest.rangeEnd: every key in the range must satisfy the compare. */
  rangeEnd?: Uint8Array;
}

export type Compare =
  | (CompareBase & { target: 'version'; version: number })
  | (CompareBase & { target: 'create'; createRevision: number })
  | (CompareBase & { target: 'mod'; modRevision: number })
  | (CompareBase & { target: 'value'; value: Uint8Array })
  | (CompareBase & { target: 'lease'; lease: bigint });

export type RequestOp =
  | { type: 'range'; request: RangeRequest }
  | { type: 'put'; request: PutRequest }
  | { type: 'deleteRange'; request: DeleteRangeRequest }
  | { type: 'txn'; request: TxnRequest };

export type ResponseOp =
  | { type: 'range'; response: RangeResponse }
  | { type: 'put'; response: PutResponse }
  | { type: 'deleteRange'; response: DeleteRangeResponse }
  | { type: 'txn'; response: TxnResponse };

export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  /** etcd waits for the backend to purge; the in-memory store compacts synchronously either way. */
  physical?: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

export interface LeaseGrantRequest {
  /** Requested TTL in seconds; raised to the configured minimum. */
  ttl: number;
  /** Must be non-zero in a replicated command: the proposer picks an ID when the client sent 0. */
  id: bigint;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  id: bigint;
  /** The granted TTL in seconds (after raising it to the minimum). */
  ttl: number;
}

export interface LeaseRevokeRequest {
  id: bigint;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseTimeToLiveRequest {
  id: bigint;
  /** Also list the attached keys. */
  keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: bigint;
  /** Remaining seconds; -1 when the lease does not exist (etcd answers so instead of failing). */
  ttl: number;
  grantedTtl: number;
  keys: Uint8Array[];
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  id: bigint;
  /** The renewed TTL in seconds. */
  ttl: number;
}

export type AlarmType = 'none' | 'nospace' | 'corrupt';
export type AlarmAction = 'get' | 'activate' | 'deactivate';

export interface AlarmMember {
  memberId: bigint;
  alarm: AlarmType;
}

export interface AlarmRequest {
  action: AlarmAction;
  memberId: bigint;
  alarm: AlarmType;
}

export interface AlarmResponse {
  header: ResponseHeader;
  alarms: AlarmMember[];
}

export interface HashKvResponse {
  header: ResponseHeader;
  /** CRC-32C over the retained history up to hashRevision; equal on members with equal history. */
  hash: number;
  compactRevision: number;
  hashRevision: number;
}

/** One change in the history, as a watcher sees it (mvccpb.Event). */
export interface KvEvent {
  type: 'put' | 'delete';
  /** For a delete: only key and modRevision (the delete's revision) are set, as in etcd. */
  kv: KeyValue;
  /** The key's previous state, when it existed and is still retained. */
  prevKv?: KeyValue;
}

/** A command replicated through the Raft log and applied by every member. */
export type KvCommand = (
  | { type: 'put'; request: PutRequest }
  | { type: 'deleteRange'; request: DeleteRangeRequest }
  | { type: 'txn'; request: TxnRequest }
  | { type: 'compact'; request: CompactionRequest }
  | { type: 'leaseGrant'; request: LeaseGrantRequest }
  | { type: 'leaseRevoke'; request: LeaseRevokeRequest }
  | { type: 'alarm'; request: AlarmRequest }
  | AuthCommand
) & {
  /**
   * Who asked for it, checked against the auth state when the command is applied. Absent means
   * the member itself (lease expiry, auto-compaction, and tests that drive the state machine).
   */
  requester?: Requester;
};

export type KvCommandResponse =
  | { type: 'put'; response: PutResponse }
  | { type: 'deleteRange'; response: DeleteRangeResponse }
  | { type: 'txn'; response: TxnResponse }
  | { type: 'compact'; response: CompactionResponse }
  | { type: 'leaseGrant'; response: LeaseGrantResponse }
  | { type: 'leaseRevoke'; response: LeaseRevokeResponse }
  | { type: 'alarm'; response: AlarmResponse }
  | AuthCommandResponse;

export const EMPTY_VALUE = new Uint8Array(0);
export const NO_LEASE = 0n;
