// Loads Concord's copy of etcd's v3.4 wire contract (./protos) for @grpc/grpc-js servers and clients.
//
// Representation choices, fixed here once for every service and client:
//
// * Field names are kept exactly as in the .proto files (`keepCase: true`): `cluster_id`,
//   `create_revision`, `TTL`, `ID`, `grantedTTL`, `peerURLs`. etcd's own names mix snake_case and
//   capitals, and camelCasing them would invent names that appear nowhere in etcd's documentation,
//   in etcdctl's JSON output or in other clients.
// * 64-bit integers (int64 revisions and lease IDs, uint64 cluster, member and raft fields) are
//   decoded as decimal strings (`longs: String`), because real IDs exceed 2^53 and a JavaScript
//   number would silently round them. The server turns them into bigint with `int64FromWire`
//   (a plain `BigInt(text)`); signedness is already applied by the decoder, so a uint64 above 2^63
//   arrives as its unsigned decimal text. When encoding, a 64-bit field accepts a bigint, a decimal
//   string or a safe-integer number: every serializer below converts bigints to decimal strings
//   first, because protobufjs's Long.fromValue does not understand bigint and would encode 0.
// * bytes fields are Node Buffers (`bytes: Buffer`, proto-loader's default) — keys and values are
//   arbitrary bytes, never assumed to be UTF-8.
// * Enums decode to their names (`enums: String`), e.g. `'DELETE'`; encoding accepts names or numbers.
// * `defaults: true`: decoded messages carry proto3 zero values (`'0'`, `false`, empty Buffer, `[]`)
//   for every field the peer omitted, as etcd's Go clients see them; oneof members stay absent and
//   the virtual field named after the oneof (`oneofs: true`) says which member is set, e.g.
//   `request: 'request_put'`.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadSync, type MessageTypeDefinition, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';

/** The .proto files, relative to the protos folder, which is also the import root. */
export const ETCD_PROTO_FILES = [
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'etcdserverpb/rpc.proto',
  'v3electionpb/v3election.proto',
  'v3lockpb/v3lock.proto',
] as const;

export const ETCD_PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** Fully qualified names of the services, as they appear in gRPC method paths (`/etcdserverpb.KV/Range`). */
export const ETCD_SERVICE_NAMES = {
  KV: 'etcdserverpb.KV',
  Watch: 'etcdserverpb.Watch',
  Lease: 'etcdserverpb.Lease',
  Cluster: 'etcdserverpb.Cluster',
  Maintenance: 'etcdserverpb.Maintenance',
  Auth: 'etcdserverpb.Auth',
  Election: 'v3electionpb.Election',
  Lock: 'v3lockpb.Lock',
} as const;

export type EtcdServiceName = keyof typeof ETCD_SERVICE_NAMES;

export interface EtcdProtos {
  readonly packageDefinition: PackageDefinition;
  /** Service definitions for `server.addService(services.KV, implementation)`. */
  readonly services: Readonly<Record<EtcdServiceName, ServiceDefinition>>;
  /** Client constructors: `new clients.KV('127.0.0.1:2379', credentials.createInsecure())`. */
  readonly clients: Readonly<Record<EtcdServiceName, ServiceClientConstructor>>;
  /** A message's codec by fully qualified name, e.g. `messageType('mvccpb.KeyValue')`. */
  messageType<Decoded = unknown>(fullName: string): MessageTypeDefinition<object, Decoded>;
}

let loaded: EtcdProtos | undefined;

/** Loads (once per process) and returns the etcd v3.4 service definitions. */
export function loadEtcdProtos(): EtcdProtos {
  loaded ??= loadFresh();
  return loaded;
}

function loadFresh(): EtcdProtos {
  const protosDir = findProtosDir();
  const packageDefinition = loadSync([...ETCD_PROTO_FILES], { ...ETCD_PROTO_LOADER_OPTIONS, includeDirs: [protosDir] });
  convertBigIntsBeforeEncoding(packageDefinition);
  const grpcObject = loadPackageDefinition(packageDefinition);
  const clients = {} as Record<EtcdServiceName, ServiceClientConstructor>;
  const services = {} as Record<EtcdServiceName, ServiceDefinition>;
  for (const [shortName, fullName] of Object.entries(ETCD_SERVICE_NAMES) as [EtcdServiceName, string][]) {
    const [packageName, serviceName] = fullName.split('.') as [string, string];
    const constructor = (grpcObject[packageName] as Record<string, unknown> | undefined)?.[serviceName];
    if (typeof constructor !== 'function') throw new Error(`bug: service ${fullName} missing from ${protosDir}`);
    clients[shortName] = constructor as ServiceClientConstructor;
    services[shortName] = clients[shortName].service;
  }
  return {
    packageDefinition,
    services,
    clients,
    messageType<Decoded>(fullName: string) {
      const definition = packageDefinition[fullName];
      if (definition === undefined || definition.format !== 'Protocol Buffer 3 DescriptorProto') {
        throw new Error(`no message type named '${fullName}' in the etcd protos`);
      }
      return definition as MessageTypeDefinition<object, Decoded>;
    },
  };
}

