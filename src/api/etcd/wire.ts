// Conversion between etcd's wire messages (as @grpc/proto-loader decodes them: proto field names,
// 64-bit integers as decimal strings, bytes as Buffers, enums as names) and the key-value store's
// typed requests and responses. Every 64-bit value is checked on the way in: a revision is
// saturated to the safe integers (see numberFromWire), an ID must fit in 64 bits; anything else is
// a clear INVALID_ARGUMENT, never a silent rounding.

import type {
  Compare,
  CompareResult,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  KvEvent,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResponse,
} from '../../kv/types.ts';

/** A 64-bit integer as it arrives: a decimal string (`longs: String`), or a number from a hand-built message. */
export type WireInt64 = string | number | bigint;

export class WireError extends Error {
  override name = 'WireError';
}

/** The response header etcd puts on every response. */
export interface WireHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}

export interface HeaderSource {
  clusterId: bigint;
  memberId: bigint;
  raftTerm(): number;
}

export function header(source: HeaderSource, revision: number): WireHeader {
  return {
    cluster_id: source.clusterId.toString(),
    member_id: source.memberId.toString(),
    revision: String(revision),
    raft_term: String(source.raftTerm()),
  };
}

export function bigintFromWire(value: WireInt64 | undefined, field: string): bigint {
  if (value === undefined || value === '') return 0n;
  try {
    return BigInt(value);
  } catch {
    throw new WireError(`${field} must be an integer, got '${String(value)}'`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/**
 * A revision, limit, version or TTL, saturated to the safe integers. No revision, count or TTL in
 * the store comes near 2^53, so every int64 beyond it means the same as 2^53 - 1 (a future
 * revision, no limit, a TTL over the maximum) and every one below -2^53 the same as -2^53 (the
 * current revision): saturating answers exactly as etcd does, where refusing did not (found by
 * test/api/grpc-extreme-values.test.ts: a Range with limit int64 max is fine on etcd).
 */
export function numberFromWire(value: WireInt64 | undefined, field: string): number {
  const big = bigintFromWire(value, field);
  if (big > MAX_SAFE) return Number.MAX_SAFE_INTEGER;
  if (big < MIN_SAFE) return Number.MIN_SAFE_INTEGER;
  return Number(big);
}

function bytes(value: Uint8Array | undefined): Uint8Array {
  return value ?? new Uint8Array(0);
}

function optionalBytes(value: Uint8Array | undefined): Uint8Array | undefined {
  return value && value.byteLength > 0 ? value : undefined;
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

// -------------------------------------------------------------------------------------------------
// Requests in

export interface WireRangeRequest {
  key?: Uint8Array;
  range_end?: Uint8Array;
  limit?: WireInt64;
  revision?: WireInt64;
  sort_order?: string;
  sort_target?: string;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: WireInt64;
  max_mod_revision?: WireInt64;
  min_create_revision?: WireInt64;
  max_create_revision?: WireInt64;
}

const SORT_ORDERS: Record<string, SortOrder> = { NONE: 'none', ASCEND: 'ascend', DESCEND: 'descend' };
const SORT_TARGETS: Record<string, SortTarget> = { KEY: 'key', VERSION: 'version', CREATE: 'create', MOD: 'mod', VALUE: 'value' };

function enumFromWire<T>(table: Record<string, T>, value: string | number | undefined, field: string, fallback: string): T {
  const name = typeof value === 'number' ? Object.keys(table)[value] : (value ?? fallback);
  const mapped = name === undefined ? undefined : table[name];
  if (mapped === undefined) throw new WireError(`${field} '${String(value)}' is not one of ${Object.keys(table).join(', ')}`);
  return mapped;
}

export function rangeRequestFromWire(wire: WireRangeRequest): RangeRequest {
  return {
    key: bytes(wire.key),
    rangeEnd: optionalBytes(wire.range_end),
    limit: numberFromWire(wire.limit, 'limit'),
    revision: numberFromWire(wire.revision, 'revision'),
    sortOrder: enumFromWire(SORT_ORDERS, wire.sort_order, 'sort_order', 'NONE'),
    sortTarget: enumFromWire(SORT_TARGETS, wire.sort_target, 'sort_target', 'KEY'),
    serializable: wire.serializable ?? false,
    keysOnly: wire.keys_only ?? false,
    countOnly: wire.count_only ?? false,
    minModRevision: numberFromWire(wire.min_mod_revision, 'min_mod_revision'),
    maxModRevision: numberFromWire(wire.max_mod_revision, 'max_mod_revision'),
    minCreateRevision: numberFromWire(wire.min_create_revision, 'min_create_revision'),
    maxCreateRevision: numberFromWire(wire.max_create_revision, 'max_create_revision'),
  };
}

export interface WirePutRequest {
  key?: Uint8Array;
  value?: Uint8Array;
  lease?: WireInt64;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}

export function putRequestFromWire(wire: WirePutRequest): PutRequest {
  return {
    key: bytes(wire.key),
    value: bytes(wire.value),
    lease: bigintFromWire(wire.lease, 'lease'),
    prevKv: wire.prev_kv ?? false,
    ignoreValue: wire.ignore_value ?? false,
    ignoreLease: wire.ignore_lease ?? false,
  };
}

export interface WireDeleteRangeRequest {
  key?: Uint8Array;
  range_end?: Uint8Array;
  prev_kv?: boolean;
}

export function deleteRangeRequestFromWire(wire: WireDeleteRangeRequest): DeleteRangeRequest {
  return { key: bytes(wire.key), rangeEnd: optionalBytes(wire.range_end), prevKv: wire.prev_kv ?? false };
}

export interface WireCompare {
  result?: string;
  target?: string;
  key?: Uint8Array;
  range_end?: Uint8Array;
  version?: WireInt64;
  create_revision?: WireInt64;
  mod_revision?: WireInt64;
  value?: Uint8Array;
  lease?: WireInt64;
}

const COMPARE_RESULTS: Record<string, CompareResult> = { EQUAL: 'equal', GREATER: 'greater', LESS: 'less', NOT_EQUAL: 'notEqual' };

export function compareFromWire(wire: WireCompare): Compare {
  const base = {
    result: enumFromWire(COMPARE_RESULTS, wire.result, 'compare.result', 'EQUAL'),
    key: bytes(wire.key),
    rangeEnd: optionalBytes(wire.range_end),
  };
  switch (wire.target ?? 'VERSION') {
    case 'VERSION':
      return { ...base, target: 'version', version: numberFromWire(wire.version, 'compare.version') };
    case 'CREATE':
      return { ...base, target: 'create', createRevision: numberFromWire(wire.create_revision, 'compare.create_revision') };
    case 'MOD':
      return { ...base, target: 'mod', modRevision: numberFromWire(wire.mod_revision, 'compare.mod_revision') };
    case 'VALUE':
      return { ...base, target: 'value', value: bytes(wire.value) };
    case 'LEASE':
      return { ...base, target: 'lease', lease: bigintFromWire(wire.lease, 'compare.lease') };
    default:
      throw new WireError(`compare.target '${String(wire.target)}' is not one of VERSION, CREATE, MOD, VALUE, LEASE`);
  }
}

export interface WireRequestOp {
  request?: string;
  request_range?: WireRangeRequest;
  request_put?: WirePutRequest;
  request_delete_range?: WireDeleteRangeRequest;
  request_txn?: WireTxnRequest;
}

export interface WireTxnRequest {
  compare?: WireCompare[];
  success?: WireRequestOp[];
  failure?: WireRequestOp[];
}

function requestOpFromWire(wire: WireRequestOp): RequestOp {
  if (wire.request_range) return { type: 'range', request: rangeRequestFromWire(wire.request_range) };
  if (wire.request_put) return { type: 'put', request: putRequestFromWire(wire.request_put) };
  if (wire.request_delete_range) return { type: 'deleteRange', request: deleteRangeRequestFromWire(wire.request_delete_range) };
  if (wire.request_txn) return { type: 'txn', request: txnRequestFromWire(wire.request_txn) };
  throw new WireError('a txn operation has no request: set one of request_range, request_put, request_delete_range, request_txn');
}

export function txnRequestFromWire(wire: WireTxnRequest): TxnRequest {
  return {
    compare: (wire.compare ?? []).map(compareFromWire),
    success: (wire.success ?? []).map(requestOpFromWire),
    failure: (wire.failure ?? []).map(requestOpFromWire),
  };
}

// -------------------------------------------------------------------------------------------------
// Responses out

export interface WireKeyValue {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}

export function keyValueToWire(kv: KeyValue): WireKeyValue {
  return {
    key: toBuffer(kv.key),
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    value: toBuffer(kv.value),
    lease: kv.lease.toString(),
  };
}

export function rangeResponseToWire(response: RangeResponse, source: HeaderSource) {
  return {
    header: header(source, response.header.revision),
    kvs: response.kvs.map(keyValueToWire),
    more: response.more,
    count: String(response.count),
  };
}

export function putResponseToWire(response: PutResponse, source: HeaderSource) {
  return {
    header: header(source, response.header.revision),
    ...(response.prevKv ? { prev_kv: keyValueToWire(response.prevKv) } : {}),
  };
}

export function deleteRangeResponseToWire(response: DeleteRangeResponse, source: HeaderSource) {
  return {
    header: header(source, response.header.revision),
    deleted: String(response.deleted),
    prev_kvs: response.prevKvs.map(keyValueToWire),
  };
}

/**
 * etcd fills only the outer response's header; the responses inside a txn carry a bare header
 * (just their revision, usually 0), so clients see no cluster or member IDs there.
 */
const INNER_HEADER_SOURCE: HeaderSource = { clusterId: 0n, memberId: 0n, raftTerm: () => 0 };

function responseOpToWire(op: ResponseOp): Record<string, unknown> {
  switch (op.type) {
    case 'range':
      return { response_range: rangeResponseToWire(op.response, INNER_HEADER_SOURCE) };
    case 'put':
      return { response_put: putResponseToWire(op.response, INNER_HEADER_SOURCE) };
    case 'deleteRange':
      return { response_delete_range: deleteRangeResponseToWire(op.response, INNER_HEADER_SOURCE) };
    case 'txn':
      return { response_txn: txnResponseToWire(op.response, INNER_HEADER_SOURCE) };
  }
}

export function txnResponseToWire(response: TxnResponse, source: HeaderSource): Record<string, unknown> {
  return {
    header: header(source, response.header.revision),
    succeeded: response.succeeded,
    responses: response.responses.map(responseOpToWire),
  };
}

export function eventToWire(event: KvEvent) {
  return {
    type: event.type === 'put' ? 'PUT' : 'DELETE',
    kv: keyValueToWire(event.kv),
    ...(event.prevKv ? { prev_kv: keyValueToWire(event.prevKv) } : {}),
  };
}
