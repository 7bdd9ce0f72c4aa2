// etcd's Maintenance service over a Concord member: Status, Alarm, Hash, HashKV, Snapshot,
// Defragment and MoveLeader.
//
// Where Concord differs from etcd, and why:
// * Status.version is `3.4.23`, the etcd release whose API and behaviour Concord is checked
//   against (the compatibility suite runs etcdctl 3.4.23 against both and compares the field as is).
//   Clients gate features on it, so it names the API level, not the product; Concord's own version
//   is `concord --version`.
// * dbSize and dbSizeInUse are the state machine's size estimate (the quota's cost model). The store
//   lives in memory, so there are no free pages: both are the same number.
// * Defragment succeeds without doing anything: an in-memory store has no file to defragment.
// * Snapshot streams Concord's snapshot file (below), not a bbolt database. `etcdctl snapshot save`
//   accepts it; `etcdctl snapshot status` cannot read it; `concord snapshot restore` restores it.
// * With auth on, Defragment, Hash, HashKV and Snapshot need the root role and fail as etcd's do,
//   with the auth package's own texts and the status UNKNOWN ("auth: permission denied"). Status
//   and Alarm GET need nothing, as in etcd. Arming or disarming an alarm needs the root role
//   (checked when applied), and so does MoveLeader, which etcd 3.4 lets anyone call.
//
// The snapshot file. etcd streams its bbolt database, then a last message holding the SHA-256 of
// everything before it; etcdctl (3.4.x and later) refuses a stream whose length is not 32 bytes past
// a multiple of 512, since a bbolt file is whole pages. Concord streams its key-value snapshot,
// framed so that the same checks hold:
//
//   offset  size  field
//   0       4     magic "CSAV"
//   4       4     format version (1), little-endian
//   8       8     payload length in bytes, little-endian
//   16      n     payload: the key-value snapshot (kv-snapshot.ts; it carries its own CRC-32C)
//   16+n    p     zero bytes, so that the body is a multiple of 512 bytes
//   end     32    SHA-256 of the body: the stream's last message, as etcd sends it

import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { KvError } from '../../kv/errors.ts';
import type { KvErrorCode } from '../../kv/errors.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import { crc32c } from '@node-rs/crc32';
import type { AlarmAction, AlarmMember, AlarmType } from '../../kv/types.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';
import { ByteWriter } from '../../storage/binary-codec.ts';
import { grpcError, toServiceError } from './grpc-errors.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { bigintFromWire, header, numberFromWire, WireError } from './wire.ts';
import type { WireInt64 } from './wire.ts';
import { unary } from './unary-handler.ts';

/** The etcd release whose behaviour Concord is compared with; Status reports it (see above). */
export const ETCD_COMPATIBLE_VERSION = '3.4.23';
/** Bytes per Snapshot message, as etcd's 32 KiB buffer. */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;

export const SNAPSHOT_FILE_FORMAT_VERSION = 1;
export const SNAPSHOT_FILE_MAGIC = new Uint8Array([0x43, 0x53, 0x41, 0x56]); // "CSAV"
export const SNAPSHOT_FILE_HEADER_BYTES = 16;
/** etcdctl checks that a saved file is this many bytes past a multiple of 512: the SHA-256 trailer. */
export const SNAPSHOT_FILE_CHECKSUM_BYTES = 32;
/** bbolt's page granularity, which etcdctl's check assumes; the body is padded to it. */
export const SNAPSHOT_FILE_ALIGN_BYTES = 512;

/** etcd's text for a member that knows no leader (rpctypes.ErrNoLeader). */
const NO_LEADER = 'etcdserver: no leader';

const ALARM_ACTIONS: Record<string, AlarmAction> = { GET: 'get', ACTIVATE: 'activate', DEACTIVATE: 'deactivate' };
const ALARM_TYPES: Record<string, AlarmType> = { NONE: 'none', NOSPACE: 'nospace', CORRUPT: 'corrupt' };
const ALARM_TYPE_NAMES: Record<AlarmType, string> = { none: 'NONE', nospace: 'NOSPACE', corrupt: 'CORRUPT' };

interface WireAlarmRequest {
  action?: string | number;
  memberID?: WireInt64;
  alarm?: string | number;
}