/**
 * The protos live next to this file in the source tree. A build into dist/ does not copy them, so
 * code running from dist/api/etcd/ falls back to the source tree, which ships alongside it.
 */
function findProtosDir(): string {
  const candidates = [new URL('./protos/', import.meta.url), new URL('../../../src/api/etcd/protos/', import.meta.url)];
  for (const candidate of candidates) {
    const dir = fileURLToPath(candidate);
    if (existsSync(`${dir}etcdserverpb/rpc.proto`)) return dir;
  }
  throw new Error(`etcd .proto files not found (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`);
}

// ---- 64-bit integers ----

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Decoded 64-bit field (decimal text) to bigint. */
export function int64FromWire(text: string): bigint {
  return BigInt(text);
}

/**
 * Replaces every bigint inside a message (recursively, not into Buffers) by its decimal text, so
 * that protobufjs encodes it exactly. A bigint outside [-2^63, 2^64) fits no 64-bit field: that is a
 * programmer error, and encoding it would silently wrap around.
 */
export function bigIntsToDecimalText(value: unknown): unknown {
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > UINT64_MAX) throw new RangeError(`bug: ${value} does not fit a 64-bit protobuf field`);
    return value.toString();
  }
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(bigIntsToDecimalText);
  const converted: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) converted[key] = bigIntsToDecimalText(field);
  return converted;
}

function convertBigIntsBeforeEncoding(packageDefinition: PackageDefinition): void {
  for (const definition of Object.values(packageDefinition)) {
    if ('format' in definition) {
      if (definition.format === 'Protocol Buffer 3 DescriptorProto') {
        const message = definition as MessageTypeDefinition<object, object>;
        const serialize = message.serialize;
        message.serialize = (value) => serialize(bigIntsToDecimalText(value) as object);
      }
      continue;
    }
    for (const method of Object.values(definition)) {
      const { requestSerialize, responseSerialize } = method;
      method.requestSerialize = (value) => requestSerialize(bigIntsToDecimalText(value) as object);
      method.responseSerialize = (value) => responseSerialize(bigIntsToDecimalText(value) as object);
    }
  }
}

// ---- Message shapes ----
//
// Each message type is generic in how its 64-bit fields look: `Decoded` (decimal strings) is what a
// decoder hands over, `Int64Input` what a serializer accepts. For encoding, any field may be left
// out (proto3 zero value): use `Encodable<T>`.

export type Int64Decoded = string;
export type Int64Input = bigint | string | number;

/**
 * What a serializer accepts for a message whose decoded shape is T: every field optional. bytes
 * fields take a Buffer or Uint8Array; a string there would be read as base64 by protobufjs, so the
 * type rules strings out.
 */
export type Encodable<T> = T extends Buffer
  ? Buffer | Uint8Array
  : T extends readonly (infer Element)[]
    ? readonly Encodable<Element>[]
    : T extends object
      ? { [Field in keyof T]?: Encodable<T[Field]> }
      : T;

export interface ResponseHeader<L = Int64Decoded> {
  cluster_id: L;
  member_id: L;
  revision: L;
  raft_term: L;
}

export interface KeyValue<L = Int64Decoded> {
  key: Buffer;
  create_revision: L;
  mod_revision: L;
  version: L;
  value: Buffer;
  lease: L;
}

export interface Event<L = Int64Decoded> {
  type: 'PUT' | 'DELETE';
  kv: KeyValue<L> | null;
  prev_kv: KeyValue<L> | null;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest<L = Int64Decoded> {
  key: Buffer;
  range_end: Buffer;
  limit: L;
  revision: L;
  sort_order: SortOrder;
  sort_target: SortTarget;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: L;
  max_mod_revision: L;
  min_create_revision: L;
  max_create_revision: L;
}

export interface RangeResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  kvs: KeyValue<L>[];
  more: boolean;
  count: L;
}

export interface PutRequest<L = Int64Decoded> {
  key: Buffer;
  value: Buffer;
  lease: L;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface PutResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  prev_kv: KeyValue<L> | null;
}

