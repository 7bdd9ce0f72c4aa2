// Every etcd request type with extreme field values, against a real member: empty keys, keys of
// 0x00 and 0xff bytes, range_end "\0", huge limits, negative and int64-max revisions, TTLs and IDs,
// values at and above --max-request-bytes, deeply nested txns, thousands of ops in one txn, unknown
// enum values. A fixed list is answered by Concord and by etcd 3.4 and compared (status and text);
// then generated requests of every type go to Concord alone. Each request gets an etcd error (or
// succeeds) in bounded time, no answer leaks a JavaScript exception, and the member keeps serving.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { StoreServer } from '../../src/server/store-server.ts';
import { startEtcd } from '../compat/etcd-process.ts';
import type { EtcdMember } from '../compat/etcd-process.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';
import { startTestMember } from '../support/store-member.ts';
import type { TestDataRoot } from '../support/store-member.ts';

const dataRoot: TestDataRoot = { dir: '' };
const protos = loadEtcdProtos();
const SERVICES = ['KV', 'Lease', 'Watch', 'Maintenance', 'Cluster', 'Auth'] as const;
type ServiceName = (typeof SERVICES)[number];
type Unary = (request: object, metadata: Metadata, options: { deadline: number }, callback: (error: ServiceError | null, response: unknown) => void) => void;
type Clients = Record<ServiceName, Record<string, Unary> & { close(): void }>;
/** A request's answer, as compared: 'ok' or "<grpc code> <details>". */
type Outcome = string;

/** Generous: the machine is shared; an answer later than this counts as a hang. */
const CALL_DEADLINE_MS = 10_000;
const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
const INT64_MAX = '9223372036854775807';
const INT64_MIN = '-9223372036854775808';

function clientsFor(endpoint: string): Clients {
  const clients = {} as Clients;
  for (const name of SERVICES) clients[name] = new protos.clients[name](endpoint, credentials.createInsecure()) as unknown as Clients[ServiceName];
  return clients;
}

function closeClients(clients: Clients): void {
  for (const client of Object.values(clients)) client.close();
}

function unary(clients: Clients, service: ServiceName, method: string, request: object): Promise<Outcome> {
  return new Promise((resolve) => {
    clients[service][method]!.call(clients[service], request, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => {
      resolve(error ? `${error.code} ${error.details}` : 'ok');
    });
  });
}

/** Opens a bidi stream (Watch or LeaseKeepAlive), writes `requests`, and records what comes back first. */
function firstStreamAnswer(clients: Clients, service: 'Watch' | 'Lease', method: string, requests: object[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const client = clients[service] as unknown as Record<string, (metadata: Metadata, options: { deadline: number }) => ClientDuplexStream<object, Record<string, unknown>>>;
    const stream = client[method]!(new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS });
    let answered = false;
    const finish = (outcome: Outcome) => {
      if (answered) return;
      answered = true;
      stream.cancel();
      resolve(outcome);
    };
    stream.on('data', (response) => {
      const reason = response.cancel_reason;
      finish(typeof reason === 'string' && reason !== '' ? `cancelled: ${reason}` : response.canceled === true ? 'cancelled' : 'ok');
    });
    stream.on('error', (error: ServiceError) => finish(`${error.code} ${error.details}`));
    stream.on('end', () => finish('ended'));
    for (const request of requests) stream.write(request);
    // A stream request that gets no answer at all (a cancel of an unknown watch) is fine too.
    setTimeout(() => finish('no answer'), 1_000);
  });
}

const key = (text: string) => Buffer.from(text);
const put = (k: Buffer, value: Buffer = Buffer.alloc(0)) => ({ request_put: { key: k, value } });

function nestedTxn(depth: number): object {
  let txn: object = { success: [put(key('nested'))] };
  for (let i = 0; i < depth; i++) txn = { success: [{ request_txn: txn }] };
  return txn;
}

