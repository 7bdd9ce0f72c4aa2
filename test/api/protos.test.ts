// Our copy of etcd's v3.4 wire contract: it loads, it keeps 64-bit integers exact, and a real etcd
// understands requests built from it and answers in a way it decodes correctly, which holds only
// if our field numbers and types are etcd's.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { credentials, type ClientReadableStream, type ClientDuplexStream, type ServiceClientConstructor } from '@grpc/grpc-js';
import {
  ETCD_SERVICE_NAMES,
  int64FromWire,
  loadEtcdProtos,
  type EtcdServiceName,
  type KeyValue,
  type LeaseGrantResponse,
  type PutResponse,
  type RangeResponse,
  type ResponseHeader,
  type SnapshotResponse,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type WatchResponse,
} from '../../src/api/etcd/proto-loader.ts';
import { startEtcd, type EtcdMember } from '../compat/etcd-process.ts';
import { parseJsonExact, runEtcdctl } from '../compat/etcdctl.ts';

type ServiceClient = InstanceType<ServiceClientConstructor>;

const protos = loadEtcdProtos();
const RPC_DEADLINE_MS = 5_000;

const EXPECTED_METHODS: Record<EtcdServiceName, string[]> = {
  KV: ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'],
  Watch: ['Watch'],
  Lease: ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases'],
  Cluster: ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote'],
  Maintenance: ['Alarm', 'Status', 'Defragment', 'Hash', 'HashKV', 'Snapshot', 'MoveLeader'],
  Auth: [
    'AuthEnable', 'AuthDisable', 'Authenticate', 'UserAdd', 'UserGet', 'UserList', 'UserDelete', 'UserChangePassword',
    'UserGrantRole', 'UserRevokeRole', 'RoleAdd', 'RoleGet', 'RoleList', 'RoleDelete', 'RoleGrantPermission', 'RoleRevokePermission',
  ],
  Election: ['Campaign', 'Proclaim', 'Leader', 'Observe', 'Resign'],
  Lock: ['Lock', 'Unlock'],
};

describe('loading the protos', () => {
  test('every service loads with its methods and gRPC paths', () => {
    for (const [name, fullName] of Object.entries(ETCD_SERVICE_NAMES) as [EtcdServiceName, string][]) {
      const service = protos.services[name];
      assert.deepEqual(Object.keys(service).sort(), [...EXPECTED_METHODS[name]].sort(), name);
      for (const method of EXPECTED_METHODS[name]) assert.equal(service[method]!.path, `/${fullName}/${method}`);
      assert.equal(protos.clients[name].service, service);
    }
  });

  test('streaming shapes match etcd', () => {
    const streaming = (name: EtcdServiceName, method: string) => {
      const definition = protos.services[name][method]!;
      return [definition.requestStream, definition.responseStream];
    };
    assert.deepEqual(streaming('Watch', 'Watch'), [true, true]);
    assert.deepEqual(streaming('Lease', 'LeaseKeepAlive'), [true, true]);
    assert.deepEqual(streaming('Maintenance', 'Snapshot'), [false, true]);
    assert.deepEqual(streaming('Election', 'Observe'), [false, true]);
    assert.deepEqual(streaming('KV', 'Range'), [false, false]);
  });

  test('an unknown message name is a clear error', () => {
    assert.throws(() => protos.messageType('etcdserverpb.NoSuchThing'), /no message type named 'etcdserverpb.NoSuchThing'/);
  });
});

