// The Cluster and Maintenance services on a real member in this process, driven by the real
// etcdctl (as operators use them) and by a gRPC client built from our protos (for what etcdctl
// does not expose: the raw Snapshot stream, Alarm ACTIVATE, Hash, MoveLeader).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { EtcdServiceName, SnapshotResponse, StatusResponse } from '../../src/api/etcd/proto-loader.ts';
import { SNAPSHOT_CHUNK_BYTES } from '../../src/api/etcd/maintenance-service.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { parseJsonExact, runEtcdctl } from '../compat/etcdctl.ts';
import { etcdctlOk, startTestMember, useTestDataRoot } from '../support/store-member.ts';

/** Bound on any one gRPC call in these tests. */
const CALL_TIMEOUT_MS = 5_000;

const dataRoot = useTestDataRoot('concord-maintenance-');

const startMember = (name: string, extra: Record<string, string> = {}): Promise<StoreServer> => startTestMember(dataRoot, name, extra);
const etcdctl = (server: StoreServer, ...args: string[]): Promise<string> => etcdctlOk(server.clientAddresses[0]!, args, dataRoot.dir);

async function etcdctlError(server: StoreServer, ...args: string[]): Promise<string> {
  const outcome = await runEtcdctl({ args, endpoint: server.clientAddresses[0]!, cwd: dataRoot.dir });
  assert.notEqual(outcome.exitCode, 0, `etcdctl ${args.join(' ')} should have failed`);
  return outcome.stderr;
}

function client(server: StoreServer, service: EtcdServiceName): Client & Record<string, (...args: unknown[]) => unknown> {
  const Constructor = loadEtcdProtos().clients[service];
  return new Constructor(server.clientAddresses[0]!, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
}

function call<Response>(target: Record<string, (...args: unknown[]) => unknown>, method: string, request: object): Promise<Response> {
  return new Promise((resolve, reject) => {
    target[method]!(request, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error: ServiceError | null, response: Response) => {
      if (error) reject(error);
      else resolve(response);
    });
  });
}

function snapshotMessages(maintenance: Record<string, (...args: unknown[]) => unknown>): Promise<SnapshotResponse[]> {
  return new Promise((resolve, reject) => {
    const messages: SnapshotResponse[] = [];
    const stream = maintenance.Snapshot!({}, { deadline: Date.now() + CALL_TIMEOUT_MS }) as NodeJS.EventEmitter;
    stream.on('data', (message: SnapshotResponse) => messages.push(message));
    stream.on('end', () => resolve(messages));
    stream.on('error', reject);
  });
}

test('etcdctl endpoint status and member list describe the member', async () => {
  const server = await startMember('status');
  try {
    await etcdctl(server, 'put', 'k', 'v');
    const [entry] = parseJsonExact(await etcdctl(server, 'endpoint', 'status', '-w', 'json')) as { Status: Record<string, unknown> & { header: Record<string, unknown> } }[];
    const status = entry!.Status;
    assert.equal(String(status.version), '3.4.23', 'the etcd API level Concord is checked against');
    assert.equal(BigInt(status.leader as bigint), server.memberId, 'a single member leads itself');
    assert.equal(status.header.revision, 2);
    assert.ok(Number(status.dbSize) > 0 && status.dbSize === status.dbSizeInUse, 'an in-memory store has no free pages');
    assert.ok(Number(status.raftAppliedIndex) >= 2 && Number(status.raftIndex) >= Number(status.raftAppliedIndex));
    assert.equal(status.errors, undefined, 'no alarms, a known leader: no errors (etcdctl omits the empty list)');

    const members = parseJsonExact(await etcdctl(server, 'member', 'list', '-w', 'json')) as { header: Record<string, unknown>; members: Record<string, unknown>[] };
    assert.equal(members.members.length, 1);
    assert.equal(BigInt(members.members[0]!.ID as bigint), server.memberId);
    assert.equal(members.members[0]!.name, 'status');
    assert.deepEqual(members.members[0]!.peerURLs, [`http://${server.peerAddresses[0]}`], 'an advertised port 0 is published as the bound port');
    assert.equal(members.header.revision, undefined, 'as etcd 3.4, the member list header carries no revision');
    // A learner can be added to (and removed from) a single member; the last voter cannot go.
    const added = await etcdctl(server, 'member', 'add', 'other', '--peer-urls=http://127.0.0.1:2390', '--learner');
    assert.match(added, /Member\s+[0-9a-f]+ added to cluster/);
    const learnerId = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
    assert.match(await etcdctlError(server, 'member', 'add', 'third', '--peer-urls=http://127.0.0.1:2391', '--learner'), /too many learner members in cluster/);
    assert.match(await etcdctlError(server, 'member', 'add', 'dup', '--peer-urls=http://127.0.0.1:2390'), /Peer URLs already exists/);
    assert.match(await etcdctlError(server, 'member', 'promote', learnerId), /can only promote a learner member which is in sync with leader/);
    assert.match(await etcdctl(server, 'member', 'remove', learnerId), /removed from cluster/);
    assert.match(await etcdctlError(server, 'member', 'remove', learnerId), /member not found/);
    assert.match(await etcdctlError(server, 'member', 'remove', server.memberId.toString(16)), /re-configuration failed due to not enough started members/);
  } finally {
    await server.stop();
  }
});