/** The fixed extreme requests, answered by both etcd and Concord. [name, service, method, request]. */
const FIXED: [string, ServiceName, string, object][] = [
  ['range, empty key', 'KV', 'Range', { key: Buffer.alloc(0) }],
  ['range, key 0x00', 'KV', 'Range', { key: Buffer.from([0]) }],
  ['range, key 0xff x 3', 'KV', 'Range', { key: Buffer.from([0xff, 0xff, 0xff]) }],
  ['range, range_end \\0 (everything from key on)', 'KV', 'Range', { key: Buffer.from([0]), range_end: Buffer.from([0]) }],
  ['range, range_end before key', 'KV', 'Range', { key: key('b'), range_end: key('a') }],
  ['range, limit int64 max', 'KV', 'Range', { key: Buffer.from([0]), range_end: Buffer.from([0]), limit: INT64_MAX }],
  ['range, limit -1', 'KV', 'Range', { key: key('a'), limit: '-1' }],
  ['range, revision -1', 'KV', 'Range', { key: key('a'), revision: '-1' }],
  ['range, revision int64 max', 'KV', 'Range', { key: key('a'), revision: INT64_MAX }],
  ['range, revision int64 min', 'KV', 'Range', { key: key('a'), revision: INT64_MIN }],
  ['range, unknown sort order 7', 'KV', 'Range', { key: key('a'), sort_order: 7 }],
  ['range, min_mod_revision int64 max', 'KV', 'Range', { key: key('a'), min_mod_revision: INT64_MAX, max_create_revision: '-5' }],
  ['put, empty key', 'KV', 'Put', { key: Buffer.alloc(0), value: key('v') }],
  ['put, key 0x00', 'KV', 'Put', { key: Buffer.from([0]), value: key('v') }],
  ['put, key 0xff', 'KV', 'Put', { key: Buffer.from([0xff]), value: Buffer.from([0xff]) }],
  ['put, lease int64 max', 'KV', 'Put', { key: key('a'), lease: INT64_MAX }],
  ['put, lease -1', 'KV', 'Put', { key: key('a'), lease: '-1' }],
  ['put, ignore_value with a value', 'KV', 'Put', { key: key('a'), value: key('v'), ignore_value: true }],
  ['put, value just under --max-request-bytes', 'KV', 'Put', { key: key('big'), value: Buffer.alloc(MAX_REQUEST_BYTES - 64) }],
  ['put, value just over --max-request-bytes', 'KV', 'Put', { key: key('big'), value: Buffer.alloc(MAX_REQUEST_BYTES + 1) }],
  ['put, value 3 MiB (over the gRPC receive limit)', 'KV', 'Put', { key: key('big'), value: Buffer.alloc(3 * 1024 * 1024) }],
  ['delete, empty key', 'KV', 'DeleteRange', { key: Buffer.alloc(0) }],
  ['delete, range_end \\0 from 0xff', 'KV', 'DeleteRange', { key: Buffer.from([0xff, 0xff]), range_end: Buffer.from([0]) }],
  ['txn, 5000 puts', 'KV', 'Txn', { success: Array.from({ length: 5000 }, (_, i) => put(key(`k${i}`))) }],
  ['txn, 129 ops (over --max-txn-ops)', 'KV', 'Txn', { success: Array.from({ length: 129 }, (_, i) => put(key(`k${i}`))) }],
  ['txn, nested 30 deep', 'KV', 'Txn', nestedTxn(30)],
  ['txn, compare with unknown result and target', 'KV', 'Txn', { compare: [{ result: 9, target: 9, key: key('a') }] }],
  ['txn, compare on an empty key', 'KV', 'Txn', { compare: [{ result: 'EQUAL', target: 'VERSION', key: Buffer.alloc(0), version: '0' }] }],
  ['txn, compare mod revision int64 min', 'KV', 'Txn', { compare: [{ result: 'LESS', target: 'MOD', key: key('a'), mod_revision: INT64_MIN }] }],
  ['txn, empty request op', 'KV', 'Txn', { success: [{}] }],
  ['compact, revision -1', 'KV', 'Compact', { revision: '-1' }],
  ['compact, revision 0', 'KV', 'Compact', { revision: '0' }],
  ['compact, revision int64 max', 'KV', 'Compact', { revision: INT64_MAX }],
  ['lease grant, TTL -1', 'Lease', 'LeaseGrant', { TTL: '-1' }],
  ['lease grant, TTL int64 max', 'Lease', 'LeaseGrant', { TTL: INT64_MAX }],
  ['lease grant, TTL 9000000001 (over etcd\'s maximum)', 'Lease', 'LeaseGrant', { TTL: '9000000001' }],
  ['lease grant, ID -1', 'Lease', 'LeaseGrant', { TTL: '60', ID: '-1' }],
  ['lease revoke, ID 0', 'Lease', 'LeaseRevoke', { ID: '0' }],
  ['lease revoke, ID int64 max', 'Lease', 'LeaseRevoke', { ID: INT64_MAX }],
  ['lease time-to-live, ID int64 min', 'Lease', 'LeaseTimeToLive', { ID: INT64_MIN, keys: true }],
  // As learners: a voter that can never start would cost the one-member cluster its quorum.
  ['member add, no URLs', 'Cluster', 'MemberAdd', { peerURLs: [], isLearner: true }],
  ['member add, a URL that is not one', 'Cluster', 'MemberAdd', { peerURLs: ['not a url'], isLearner: true }],
  ['member add, port out of range', 'Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:99999'], isLearner: true }],
  ['member remove, ID 0', 'Cluster', 'MemberRemove', { ID: '0' }],
  ['member remove, ID uint64 max', 'Cluster', 'MemberRemove', { ID: '18446744073709551615' }],
  ['member update, unknown ID', 'Cluster', 'MemberUpdate', { ID: '12345', peerURLs: ['http://127.0.0.1:1'] }],
  ['member promote, unknown ID', 'Cluster', 'MemberPromote', { ID: '12345' }],
  ['alarm, deactivate an unknown alarm type 9', 'Maintenance', 'Alarm', { action: 'DEACTIVATE', memberID: INT64_MAX, alarm: 9 }],
  ['hash kv, revision -1', 'Maintenance', 'HashKV', { revision: '-1' }],
  ['hash kv, revision int64 max', 'Maintenance', 'HashKV', { revision: INT64_MAX }],
  ['move leader, ID 0', 'Maintenance', 'MoveLeader', { targetID: '0' }],
  ['move leader, unknown ID', 'Maintenance', 'MoveLeader', { targetID: '42' }],
  ['user add, empty name', 'Auth', 'UserAdd', { name: '' }],
  ['user add, name of 0x00', 'Auth', 'UserAdd', { name: '\u0000', password: 'x' }],
  ['role grant, unknown permission type 5', 'Auth', 'RoleGrantPermission', { name: 'nosuch', perm: { permType: 5, key: key('a') } }],
  ['auth enable without a root user', 'Auth', 'AuthEnable', {}],
  ['user get, empty name', 'Auth', 'UserGet', { name: '' }],
];