describe('encoding and decoding', () => {
  const aboveTwoTo53 = 2n ** 53n + 1n;

  test('ResponseHeader keeps uint64 and int64 values above 2^53 exact', () => {
    const codec = protos.messageType<ResponseHeader>('etcdserverpb.ResponseHeader');
    const decoded = codec.deserialize(
      codec.serialize({ cluster_id: 2n ** 64n - 1n, member_id: '14841639068965178418', revision: aboveTwoTo53, raft_term: 3 }),
    );
    assert.deepEqual(decoded, { cluster_id: '18446744073709551615', member_id: '14841639068965178418', revision: '9007199254740993', raft_term: '3' });
    assert.equal(int64FromWire(decoded.cluster_id), 2n ** 64n - 1n);
  });

  test('KeyValue keeps binary bytes and a large lease ID', () => {
    const codec = protos.messageType<KeyValue>('mvccpb.KeyValue');
    const key = Buffer.from([0x00, 0xff, 0x80, 0x61]);
    const encoded = codec.serialize({ key, value: Buffer.from('v'), create_revision: 5, mod_revision: aboveTwoTo53, version: 2, lease: 2324035615148564496n });
    const decoded = codec.deserialize(encoded);
    assert.ok(decoded.key.equals(key));
    assert.equal(decoded.value.toString(), 'v');
    assert.equal(decoded.mod_revision, '9007199254740993');
    assert.equal(decoded.lease, '2324035615148564496');
  });

  test('negative int64 values survive (an expired lease reports TTL -1)', () => {
    const method = protos.services.Lease['LeaseTimeToLive']!;
    const decoded = method.responseDeserialize(method.responseSerialize({ ID: 7n, TTL: -1n })) as { TTL: string };
    assert.equal(decoded.TTL, '-1');
  });

  test('zero values are filled in for fields the sender omitted', () => {
    const method = protos.services.KV['Range']!;
    assert.deepEqual(method.responseDeserialize(Buffer.alloc(0)), { header: null, kvs: [], more: false, count: '0' });
  });

  test('a transaction keeps its oneofs and enums by name', () => {
    const method = protos.services.KV['Txn']!;
    const request: TxnRequest<bigint> = {
      compare: [
        { result: 'LESS', target: 'MOD', key: Buffer.from('k'), target_union: 'mod_revision', mod_revision: aboveTwoTo53, range_end: Buffer.alloc(0) },
      ],
      success: [{ request_put: { key: Buffer.from('k'), value: Buffer.from('v'), lease: 0n, prev_kv: true, ignore_value: false, ignore_lease: false } }],
      failure: [],
    };
    const decoded = method.requestDeserialize(method.requestSerialize(request)) as TxnRequest;
    assert.equal(decoded.compare[0]!.result, 'LESS');
    assert.equal(decoded.compare[0]!.target_union, 'mod_revision');
    assert.equal(decoded.compare[0]!.mod_revision, '9007199254740993');
    assert.equal(decoded.success[0]!.request, 'request_put');
    assert.equal(decoded.success[0]!.request_put!.prev_kv, true);
  });

  test('watch events decode their type by name', () => {
    const codec = protos.messageType<WatchResponse>('etcdserverpb.WatchResponse');
    const decoded = codec.deserialize(codec.serialize({ watch_id: 1, events: [{ type: 'DELETE', kv: { key: Buffer.from('k'), mod_revision: 9 } }] }));
    assert.equal(decoded.events[0]!.type, 'DELETE');
    assert.equal(decoded.events[0]!.prev_kv, null);
  });

  test('a bigint that fits no 64-bit field is refused rather than wrapped', () => {
    const codec = protos.messageType('etcdserverpb.ResponseHeader');
    assert.throws(() => codec.serialize({ revision: 2n ** 64n }), /does not fit a 64-bit protobuf field/);
    assert.throws(() => codec.serialize({ revision: -(2n ** 63n) - 1n }), /does not fit a 64-bit protobuf field/);
  });
});