test('alarms: raised by the quota, listed by etcdctl and Status, disarmed by etcdctl', async () => {
  const server = await startMember('alarms', { quotaBackendBytes: '8192' });
  const maintenance = client(server, 'Maintenance');
  try {
    assert.equal(await etcdctl(server, 'alarm', 'list'), '');
    let failure = '';
    for (let i = 0; i < 20 && failure === ''; i++) {
      const outcome = await runEtcdctl({ args: ['put', `k${i}`, 'x'.repeat(1000)], endpoint: server.clientAddresses[0]! });
      if (outcome.exitCode !== 0) failure = outcome.stderr;
    }
    assert.match(failure, /etcdserver: mvcc: database space exceeded/);
    // etcdctl prints alarms in Go's compact protobuf text, which leaves out member 0.
    assert.equal(await etcdctl(server, 'alarm', 'list'), 'alarm:NOSPACE \n');
    const status = await call<StatusResponse>(maintenance, 'Status', {});
    assert.deepEqual(status.errors, ['alarm:NOSPACE '], 'as etcd prints an alarm of member 0');

    // An operator's own alarm, through the API: etcd answers with the alarm and no header.
    const activated = await call<{ header: unknown; alarms: unknown[] }>(maintenance, 'Alarm', { action: 'ACTIVATE', memberID: '12345', alarm: 'CORRUPT' });
    assert.deepEqual(activated, { header: null, alarms: [{ memberID: '12345', alarm: 'CORRUPT' }] });
    const onlyCorrupt = await call<{ alarms: unknown[] }>(maintenance, 'Alarm', { action: 'GET', alarm: 'CORRUPT' });
    assert.deepEqual(onlyCorrupt.alarms, [{ memberID: '12345', alarm: 'CORRUPT' }]);
    assert.deepEqual((await call<StatusResponse>(maintenance, 'Status', {})).errors, ['alarm:NOSPACE ', 'memberID:12345 alarm:CORRUPT ']);

    assert.equal(await etcdctl(server, 'alarm', 'disarm'), 'alarm:NOSPACE \nmemberID:12345 alarm:CORRUPT \n');
    assert.equal(await etcdctl(server, 'alarm', 'list'), '');
    const again = await call<{ alarms: unknown[] }>(maintenance, 'Alarm', { action: 'DEACTIVATE', memberID: '12345', alarm: 'CORRUPT' });
    assert.deepEqual(again.alarms, [], 'deactivating an inactive alarm answers with none');
    await etcdctl(server, 'del', 'k', '--prefix');
    assert.equal((await etcdctl(server, 'get', 'k0')).trim(), '', 'reads and deletes work after disarming');
  } finally {
    maintenance.close();
    await server.stop();
  }
});