/** Requests that crash etcd 3.4.23 (a Go panic that stops the member), so Concord's answer is checked alone. */
const ETCD_CRASHES_ON: [string, ServiceName, string, object][] = [
  ['range, unknown sort target 9', 'KV', 'Range', { key: key('a'), sort_order: 1, sort_target: 9 }],
  ['alarm, unknown action 7', 'Maintenance', 'Alarm', { action: 7, memberID: '0', alarm: 'NONE' }],
];

/**
 * Where Concord answers otherwise than etcd 3.4, on purpose (docs/reliability.md lists them).
 * Name of the request -> why.
 */
const KNOWN_DIFFERENCES = new Map<string, string>([
  ['range, unknown sort order 7', 'an unknown enum value is refused (INVALID_ARGUMENT) rather than guessed at; etcd ignores it here and crashes on others'],
  ['txn, compare with unknown result and target', 'unknown enum value refused (etcd runs the failure branch)'],
  ['alarm, deactivate an unknown alarm type 9', 'unknown enum value refused (etcd answers ok and does nothing)'],
  ['role grant, unknown permission type 5', 'the enum is checked before the role exists (etcd: role name not found)'],
  ['watch, start revision -1 and unknown filter 7', 'unknown filter refused: the watch is cancelled with the reason (etcd ignores the filter)'],
  ['txn, empty request op', 'an op with no request is refused by name (etcd 3.4 answers "key not found")'],
  ['compact, revision 0', 'the history starts compacted at 0, so compacting at 0 is "already compacted" (etcd 3.4 accepts it once)'],
  ['member add, port out of range', 'a peer URL whose port is above 65535 is refused (etcd 3.4 adds the member, which can never be reached)'],
  ['put, value 3 MiB (over the gRPC receive limit)', 'same status (RESOURCE_EXHAUSTED); the text is grpc-js\'s, not grpc-go\'s'],
]);

