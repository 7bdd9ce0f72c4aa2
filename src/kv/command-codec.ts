// Encodes KvCommands for the Raft log: a compact length-prefixed binary form (see binary.ts),
// lossless for bytes and 64-bit IDs, led by a format version byte so a later Concord can change it.
//
//   format version (1 byte) | command type (1 byte) | requester | the request's fields in a fixed order
//
// Version 2 added the requester (who asked: a client's user and auth revision, or the member
// itself) and the auth commands; version 1 entries, written before auth existed, have no requester
// and are read as the member's own (auth could not have been enabled when they were written).
// Optional request fields are written with their proto3 zero values, so a decoded request always
// has every field. Decoding refuses anything malformed (unknown version or tag, truncation,
// trailing bytes, nesting deeper than maxTxnOps allows) with CONCORD_E_KV_COMMAND_INVALID.
// The encoder enforces etcd's --max-request-bytes on the encoded proposal, as etcd does.

import type {
  AlarmAction,
  AlarmRequest,
  AlarmType,
  Compare,
  CompareResult,
  DeleteRangeRequest,
  KvCommand,
  PutRequest,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from './types.ts';
import { EMPTY_VALUE } from './types.ts';
import { ByteReader, ByteWriter } from './binary.ts';
import { KvError } from './errors.ts';
import { DEFAULT_MAX_TXN_OPS } from './request-check.ts';
import type { AuthCommand } from './auth/auth-types.ts';
import { readAuthRequest, readRequester, writeAuthRequest, writeRequester } from './auth/auth-codec.ts';

export const COMMAND_FORMAT_VERSION = 2;
/** The first version, still read: commands without a requester. */
const COMMAND_FORMAT_VERSION_WITHOUT_REQUESTER = 1;
/** etcd's DefaultMaxRequestBytes: 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** Nested txns deeper than this cannot pass checkTxnRequest's shrinking ops budget anyway. */
const MAX_TXN_DEPTH = DEFAULT_MAX_TXN_OPS;

/** A command type's code is its index: new types are only ever appended. */
const COMMAND_TYPES: KvCommand['type'][] = [
  'put', 'deleteRange', 'txn', 'compact', 'leaseGrant', 'leaseRevoke', 'alarm',
  'authEnable', 'authDisable', 'authenticate', 'userAdd', 'userDelete', 'userChangePassword', 'userGrantRole',
  'userRevokeRole', 'roleAdd', 'roleDelete', 'roleGrantPermission', 'roleRevokePermission',
];
const OP_TYPES: RequestOp['type'][] = ['range', 'put', 'deleteRange', 'txn'];
// Enum orders follow etcd's protobuf enums, so a value's code is its proto number.
const SORT_ORDERS: SortOrder[] = ['none', 'ascend', 'descend'];
const SORT_TARGETS: SortTarget[] = ['key', 'version', 'create', 'mod', 'value'];
const COMPARE_RESULTS: CompareResult[] = ['equal', 'greater', 'less', 'notEqual'];
const COMPARE_TARGETS: Compare['target'][] = ['version', 'create', 'mod', 'value', 'lease'];
const ALARM_ACTIONS: AlarmAction[] = ['get', 'activate', 'deactivate'];
const ALARM_TYPES: AlarmType[] = ['none', 'nospace', 'corrupt'];

export interface EncodeOptions {
  /** Encoded commands larger than this fail with REQUEST_TOO_LARGE. Default 1.5 MiB. */
  maxRequestBytes?: number;
}

/** Every command is encoded in this one writer (encoding is synchronous, so never by two callers at once). */
const commandWriter = new ByteWriter();

export function encodeCommand(command: KvCommand, options: EncodeOptions = {}): Uint8Array {
  return encodeCommandView(command, options).slice();
}

/**
 * encodeCommand without the copy: a view of the one shared writer, valid only until the next
 * command is encoded. For a caller that copies it at once (RaftMember.propose copies it into the
 * proposal's envelope), which saves an allocation and a copy on every write.
 */
export function encodeCommandView(command: KvCommand, options: EncodeOptions = {}): Uint8Array {
  const writer = commandWriter.reset();
  writer.u8(COMMAND_FORMAT_VERSION);
  writer.u8(COMMAND_TYPES.indexOf(command.type));
  writeRequester(writer, command.requester ?? { kind: 'member' });
  writeCommandBody(writer, command);
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  if (writer.sizeBytes > maxRequestBytes) {
    throw new KvError('CONCORD_E_KV_REQUEST_TOO_LARGE', `${writer.sizeBytes} bytes, at most ${maxRequestBytes}`);
  }
  return writer.viewFrom(0);
}

export interface DecodeOptions {
  /**
   * Keys and values become views of `bytes` instead of copies, so that the store can keep a value
   * without copying it again (see MvccStore's 'adopt'). Only for bytes that never change
   * afterwards, such as a log entry's.
   */
  shareBytes?: boolean;
}

export function decodeCommand(bytes: Uint8Array, options: DecodeOptions = {}): KvCommand {
  const reader = new ByteReader(bytes, invalid, options);
  const version = reader.u8('format version');
  if (version !== COMMAND_FORMAT_VERSION && version !== COMMAND_FORMAT_VERSION_WITHOUT_REQUESTER) {
    throw invalid(`format version ${version}; this member reads versions ${COMMAND_FORMAT_VERSION_WITHOUT_REQUESTER} to ${COMMAND_FORMAT_VERSION}`);
  }
  const type = readEnum(reader, COMMAND_TYPES, 'command type');
  if (version === COMMAND_FORMAT_VERSION_WITHOUT_REQUESTER && isAuthType(type)) throw invalid(`command type ${type} in format version 1`);
  const requester = version === COMMAND_FORMAT_VERSION_WITHOUT_REQUESTER ? { kind: 'member' as const } : readRequester(reader, invalid);
  const command = readCommandBody(reader, type);
  reader.expectEnd('command');
  // The member's own commands carry no requester in memory, so that a command survives a round trip unchanged.
  return requester.kind === 'member' ? command : { ...command, requester };
}

// --- writing ------------------------------------------------------------------------------------

function writeCommandBody(writer: ByteWriter, command: KvCommand): void {
  switch (command.type) {
    case 'put':
      return writePut(writer, command.request);
    case 'deleteRange':
      return writeDeleteRange(writer, command.request);
    case 'txn':
      return writeTxn(writer, command.request);
    case 'compact':
      writer.int(command.request.revision);
      writer.bool(command.request.physical === true);
      return;
    case 'leaseGrant':
      writer.int(command.request.ttl);
      writer.int64(command.request.id);
      return;
    case 'leaseRevoke':
      writer.int64(command.request.id);
      return;
    case 'alarm':
      return writeAlarm(writer, command.request);
    default:
      return writeAuthRequest(writer, command);
  }
}

function writeRange(writer: ByteWriter, request: RangeRequest): void {
  writer.bytes(request.key);
  writer.bytes(request.rangeEnd ?? EMPTY_VALUE);
  writer.int(request.limit ?? 0);
  writer.int(request.revision ?? 0);
  writer.u8(SORT_ORDERS.indexOf(request.sortOrder ?? 'none'));
  writer.u8(SORT_TARGETS.indexOf(request.sortTarget ?? 'key'));
  writer.u8(flags(request.serializable, request.keysOnly, request.countOnly));
  writer.int(request.minModRevision ?? 0);
  writer.int(request.maxModRevision ?? 0);
  writer.int(request.minCreateRevision ?? 0);
  writer.int(request.maxCreateRevision ?? 0);
}

function writePut(writer: ByteWriter, request: PutRequest): void {
  writer.bytes(request.key);
  writer.bytes(request.value ?? EMPTY_VALUE);
  writer.int64(request.lease ?? 0n);
  writer.u8(flags(request.prevKv, request.ignoreValue, request.ignoreLease));
}

function writeDeleteRange(writer: ByteWriter, request: DeleteRangeRequest): void {
  writer.bytes(request.key);
  writer.bytes(request.rangeEnd ?? EMPTY_VALUE);
  writer.bool(request.prevKv === true);
}

function writeTxn(writer: ByteWriter, request: TxnRequest): void {
  const compares = request.compare ?? [];
  writer.uvarint(compares.length);
  for (const compare of compares) writeCompare(writer, compare);
  for (const ops of [request.success ?? [], request.failure ?? []]) {
    writer.uvarint(ops.length);
    for (const op of ops) writeOp(writer, op);
  }
}

function writeOp(writer: ByteWriter, op: RequestOp): void {
  writer.u8(OP_TYPES.indexOf(op.type));
  switch (op.type) {
    case 'range':
      return writeRange(writer, op.request);
    case 'put':
      return writePut(writer, op.request);
    case 'deleteRange':
      return writeDeleteRange(writer, op.request);
    case 'txn':
      return writeTxn(writer, op.request);
  }
}

function writeCompare(writer: ByteWriter, compare: Compare): void {
  writer.u8(COMPARE_RESULTS.indexOf(compare.result));
  writer.u8(COMPARE_TARGETS.indexOf(compare.target));
  writer.bytes(compare.key);
  writer.bytes(compare.rangeEnd ?? EMPTY_VALUE);
  switch (compare.target) {
    case 'version':
      return writer.int(compare.version);
    case 'create':
      return writer.int(compare.createRevision);
    case 'mod':
      return writer.int(compare.modRevision);
    case 'value':
      return writer.bytes(compare.value);
    case 'lease':
      return writer.int64(compare.lease);
  }
}

function writeAlarm(writer: ByteWriter, request: AlarmRequest): void {
  writer.u8(ALARM_ACTIONS.indexOf(request.action));
  writer.uint64(request.memberId);
  writer.u8(ALARM_TYPES.indexOf(request.alarm));
}

function flags(...bits: (boolean | undefined)[]): number {
  return bits.reduce<number>((mask, bit, i) => (bit === true ? mask | (1 << i) : mask), 0);
}

// --- reading ------------------------------------------------------------------------------------

function readCommandBody(reader: ByteReader, type: KvCommand['type']): KvCommand {
  switch (type) {
    case 'put':
      return { type, request: readPut(reader) };
    case 'deleteRange':
      return { type, request: readDeleteRange(reader) };
    case 'txn':
      return { type, request: readTxn(reader, 1) };
    case 'compact':
      return { type, request: { revision: reader.int('compact revision'), physical: reader.bool('physical') } };
    case 'leaseGrant':
      return { type, request: { ttl: reader.int('lease TTL'), id: reader.int64('lease ID') } };
    case 'leaseRevoke':
      return { type, request: { id: reader.int64('lease ID') } };
    case 'alarm':
      return { type, request: readAlarm(reader) };
    default:
      return readAuthRequest(reader, type, invalid);
  }
}

function isAuthType(type: KvCommand['type']): type is AuthCommand['type'] {
  return COMMAND_TYPES.indexOf(type) >= COMMAND_TYPES.indexOf('authEnable');
}

function readRange(reader: ByteReader): RangeRequest {
  const key = reader.bytes('key');
  const rangeEnd = reader.bytes('range end');
  const limit = reader.int('limit');
  const revision = reader.int('revision');
  const sortOrder = readEnum(reader, SORT_ORDERS, 'sort order');
  const sortTarget = readEnum(reader, SORT_TARGETS, 'sort target');
  const [serializable, keysOnly, countOnly] = readFlags(reader, 3, 'range flags');
  const minModRevision = reader.int('min mod revision');
  const maxModRevision = reader.int('max mod revision');
  const minCreateRevision = reader.int('min create revision');
  const maxCreateRevision = reader.int('max create revision');
  return {
    key, rangeEnd, limit, revision, sortOrder, sortTarget, serializable, keysOnly, countOnly,
    minModRevision, maxModRevision, minCreateRevision, maxCreateRevision,
  };
}

function readPut(reader: ByteReader): PutRequest {
  const key = reader.bytes('key');
  const value = reader.bytes('value');
  const lease = reader.int64('lease');
  const [prevKv, ignoreValue, ignoreLease] = readFlags(reader, 3, 'put flags');
  return { key, value, lease, prevKv, ignoreValue, ignoreLease };
}

function readDeleteRange(reader: ByteReader): DeleteRangeRequest {
  return { key: reader.bytes('key'), rangeEnd: reader.bytes('range end'), prevKv: reader.bool('prevKv') };
}

function readTxn(reader: ByteReader, depth: number): TxnRequest {
  if (depth > MAX_TXN_DEPTH) throw invalid(`txns nested deeper than ${MAX_TXN_DEPTH}`);
  const compare = readCounted(reader, 'compare count', () => readCompare(reader));
  const success = readCounted(reader, 'success count', () => readOp(reader, depth));
  const failure = readCounted(reader, 'failure count', () => readOp(reader, depth));
  return { compare, success, failure };
}

function readOp(reader: ByteReader, depth: number): RequestOp {
  const type = readEnum(reader, OP_TYPES, 'operation type');
  switch (type) {
    case 'range':
      return { type, request: readRange(reader) };
    case 'put':
      return { type, request: readPut(reader) };
    case 'deleteRange':
      return { type, request: readDeleteRange(reader) };
    case 'txn':
      return { type, request: readTxn(reader, depth + 1) };
  }
}

function readCompare(reader: ByteReader): Compare {
  const result = readEnum(reader, COMPARE_RESULTS, 'compare result');
  const target = readEnum(reader, COMPARE_TARGETS, 'compare target');
  const base = { result, key: reader.bytes('compare key'), rangeEnd: reader.bytes('compare range end') };
  switch (target) {
    case 'version':
      return { ...base, target, version: reader.int('compare version') };
    case 'create':
      return { ...base, target, createRevision: reader.int('compare create revision') };
    case 'mod':
      return { ...base, target, modRevision: reader.int('compare mod revision') };
    case 'value':
      return { ...base, target, value: reader.bytes('compare value') };
    case 'lease':
      return { ...base, target, lease: reader.int64('compare lease') };
  }
}

function readAlarm(reader: ByteReader): AlarmRequest {
  const action = readEnum(reader, ALARM_ACTIONS, 'alarm action');
  const memberId = reader.uint64('alarm member ID');
  const alarm = readEnum(reader, ALARM_TYPES, 'alarm type');
  return { action, memberId, alarm };
}

function readEnum<T>(reader: ByteReader, values: readonly T[], what: string): T {
  const code = reader.u8(what);
  const value = values[code];
  if (value === undefined) throw invalid(`unknown ${what} ${code}`);
  return value;
}

function readFlags(reader: ByteReader, count: number, what: string): boolean[] {
  const mask = reader.u8(what);
  if (mask >= 1 << count) throw invalid(`unknown bits in ${what}: ${mask}`);
  const flags: boolean[] = [];
  for (let bit = 0; bit < count; bit++) flags.push((mask & (1 << bit)) !== 0);
  return flags;
}

/** A count larger than the bytes left cannot be honest; refuse it before allocating. */
function readCounted<T>(reader: ByteReader, what: string, readItem: () => T): T[] {
  const count = reader.uvarint(what);
  if (count > reader.remainingBytes) throw invalid(`${what} ${count} exceeds the ${reader.remainingBytes} bytes left`);
  return Array.from({ length: count }, readItem);
}

function invalid(detail: string): KvError {
  return new KvError('CONCORD_E_KV_COMMAND_INVALID', detail);
}