test('HashKV is equal for identical histories and differs otherwise; Hash, Defragment and MoveLeader answer', async () => {
  const [first, second, third] = [await startMember('hash-1'), await startMember('hash-2'), await startMember('hash-3')];
  const clients = [first, second, third].map((server) => client(server, 'Maintenance'));
  try {
    for (const server of [first, second, third]) {
      await etcdctl(server, 'put', 'a', '1');
      await etcdctl(server, 'put', 'b', '2');
    }
    await etcdctl(third, 'put', 'a', 'different');
    type HashKv = { header: { revision: string }; hash: number; compact_revision: string };
    const hashes = await Promise.all(clients.map((maintenance) => call<HashKv>(maintenance, 'HashKV', { revision: '3' })));
    assert.equal(hashes[0]!.hash, hashes[1]!.hash, 'same writes, same history, same hash');
    assert.equal(hashes[0]!.compact_revision, '-1', 'etcd reports -1 when nothing was compacted');
    assert.equal(hashes[2]!.hash, hashes[0]!.hash, 'up to revision 3 the third history is the same too');
    assert.notEqual((await call<HashKv>(clients[2]!, 'HashKV', { revision: '0' })).hash, hashes[0]!.hash, 'its revision 4 is not');
    await assert.rejects(call(clients[0]!, 'HashKV', { revision: '100' }), /required revision is a future revision/);
    await etcdctl(first, 'compact', '2');
    assert.equal((await call<HashKv>(clients[0]!, 'HashKV', { revision: '0' })).compact_revision, '2');
    const hashJson = parseJsonExact(await etcdctl(second, 'endpoint', 'hashkv', '-w', 'json')) as { HashKV: { hash: number } }[];
    assert.equal(hashJson[0]!.HashKV.hash, hashes[1]!.hash, 'etcdctl endpoint hashkv reads the same hash');

    const hash = await call<{ header: { revision: string }; hash: number }>(clients[0]!, 'Hash', {});
    assert.equal(hash.header.revision, '3');
    assert.ok(Number.isInteger(hash.hash));

    assert.match(await etcdctl(first, 'defrag'), /Finished defragmenting etcd member/);
    assert.match(await etcdctl(first, 'move-leader', first.memberId.toString(16)), /Leadership transferred/);
    await assert.rejects(call(clients[0]!, 'MoveLeader', { targetID: '42' }), /etcdserver: bad leader transferee/);
  } finally {
    for (const maintenance of clients) maintenance.close();
    await Promise.all([first.stop(), second.stop(), third.stop()]);
  }
});

test('Snapshot streams 32 KiB chunks and a SHA-256 message; etcdctl snapshot save accepts the stream', async () => {
  const server = await startMember('snapshot');
  const maintenance = client(server, 'Maintenance');
  try {
    for (let i = 0; i < 40; i++) await etcdctl(server, 'put', `key-${i}`, `${i}`.padEnd(2048, '.'));
    const messages = await snapshotMessages(maintenance);
    const data = messages.slice(0, -1);
    const checksum = messages.at(-1)!;
    assert.ok(data.length >= 3, `about 80 KiB come in several chunks (got ${data.length})`);
    assert.ok(data.slice(0, -1).every((message) => message.blob.length === SNAPSHOT_CHUNK_BYTES));
    const body = Buffer.concat(data.map((message) => message.blob));
    let remaining = body.length;
    for (const message of data) {
      remaining -= message.blob.length;
      assert.equal(message.remaining_bytes, String(remaining), 'each chunk says how many bytes are still to come');
    }
    assert.equal(body.length % 512, 0, 'the body is whole 512-byte pages, as etcdctl expects of a bbolt file');
    assert.equal(checksum.remaining_bytes, '0');
    assert.deepEqual(checksum.blob, createHash('sha256').update(body).digest(), 'the last message is the SHA-256 of the body');
    assert.equal(body.subarray(0, 4).toString(), 'CSAV');

    assert.match(await etcdctl(server, 'snapshot', 'save', 'saved.db'), /Snapshot saved at saved\.db/);
    const file = readFileSync(join(dataRoot.dir, 'saved.db'));
    assert.equal(file.length % 512, 32, 'etcdctl kept the checksum after the pages');
    assert.deepEqual(file.subarray(-32), createHash('sha256').update(file.subarray(0, -32)).digest());
    // etcdctl reads a snapshot file as a bbolt database: Concord's is not one (concord snapshot restore reads it).
    const status = await runEtcdctl({ args: ['snapshot', 'status', 'saved.db'], cwd: dataRoot.dir });
    assert.notEqual(status.exitCode, 0);
  } finally {
    maintenance.close();
    await server.stop();
  }
});