/** Answers that would mean a JavaScript exception escaped into the gRPC status. */
const LEAKED_EXCEPTION = /TypeError|RangeError|ReferenceError|SyntaxError|Cannot read|is not a function|undefined is not|Maximum call stack|\.ts:\d+/;

let concord: StoreServer;
let etcd: EtcdMember | undefined;

before(async () => {
  dataRoot.dir = mkdtempSync(join(tmpdir(), 'concord-grpc-extreme-'));
  concord = await startTestMember(dataRoot, 'extreme');
  etcd = await startEtcd();
});

after(async () => {
  await concord?.stop();
  await etcd?.stop();
  rmSync(dataRoot.dir, { recursive: true, force: true });
});

async function assertServing(clients: Clients, what: string): Promise<void> {
  const value = Buffer.from(`alive after ${what}`);
  assert.equal(await unary(clients, 'KV', 'Put', { key: key('sentinel'), value }), 'ok', `the member serves a put after ${what}`);
  assert.equal(await unary(clients, 'KV', 'Range', { key: key('sentinel') }), 'ok', `the member serves a range after ${what}`);
}

async function runFixed(endpoint: string): Promise<Map<string, Outcome>> {
  const clients = clientsFor(endpoint);
  const outcomes = new Map<string, Outcome>();
  try {
    for (const [name, service, method, request] of FIXED) {
      outcomes.set(name, await unary(clients, service, method, request));
    }
    outcomes.set('watch, start revision int64 max', await firstStreamAnswer(clients, 'Watch', 'Watch', [{ create_request: { key: key('a'), start_revision: INT64_MAX } }]));
    outcomes.set('watch, start revision -1 and unknown filter 7', await firstStreamAnswer(clients, 'Watch', 'Watch', [{ create_request: { key: key('a'), start_revision: '-1', filters: [7] } }]));
    outcomes.set('watch, cancel an unknown watch ID', await firstStreamAnswer(clients, 'Watch', 'Watch', [{ cancel_request: { watch_id: INT64_MAX } }]));
    outcomes.set('keep-alive, lease ID int64 min', await firstStreamAnswer(clients, 'Lease', 'LeaseKeepAlive', [{ ID: INT64_MIN }]));
    await assertServing(clients, 'the fixed extreme requests');
  } finally {
    closeClients(clients);
  }
  return outcomes;
}

describe('gRPC requests with extreme values', () => {
  test('a fixed list of extreme requests: Concord answers as etcd 3.4 does, and keeps serving', async () => {
    const expected = await runFixed(etcd!.endpoint);
    const actual = await runFixed(concord.clientAddresses[0]!);
    const differences: string[] = [];
    for (const [name, outcome] of expected) {
      const ours = actual.get(name)!;
      assert.doesNotMatch(ours, LEAKED_EXCEPTION, `${name}: ${ours}`);
      if (ours !== outcome && !KNOWN_DIFFERENCES.has(name)) differences.push(`${name}\n    etcd:    ${outcome}\n    concord: ${ours}`);
    }
    assert.deepEqual(differences, [], `answers that differ from etcd's:\n  ${differences.join('\n  ')}`);
    for (const name of KNOWN_DIFFERENCES.keys()) assert.notEqual(actual.get(name), expected.get(name), `${name} is no longer a difference: drop it from KNOWN_DIFFERENCES`);
  });

  test('requests that crash etcd 3.4 get INVALID_ARGUMENT from Concord', async () => {
    const clients = clientsFor(concord.clientAddresses[0]!);
    try {
      for (const [name, service, method, request] of ETCD_CRASHES_ON) {
        assert.match(await unary(clients, service, method, request), /^3 concord: .* is not one of /, name);
      }
      await assertServing(clients, 'requests that crash etcd');
    } finally {
      closeClients(clients);
    }
  });

  test('a txn nested 10,000 deep (beyond what protobufjs encodes) is refused, and the member keeps serving', async () => {
    // Encoded by hand: TxnRequest.success (field 2) holds RequestOp, whose request_txn (field 4)
    // holds the next TxnRequest. Each level is a length-delimited field inside the one before.
    let txn = Buffer.alloc(0);
    for (let i = 0; i < 10_000; i++) {
      const op = Buffer.concat([Buffer.from([0x22]), varint(txn.byteLength), txn]);
      txn = Buffer.concat([Buffer.from([0x12]), varint(op.byteLength), op]);
    }
    const clients = clientsFor(concord.clientAddresses[0]!);
    try {
      const answer = await rawUnary(concord.clientAddresses[0]!, '/etcdserverpb.KV/Txn', txn);
      assert.notEqual(answer, '0', 'not accepted');
      assert.doesNotMatch(answer, LEAKED_EXCEPTION);
      await assertServing(clients, 'a txn nested 10,000 deep');
    } finally {
      closeClients(clients);
    }
  });
});