export function maintenanceService(context: EtcdServiceContext, auth: AuthGate): UntypedServiceImplementation {
  const version = ETCD_COMPATIBLE_VERSION;
  /** etcd's authMaintenanceServer.isAuthenticated: the root role, with the auth package's raw errors. */
  const checkAdmin = (caller: CallIdentity) => {
    try {
      auth.checkAdmin(caller);
    } catch (error) {
      throw rawAuthError(error);
    }
  };
  const snapshotStreams = new Set<ServerWritableStream<unknown, unknown>>();
  context.onStop(() => {
    for (const stream of snapshotStreams) stream.emit('error', grpcError(status.UNAVAILABLE, 'etcdserver: server stopped'));
  });
  return {
    Status: unary(async () => memberStatus(context, version)),
    Alarm: unary((wire: WireAlarmRequest, caller) => alarm(context, wire, auth.requester(caller))),
    // etcd answers Defragment, Alarm and MoveLeader without a header; so does Concord.
    Defragment: unary(async (_wire: object, caller) => {
      checkAdmin(caller);
      return {};
    }),
    Hash: unary(async (_wire: object, caller) => {
      checkAdmin(caller);
      const machine = context.stateMachine();
      const snapshot = machine.snapshot();
      return { header: header(context.headers, machine.currentRevision), hash: crc32c(Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength)) };
    }),
    HashKV: unary(async (wire: { revision?: WireInt64 }, caller) => {
      checkAdmin(caller);
      const response = context.stateMachine().hashKv(numberFromWire(wire.revision, 'revision'));
      return {
        header: header(context.headers, response.header.revision),
        hash: response.hash,
        // etcd reports -1 for a store that was never compacted.
        compact_revision: String(response.compactRevision === 0 ? -1 : response.compactRevision),
      };
    }),
    Snapshot: (stream: ServerWritableStream<unknown, unknown>) => {
      try {
        checkAdmin(stream);
      } catch (error) {
        stream.emit('error', toServiceError(error));
        return;
      }
      snapshotStreams.add(stream);
      streamSnapshot(context, stream)
        .catch((error: unknown) => stream.emit('error', toServiceError(error)))
        .finally(() => snapshotStreams.delete(stream));
    },
    MoveLeader: unary(async (wire: { targetID?: WireInt64 }, caller) => {
      auth.checkAdmin(caller);
      return moveLeader(context, bigintFromWire(wire.targetID, 'targetID'));
    }),
  };
}

function memberStatus(context: EtcdServiceContext, version: string) {
  const { member } = context;
  const machine = context.stateMachine();
  const leader = member.leaderId();
  const sizeBytes = String(machine.sizeBytes());
  return {
    header: header(context.headers, machine.currentRevision),
    version,
    dbSize: sizeBytes,
    leader: leader.toString(),
    raftIndex: String(member.committedIndex()),
    raftTerm: String(member.term()),
    raftAppliedIndex: String(member.appliedIndex()),
    errors: [...(leader === 0n ? [NO_LEADER] : []), ...machine.alarms().map(alarmText)],
    dbSizeInUse: sizeBytes,
    isLearner: member.membership().learners.includes(member.memberId),
  };
}

/**
 * An alarm as etcd's Status lists it: Go's compact protobuf text, which leaves out zero fields and
 * ends every field with a space (`memberID:12345 alarm:NOSPACE `, or `alarm:NOSPACE ` for member 0).
 */
export function alarmText(member: AlarmMember): string {
  const fields = [...(member.memberId === 0n ? [] : [`memberID:${member.memberId}`]), ...(member.alarm === 'none' ? [] : [`alarm:${ALARM_TYPE_NAMES[member.alarm]}`])];
  return fields.map((field) => `${field} `).join('');
}

/**
 * GET reads this member's alarms after a read barrier (they are replicated state); ACTIVATE and
 * DEACTIVATE go through Raft, and the state machine applies them on every member.
 */
async function alarm(context: EtcdServiceContext, wire: WireAlarmRequest, requester: Requester) {
  const action = enumFromWire(ALARM_ACTIONS, wire.action, 'action', 'GET');
  const alarmType = enumFromWire(ALARM_TYPES, wire.alarm, 'alarm', 'NONE');
  if (action === 'get') {
    await context.backend.readBarrier();
    const alarms = context.stateMachine().alarms().filter((member) => alarmType === 'none' || member.alarm === alarmType);
    return { alarms: alarms.map(alarmToWire) };
  }
  const memberId = bigintFromWire(wire.memberID, 'memberID');
  const result = await context.backend.write({ type: 'alarm', request: { action, memberId, alarm: alarmType } }, requester);
  if (result.type !== 'alarm') throw new Error(`bug: an alarm command answered with a ${result.type} response`);
  return { alarms: result.response.alarms.map(alarmToWire) };
}