export interface DeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

export interface DeleteRangeResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  deleted: L;
  prev_kvs: KeyValue<L>[];
}

export interface RequestOp<L = Int64Decoded> {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: RangeRequest<L>;
  request_put?: PutRequest<L>;
  request_delete_range?: DeleteRangeRequest;
  request_txn?: TxnRequest<L>;
}

export interface ResponseOp<L = Int64Decoded> {
  response?: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: RangeResponse<L>;
  response_put?: PutResponse<L>;
  response_delete_range?: DeleteRangeResponse<L>;
  response_txn?: TxnResponse<L>;
}

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';

export interface Compare<L = Int64Decoded> {
  result: CompareResult;
  target: CompareTarget;
  key: Buffer;
  target_union?: 'version' | 'create_revision' | 'mod_revision' | 'value' | 'lease';
  version?: L;
  create_revision?: L;
  mod_revision?: L;
  value?: Buffer;
  lease?: L;
  range_end: Buffer;
}

export interface TxnRequest<L = Int64Decoded> {
  compare: Compare<L>[];
  success: RequestOp<L>[];
  failure: RequestOp<L>[];
}

export interface TxnResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  succeeded: boolean;
  responses: ResponseOp<L>[];
}

export interface CompactionRequest<L = Int64Decoded> {
  revision: L;
  physical: boolean;
}

export interface CompactionResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
}

export interface WatchCreateRequest<L = Int64Decoded> {
  key: Buffer;
  range_end: Buffer;
  start_revision: L;
  progress_notify: boolean;
  filters: ('NOPUT' | 'NODELETE')[];
  prev_kv: boolean;
  watch_id: L;
  fragment: boolean;
}

export interface WatchRequest<L = Int64Decoded> {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: WatchCreateRequest<L>;
  cancel_request?: { watch_id: L };
  progress_request?: Record<string, never>;
}

export interface WatchResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  watch_id: L;
  created: boolean;
  canceled: boolean;
  compact_revision: L;
  cancel_reason: string;
  fragment: boolean;
  events: Event<L>[];
}

export interface LeaseGrantRequest<L = Int64Decoded> {
  TTL: L;
  ID: L;
}

export interface LeaseGrantResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  ID: L;
  TTL: L;
  error: string;
}

export interface LeaseRevokeRequest<L = Int64Decoded> {
  ID: L;
}

export interface LeaseRevokeResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
}

export interface LeaseKeepAliveRequest<L = Int64Decoded> {
  ID: L;
}

export interface LeaseKeepAliveResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  ID: L;
  TTL: L;
}

export interface LeaseTimeToLiveRequest<L = Int64Decoded> {
  ID: L;
  keys: boolean;
}

export interface LeaseTimeToLiveResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  ID: L;
  TTL: L;
  grantedTTL: L;
  keys: Buffer[];
}

export interface LeaseLeasesResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  leases: { ID: L }[];
}

export interface Member<L = Int64Decoded> {
  ID: L;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberListResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  members: Member<L>[];
}

export interface StatusResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  version: string;
  dbSize: L;
  leader: L;
  raftIndex: L;
  raftTerm: L;
  raftAppliedIndex: L;
  errors: string[];
  dbSizeInUse: L;
  isLearner: boolean;
}

export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';

export interface AlarmRequest<L = Int64Decoded> {
  action: 'GET' | 'ACTIVATE' | 'DEACTIVATE';
  memberID: L;
  alarm: AlarmType;
}

export interface AlarmResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  alarms: { memberID: L; alarm: AlarmType }[];
}

export interface HashKVResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  hash: number;
  compact_revision: L;
}

export interface SnapshotResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  remaining_bytes: L;
  blob: Buffer;
}

export interface MoveLeaderRequest<L = Int64Decoded> {
  targetID: L;
}

export interface LockRequest<L = Int64Decoded> {
  name: Buffer;
  lease: L;
}

export interface LockResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  key: Buffer;
}

export interface LeaderKey<L = Int64Decoded> {
  name: Buffer;
  key: Buffer;
  rev: L;
  lease: L;
}

export interface CampaignRequest<L = Int64Decoded> {
  name: Buffer;
  lease: L;
  value: Buffer;
}

export interface CampaignResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  leader: LeaderKey<L> | null;
}

export interface LeaderResponse<L = Int64Decoded> {
  header: ResponseHeader<L> | null;
  kv: KeyValue<L> | null;
}