function varint(value: number): Buffer {
  const out: number[] = [];
  let left = value;
  while (left >= 0x80) {
    out.push((left & 0x7f) | 0x80);
    left = Math.floor(left / 0x80);
  }
  out.push(left);
  return Buffer.from(out);
}

/** One gRPC call with a hand-encoded message; resolves to "<grpc-status> <grpc-message>". */
function rawUnary(endpoint: string, path: string, message: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`http://${endpoint}`);
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const frame = Buffer.alloc(5 + message.byteLength);
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, 5);
    let status = '';
    let details = '';
    const capture = (headers: Record<string, unknown>) => {
      if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined) details = decodeURIComponent(String(headers['grpc-message']));
    };
    stream.on('response', capture);
    stream.on('trailers', capture);
    stream.on('data', () => {});
    stream.on('end', () => {
      session.close();
      resolve(`${status} ${details}`);
    });
    stream.on('error', reject);
    stream.setTimeout(CALL_DEADLINE_MS, () => {
      session.destroy();
      reject(new Error(`no answer within ${CALL_DEADLINE_MS} ms`));
    });
    stream.end(frame);
  });
}

// ---- generated requests --------------------------------------------------------------------------

const int64 = fc.oneof(
  fc.constantFrom('0', '1', '-1', INT64_MAX, INT64_MIN, '9007199254740992', '-9007199254740993', '4294967296', '2147483648'),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String),
  fc.integer({ min: -5, max: 50 }).map(String),
);
const uint64 = fc.oneof(fc.constantFrom('0', '1', '18446744073709551615', '9223372036854775808'), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String));
const keyBytes = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.constantFrom(Buffer.from([0]), Buffer.from([0xff]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0, 0, 0]), Buffer.from('a'), Buffer.from('sentinel')),
  fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
  fc.integer({ min: 1, max: 4 }).map((n) => Buffer.alloc(n * 1024, 0x61)),
);
const rangeEnd = fc.oneof(fc.constant(undefined), fc.constant(Buffer.from([0])), keyBytes);
const value = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_REQUEST_BYTES - 100, MAX_REQUEST_BYTES, MAX_REQUEST_BYTES + 100).map((n) => Buffer.alloc(n)) },
);
/** Enum fields: a known name, or a number that may be unknown. */
const enumOf = (...names: string[]) => fc.oneof(fc.constantFrom(...names), fc.integer({ min: 0, max: 12 }));