describe('wire compatibility with a real etcd', () => {
  let member: EtcdMember;
  const clients: ServiceClient[] = [];

  function client(name: EtcdServiceName): ServiceClient {
    const created = new protos.clients[name](member.endpoint, credentials.createInsecure());
    clients.push(created);
    return created;
  }

  function unary<Response>(target: ServiceClient, method: string, request: object): Promise<Response> {
    return new Promise((resolve, reject) => {
      const call = target[method] as (request: object, options: { deadline: Date }, callback: (error: Error | null, response: Response) => void) => void;
      call.call(target, request, { deadline: new Date(Date.now() + RPC_DEADLINE_MS) }, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  /** What etcdctl (an independent client) reports, parsed with 64-bit integers as bigint. */
  async function etcdctlJson(args: string[]): Promise<Record<string, unknown>> {
    const outcome = await runEtcdctl({ args: [...args, '-w', 'json'], endpoint: member.endpoint });
    assert.equal(outcome.exitCode, 0, outcome.stderr);
    return parseJsonExact(outcome.stdout) as Record<string, unknown>;
  }

  before(async () => {
    member = await startEtcd();
  });

  after(async () => {
    for (const created of clients) created.close();
    await member?.stop();
  });

  test('KV.Put and KV.Range round-trip through etcd; IDs match what etcdctl reports', async () => {
    const kv = client('KV');
    const put = await unary<PutResponse>(kv, 'Put', { key: Buffer.from('wire/key'), value: Buffer.from([0x00, 0xfe, 0x41]) });
    assert.equal(put.header!.revision, '2');
    const range = await unary<RangeResponse>(kv, 'Range', { key: Buffer.from('wire/'), range_end: Buffer.from('wire0') });
    assert.equal(range.header!.revision, '2');
    assert.equal(range.count, '1');
    assert.equal(range.kvs[0]!.key.toString(), 'wire/key');
    assert.ok(range.kvs[0]!.value.equals(Buffer.from([0x00, 0xfe, 0x41])));
    assert.equal(range.kvs[0]!.create_revision, '2');
    assert.equal(range.kvs[0]!.version, '1');

    const members = (await etcdctlJson(['member', 'list'])) as { header: { cluster_id: bigint }; members: { ID: bigint }[] };
    assert.equal(int64FromWire(range.header!.cluster_id), members.header.cluster_id);
    assert.equal(int64FromWire(range.header!.member_id), members.members[0]!.ID);
  });

  test('Maintenance.Status decodes version, leader and exact 64-bit IDs', async () => {
    const status = await unary<StatusResponse>(client('Maintenance'), 'Status', {});
    assert.equal(status.version, '3.4.23');
    assert.equal(status.leader, status.header!.member_id);
    assert.ok(int64FromWire(status.dbSize) > 0n);
    assert.ok(int64FromWire(status.raftIndex) > 0n);
    const [fromEtcdctl] = (await etcdctlJson(['endpoint', 'status'])) as unknown as [{ Status: { header: { cluster_id: bigint; member_id: bigint } } }];
    assert.equal(int64FromWire(status.header!.cluster_id), fromEtcdctl.Status.header.cluster_id);
    assert.equal(int64FromWire(status.header!.member_id), fromEtcdctl.Status.header.member_id);
  });

  test('a client-chosen lease ID above 2^53 reaches etcd exactly', async () => {
    const wantedId = 2n ** 62n + 12_345n;
    const granted = await unary<LeaseGrantResponse>(client('Lease'), 'LeaseGrant', { ID: wantedId, TTL: 600 });
    assert.equal(granted.ID, wantedId.toString());
    assert.equal(granted.TTL, '600');
    const listed = (await etcdctlJson(['lease', 'list'])) as { leases: { id: bigint }[] };
    assert.deepEqual(
      listed.leases.map((lease) => lease.id),
      [wantedId],
    );
  });

  test('KV.Txn with a compare and both branches', async () => {
    const kv = client('KV');
    const response = await unary<TxnResponse>(kv, 'Txn', {
      compare: [{ key: Buffer.from('wire/key'), target: 'VERSION', result: 'EQUAL', version: 1 }],
      success: [{ request_put: { key: Buffer.from('wire/txn'), value: Buffer.from('yes') } }, { request_range: { key: Buffer.from('wire/txn') } }],
      failure: [{ request_delete_range: { key: Buffer.from('wire/key') } }],
    });
    assert.equal(response.succeeded, true);
    assert.deepEqual(
      response.responses.map((op) => op.response),
      ['response_put', 'response_range'],
    );
    assert.equal(response.responses[1]!.response_range!.kvs[0]!.value.toString(), 'yes');
  });

  test('Watch streams history from a revision', async () => {
    const watch = client('Watch');
    const stream = (watch['Watch'] as () => ClientDuplexStream<object, WatchResponse>).call(watch);
    const events: WatchResponse['events'] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no watch events within the deadline')), RPC_DEADLINE_MS);
        stream.on('error', reject);
        stream.on('data', (response: WatchResponse) => {
          events.push(...response.events);
          if (events.length >= 2) {
            clearTimeout(timer);
            resolve();
          }
        });
        stream.write({ create_request: { key: Buffer.from('wire/'), range_end: Buffer.from('wire0'), start_revision: 1, prev_kv: true } });
      });
    } finally {
      stream.cancel();
    }
    assert.deepEqual(
      events.map((event) => [event.type, event.kv!.key.toString(), event.kv!.mod_revision]),
      [
        ['PUT', 'wire/key', '2'],
        ['PUT', 'wire/txn', '3'],
      ],
    );
  });

  test('Maintenance.Snapshot streams the database, then its SHA-256', async () => {
    const maintenance = client('Maintenance');
    const stream = (maintenance['Snapshot'] as (request: object) => ClientReadableStream<SnapshotResponse>).call(maintenance, {});
    const chunks: SnapshotResponse[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('snapshot did not finish within the deadline')), RPC_DEADLINE_MS);
      stream.on('data', (chunk: SnapshotResponse) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    // etcd sends the database file, each chunk saying how many database bytes follow it, and then
    // one more chunk: the SHA-256 of the database, which `etcdctl snapshot save` verifies.
    const trailer = chunks.at(-1)!;
    const database = Buffer.concat(chunks.slice(0, -1).map((chunk) => chunk.blob));
    assert.ok(database.length > 0);
    assert.equal(trailer.remaining_bytes, '0');
    assert.ok(trailer.blob.equals(createHash('sha256').update(database).digest()));
    assert.equal(int64FromWire(chunks[0]!.remaining_bytes) + BigInt(chunks[0]!.blob.length), BigInt(database.length));
  });
});