function alarmToWire(member: AlarmMember) {
  return { memberID: member.memberId.toString(), alarm: ALARM_TYPE_NAMES[member.alarm] };
}

function enumFromWire<T>(table: Record<string, T>, value: string | number | undefined, field: string, fallback: string): T {
  const name = typeof value === 'number' ? Object.keys(table)[value] : (value ?? fallback);
  const mapped = name === undefined ? undefined : table[name];
  if (mapped === undefined) throw new WireError(`${field} '${String(value)}' is not one of ${Object.keys(table).join(', ')}`);
  return mapped;
}

/**
 * etcd's checks in its order: only the leader transfers leadership, and only to a voting member;
 * then it waits until the transferee leads (or answers that the transfer took too long).
 */
async function moveLeader(context: EtcdServiceContext, targetId: bigint) {
  const { member } = context;
  if (!member.isLeader()) throw grpcError(status.FAILED_PRECONDITION, 'etcdserver: not leader');
  if (!member.membership().voters.includes(targetId)) throw grpcError(status.FAILED_PRECONDITION, 'etcdserver: bad leader transferee');
  if (targetId === member.memberId) return {}; // already the leader
  await context.cluster.moveLeader(targetId);
  return {};
}

// ---- Snapshot ----

/** Frames a key-value snapshot as the body of a snapshot file: header, payload, zero padding. */
export function encodeSnapshotFileBody(kvSnapshot: Uint8Array): Uint8Array {
  const unpaddedBytes = SNAPSHOT_FILE_HEADER_BYTES + kvSnapshot.byteLength;
  const bodyBytes = Math.ceil(unpaddedBytes / SNAPSHOT_FILE_ALIGN_BYTES) * SNAPSHOT_FILE_ALIGN_BYTES;
  const body = new ByteWriter(bodyBytes)
    .raw(SNAPSHOT_FILE_MAGIC)
    .u32(SNAPSHOT_FILE_FORMAT_VERSION)
    .u53(kvSnapshot.byteLength)
    .raw(kvSnapshot)
    .raw(new Uint8Array(bodyBytes - unpaddedBytes))
    .finish();
  if (body.byteLength !== bodyBytes) throw new Error(`bug: snapshot file body is ${body.byteLength} bytes, expected ${bodyBytes}`);
  return body;
}

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * Streams the snapshot file in SNAPSHOT_CHUNK_BYTES messages, each with the bytes still to come, then
 * the SHA-256 message. The state machine's snapshot() runs synchronously, between two applied
 * commands, so the copy is consistent at one point in time; later writes do not touch it.
 */
async function streamSnapshot(context: EtcdServiceContext, stream: ServerWritableStream<unknown, unknown>): Promise<void> {
  const body = encodeSnapshotFileBody(context.stateMachine().snapshot());
  for (let sentBytes = 0; sentBytes < body.byteLength;) {
    if (stream.cancelled) return;
    const blob = body.subarray(sentBytes, sentBytes + SNAPSHOT_CHUNK_BYTES);
    sentBytes += blob.byteLength;
    if (!stream.write({ remaining_bytes: String(body.byteLength - sentBytes), blob })) await drained(stream);
  }
  if (stream.cancelled) return;
  stream.write({ remaining_bytes: '0', blob: sha256(body) });
  stream.end();
}

/** Resolves when the client has taken the buffered messages, or the call ended. */
function drained(stream: ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('cancelled', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('cancelled', done);
    stream.on('close', done);
  });
}

// ---- Plumbing ----



/**
 * etcd's maintenance server returns the auth package's errors as they are, not mapped to its gRPC
 * errors, so clients see the status UNKNOWN and texts such as "auth: permission denied".
 */
const RAW_AUTH_ERRORS: Partial<Record<KvErrorCode, string>> = {
  CONCORD_E_AUTH_USER_EMPTY: 'auth: user name is empty',
  CONCORD_E_AUTH_USER_NOT_FOUND: 'auth: user not found',
  CONCORD_E_AUTH_PERMISSION_DENIED: 'auth: permission denied',
  CONCORD_E_AUTH_INVALID_TOKEN: 'auth: invalid auth token',
};

function rawAuthError(error: unknown): unknown {
  const text = error instanceof KvError ? RAW_AUTH_ERRORS[error.code] : undefined;
  return text === undefined ? error : grpcError(status.UNKNOWN, text);
}