const rangeRequest = fc.record({
  key: keyBytes, range_end: rangeEnd, limit: int64, revision: int64, sort_order: enumOf('NONE', 'ASCEND', 'DESCEND'),
  sort_target: enumOf('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'), serializable: fc.boolean(), keys_only: fc.boolean(), count_only: fc.boolean(),
  min_mod_revision: int64, max_mod_revision: int64, min_create_revision: int64, max_create_revision: int64,
}, { requiredKeys: ['key'] });
const putRequest = fc.record({ key: keyBytes, value, lease: int64, prev_kv: fc.boolean(), ignore_value: fc.boolean(), ignore_lease: fc.boolean() }, { requiredKeys: ['key'] });
const deleteRequest = fc.record({ key: keyBytes, range_end: rangeEnd, prev_kv: fc.boolean() }, { requiredKeys: ['key'] });
const compare = fc.record({
  result: enumOf('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'), target: enumOf('VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'), key: keyBytes, range_end: rangeEnd,
  version: int64, create_revision: int64, mod_revision: int64, value, lease: int64,
}, { requiredKeys: ['key'] });
const txnRequest: fc.Arbitrary<object> = fc.letrec<{ txn: object; op: object }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    rangeRequest.map((r) => ({ request_range: r })),
    putRequest.map((r) => ({ request_put: r })),
    deleteRequest.map((r) => ({ request_delete_range: r })),
    tie('txn').map((t) => ({ request_txn: t })),
    fc.constant({}),
  ),
  txn: fc.record({ compare: fc.array(compare, { maxLength: 3 }), success: fc.array(tie('op'), { maxLength: 4 }), failure: fc.array(tie('op'), { maxLength: 4 }) }),
})).txn;
const bigTxn = fc.integer({ min: 120, max: 3000 }).map((count) => ({ success: Array.from({ length: count }, (_, i) => ({ request_put: { key: Buffer.from(`t${i}`) } })) }));
const name = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', '\u0000', 'root', 'x'.repeat(5000)));
const perm = fc.record({ permType: enumOf('READ', 'WRITE', 'READWRITE'), key: keyBytes, range_end: rangeEnd });
const peerUrls = fc.array(fc.oneof(fc.constantFrom('http://127.0.0.1:1', 'http://127.0.0.1:99999', 'not a url', '', 'unix:///x', 'http://[::1]:2380', 'https://a:0'), fc.webUrl()), { maxLength: 3 });

type Call = { kind: 'unary'; service: ServiceName; method: string; request: object } | { kind: 'stream'; service: 'Watch' | 'Lease'; method: string; requests: object[] };
const unaryCall = (service: ServiceName, method: string, request: fc.Arbitrary<object>): fc.Arbitrary<Call> => request.map((r) => ({ kind: 'unary' as const, service, method, request: r }));

/**
 * Every request type, except those that would make the one-member cluster stop serving by design:
 * MemberAdd of a voter (quorum lost), MemberRemove of itself, AuthEnable, activating an alarm.
 */
function callArbitrary(selfId: string): fc.Arbitrary<Call> {
  const otherId = uint64.filter((id) => id !== selfId);
  return fc.oneof(
    unaryCall('KV', 'Range', rangeRequest),
    unaryCall('KV', 'Put', putRequest),
    unaryCall('KV', 'DeleteRange', deleteRequest),
    unaryCall('KV', 'Txn', fc.oneof({ weight: 5, arbitrary: txnRequest }, { weight: 1, arbitrary: bigTxn })),
    unaryCall('KV', 'Compact', fc.record({ revision: int64, physical: fc.boolean() })),
    unaryCall('Lease', 'LeaseGrant', fc.record({ TTL: int64, ID: int64 })),
    unaryCall('Lease', 'LeaseRevoke', fc.record({ ID: int64 })),
    unaryCall('Lease', 'LeaseTimeToLive', fc.record({ ID: int64, keys: fc.boolean() })),
    unaryCall('Lease', 'LeaseLeases', fc.constant({})),
    int64.map((id): Call => ({ kind: 'stream', service: 'Lease', method: 'LeaseKeepAlive', requests: [{ ID: id }] })),
    fc.array(fc.oneof(
      fc.record({ key: keyBytes, range_end: rangeEnd, start_revision: int64, progress_notify: fc.boolean(), filters: fc.array(enumOf('NOPUT', 'NODELETE'), { maxLength: 3 }), prev_kv: fc.boolean(), watch_id: int64, fragment: fc.boolean() }, { requiredKeys: ['key'] }).map((r) => ({ create_request: r })),
      int64.map((id) => ({ cancel_request: { watch_id: id } })),
      fc.constant({ progress_request: {} }),
      fc.constant({}),
    ), { minLength: 1, maxLength: 4 }).map((requests): Call => ({ kind: 'stream', service: 'Watch', method: 'Watch', requests })),
    unaryCall('Maintenance', 'Status', fc.constant({})),
    unaryCall('Maintenance', 'Hash', fc.constant({})),
    unaryCall('Maintenance', 'HashKV', fc.record({ revision: int64 })),
    unaryCall('Maintenance', 'Defragment', fc.constant({})),
    unaryCall('Maintenance', 'Alarm', fc.record({ action: fc.oneof(fc.constantFrom('GET', 'DEACTIVATE'), fc.integer({ min: 3, max: 12 })), memberID: uint64, alarm: enumOf('NONE', 'NOSPACE', 'CORRUPT') })),
    unaryCall('Maintenance', 'MoveLeader', fc.record({ targetID: uint64 })),
    unaryCall('Cluster', 'MemberList', fc.constant({})),
    unaryCall('Cluster', 'MemberAdd', fc.record({ peerURLs: peerUrls, isLearner: fc.constant(true) })),
    unaryCall('Cluster', 'MemberRemove', fc.record({ ID: otherId })),
    unaryCall('Cluster', 'MemberUpdate', fc.record({ ID: otherId, peerURLs: peerUrls })),
    unaryCall('Cluster', 'MemberPromote', fc.record({ ID: otherId })),
    unaryCall('Auth', 'UserAdd', fc.record({ name, password: fc.string({ maxLength: 20 }), options: fc.record({ no_password: fc.boolean() }) })),
    unaryCall('Auth', 'UserGet', fc.record({ name })),
    unaryCall('Auth', 'UserDelete', fc.record({ name })),
    unaryCall('Auth', 'UserChangePassword', fc.record({ name, password: fc.string({ maxLength: 20 }) })),
    unaryCall('Auth', 'UserGrantRole', fc.record({ user: name, role: name })),
    unaryCall('Auth', 'UserRevokeRole', fc.record({ name, role: name })),
    unaryCall('Auth', 'RoleAdd', fc.record({ name })),
    unaryCall('Auth', 'RoleGet', fc.record({ role: name })),
    unaryCall('Auth', 'RoleGrantPermission', fc.record({ name, perm })),
    unaryCall('Auth', 'RoleRevokePermission', fc.record({ role: name, key: keyBytes, range_end: rangeEnd })),
    unaryCall('Auth', 'UserList', fc.constant({})),
    unaryCall('Auth', 'AuthDisable', fc.constant({})),
    unaryCall('Auth', 'Authenticate', fc.record({ name, password: fc.string({ maxLength: 20 }) })),
  );
}

describe('generated requests of every type', () => {
  test('each gets an etcd answer in bounded time, none leaks an exception, and the member keeps serving', async (t) => {
    const clients = clientsFor(concord.clientAddresses[0]!);
    const codes = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(callArbitrary(concord.memberId.toString()), { minLength: 1, maxLength: 6 }), async (calls) => {
          for (const call of calls) {
            const outcome = call.kind === 'unary'
              ? await unary(clients, call.service, call.method, call.request)
              : await firstStreamAnswer(clients, call.service, call.method, call.requests);
            const label = `${call.service}.${call.method}`;
            assert.doesNotMatch(outcome, LEAKED_EXCEPTION, `${label}: ${outcome}`);
            // DEADLINE_EXCEEDED (4) from our own deadline would be a hang; UNAVAILABLE (14) a lost connection or leader.
            assert.doesNotMatch(outcome, /^(4|14) /, `${label}: ${outcome}`);
            const code = outcome.split(' ', 1)[0]!;
            codes.set(`${label} ${code}`, (codes.get(`${label} ${code}`) ?? 0) + 1);
          }
          await assertServing(clients, calls.map((call) => `${call.service}.${call.method}`).join(', '));
        }),
        { numRuns: fuzzRuns(120) },
      );
    } finally {
      closeClients(clients);
    }
    const calls = [...codes.values()].reduce((sum, count) => sum + count, 0);
    const succeeded = [...codes].filter(([label]) => label.endsWith(' ok')).reduce((sum, [, count]) => sum + count, 0);
    t.diagnostic(`generated requests: ${calls} (${succeeded} ok, the rest etcd errors) over ${new Set([...codes.keys()].map((label) => label.split(' ')[0])).size} methods`);
  });
});
