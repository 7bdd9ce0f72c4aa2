// The Auth service and auth in every other service, on a real Concord member in this process, with
// raw gRPC calls and the etcd3 npm client. The same scripted calls run against a real etcd 3.4 and
// must give the same gRPC status and text (or both succeed), except where Concord differs on
// purpose (docs/store.md, "Authentication"); then what only Concord can show: tokens that expire,
// secrets that reach neither the logs nor the disk, hostile input.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { Etcd3, EtcdPermissionDeniedError } from 'etcd3';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { WatchResponse } from '../../src/api/etcd/proto-loader.ts';
import { WATCH_PERMISSION_DENIED_REASON } from '../../src/api/etcd/watch-service.ts';
import type { StoreServer } from '../../src/server/store-server.ts';
import { startEtcd } from '../compat/etcd-process.ts';
import type { EtcdMember } from '../compat/etcd-process.ts';
import { startTestMember, useTestDataRoot, waitFor } from '../support/store-member.ts';

const dataRoot = useTestDataRoot('concord-auth-');
const protos = loadEtcdProtos();
type ServiceName = 'KV' | 'Auth' | 'Lease' | 'Maintenance' | 'Cluster' | 'Watch';
type Clients = Record<ServiceName, Record<string, (request: object, metadata: Metadata, callback: (error: ServiceError | null, response: unknown) => void) => void>>;

function clientsFor(endpoint: string): Clients {
  const clients = {} as Clients;
  for (const name of ['KV', 'Auth', 'Lease', 'Maintenance', 'Cluster', 'Watch'] as const) {
    clients[name] = new protos.clients[name](endpoint, credentials.createInsecure()) as unknown as Clients[ServiceName];
  }
  return clients;
}

function closeClients(clients: Clients): void {
  for (const client of Object.values(clients)) (client as unknown as { close(): void }).close();
}

type Outcome = { ok: true; response: Record<string, unknown> } | { ok: false; code: number; details: string };

function call(clients: Clients, service: ServiceName, method: string, request: object, token?: string): Promise<Outcome> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('token', token);
  return new Promise((resolve) => {
    clients[service][method]!(request, metadata, (error, response) => {
      resolve(error ? { ok: false, code: error.code, details: error.details } : { ok: true, response: response as Record<string, unknown> });
    });
  });
}

async function must(clients: Clients, service: ServiceName, method: string, request: object, token?: string): Promise<Record<string, unknown>> {
  const outcome = await call(clients, service, method, request, token);
  assert.ok(outcome.ok, `${service}.${method} failed: ${outcome.ok ? '' : outcome.details}`);
  return outcome.response;
}

async function tokenOf(clients: Clients, name: string, password: string): Promise<string> {
  return (await must(clients, 'Auth', 'Authenticate', { name, password })).token as string;
}

const key = (text: string) => Buffer.from(text);
const READ = 'READ';
const READWRITE = 'READWRITE';

/** root; alice (role reader: read foo, readwrite [r/1, r/5)); cn, a user without password; auth enabled. */
async function setUp(clients: Clients): Promise<void> {
  await must(clients, 'Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
  await must(clients, 'Auth', 'UserAdd', { name: 'alice', password: 'alicepw' });
  await must(clients, 'Auth', 'UserAdd', { name: 'cn', options: { no_password: true } });
  await must(clients, 'Auth', 'RoleAdd', { name: 'reader' });
  await must(clients, 'Auth', 'RoleGrantPermission', { name: 'reader', perm: { permType: READ, key: key('foo') } });
  await must(clients, 'Auth', 'RoleGrantPermission', { name: 'reader', perm: { permType: READWRITE, key: key('r/1'), range_end: key('r/5') } });
  await must(clients, 'Auth', 'UserGrantRole', { user: 'alice', role: 'reader' });
  await must(clients, 'Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  await must(clients, 'Auth', 'AuthEnable', {});
}

/**
 * The scripted calls, in order, each recorded as 'ok' or its status and text. Names on the left
 * say what each step shows; the step list is the comparison.
 */
async function script(clients: Clients): Promise<[string, string][]> {
  const record: [string, string][] = [];
  const step = async (name: string, outcome: Promise<Outcome>) => {
    const result = await outcome;
    record.push([name, result.ok ? 'ok' : `${result.code} ${result.details}`]);
    return result;
  };
  const authenticate = (name: string, password: string) => step(`authenticate ${name}`, call(clients, 'Auth', 'Authenticate', { name, password }));
  const token = async (name: string, password: string) => {
    const outcome = await authenticate(name, password);
    return outcome.ok ? (outcome.response.token as string) : 'no-token';
  };
  await step('authenticate while auth is off', call(clients, 'Auth', 'Authenticate', { name: 'root', password: 'rootpw' }));
  await setUp(clients);
  const root = await token('root', 'rootpw');
  let alice = await token('alice', 'alicepw');
  await authenticate('alice', 'wrong');
  await authenticate('nobody', 'x');
  await authenticate('cn', '');
  await step('auth enable again, as root', call(clients, 'Auth', 'AuthEnable', {}, root));
  await step('auth enable as alice', call(clients, 'Auth', 'AuthEnable', {}, alice));
  await step('auth enable without a user', call(clients, 'Auth', 'AuthEnable', {}));
  await step('user add with an empty name', call(clients, 'Auth', 'UserAdd', { name: '' }, root));
  await step('user add that exists', call(clients, 'Auth', 'UserAdd', { name: 'alice', password: 'x' }, root));
  await step('role add with an empty name', call(clients, 'Auth', 'RoleAdd', { name: '' }, root));
  await step('grant to a missing role', call(clients, 'Auth', 'RoleGrantPermission', { name: 'nosuch', perm: { permType: READ, key: key('x') } }, root));
  await step('grant a missing role', call(clients, 'Auth', 'UserGrantRole', { user: 'alice', role: 'nosuch' }, root));
  await step('delete the root user', call(clients, 'Auth', 'UserDelete', { name: 'root' }, root));
  await step('revoke root from root', call(clients, 'Auth', 'UserRevokeRole', { name: 'root', role: 'root' }, root));
  await step('user get self', call(clients, 'Auth', 'UserGet', { name: 'alice' }, alice));
  await step('user get other', call(clients, 'Auth', 'UserGet', { name: 'root' }, alice));
  await step('user get without a user', call(clients, 'Auth', 'UserGet', { name: 'alice' }));
  await step('role get held', call(clients, 'Auth', 'RoleGet', { role: 'reader' }, alice));
  await step('user list as alice', call(clients, 'Auth', 'UserList', {}, alice));
  await step('role list as root', call(clients, 'Auth', 'RoleList', {}, root));
  await step('a made-up token', call(clients, 'KV', 'Put', { key: key('r/1'), value: key('v') }, 'garbage.1'));
  await step('a made-up token on hashkv', call(clients, 'Maintenance', 'HashKV', {}, 'garbage.1'));
  await step('put without a user', call(clients, 'KV', 'Put', { key: key('r/1'), value: key('v') }));
  await step('put allowed', call(clients, 'KV', 'Put', { key: key('r/1'), value: key('v'), prev_kv: true }, alice));
  await step('put denied', call(clients, 'KV', 'Put', { key: key('foo'), value: key('v') }, alice));
  await step('put by root', call(clients, 'KV', 'Put', { key: key('secret'), value: key('s') }, root));
  await step('get allowed', call(clients, 'KV', 'Range', { key: key('foo') }, alice));
  await step('get denied', call(clients, 'KV', 'Range', { key: key('secret') }, alice));
  await step('get a range partly denied', call(clients, 'KV', 'Range', { key: key('r/1'), range_end: key('r/6') }, alice));
  await step('get without a key, denied first?', call(clients, 'KV', 'Range', { key: Buffer.alloc(0) }, alice));
  await step('delete allowed', call(clients, 'KV', 'DeleteRange', { key: key('r/1'), range_end: key('r/5'), prev_kv: true }, alice));
  await step('delete denied', call(clients, 'KV', 'DeleteRange', { key: key('r/'), range_end: key('r0') }, alice));
  const compare = (name: string) => ({ result: 'EQUAL', target: 'VERSION', key: key(name), version: 0 });
  await step('txn with a denied compare', call(clients, 'KV', 'Txn', { compare: [compare('secret')], success: [{ request_range: { key: key('foo') } }] }, alice));
  await step('txn with a denied branch', call(clients, 'KV', 'Txn', { compare: [compare('foo')], failure: [{ request_put: { key: key('secret'), value: key('x') } }] }, alice));
  await step('txn allowed', call(clients, 'KV', 'Txn', { compare: [compare('foo')], success: [{ request_put: { key: key('r/2'), value: key('x') } }] }, alice));
  await step('status without a user', call(clients, 'Maintenance', 'Status', {}));
  await step('alarm get without a user', call(clients, 'Maintenance', 'Alarm', { action: 'GET' }));
  await step('hashkv without a user', call(clients, 'Maintenance', 'HashKV', {}));
  await step('hashkv as alice', call(clients, 'Maintenance', 'HashKV', {}, alice));
  await step('defragment as alice', call(clients, 'Maintenance', 'Defragment', {}, alice));
  await step('defragment as root', call(clients, 'Maintenance', 'Defragment', {}, root));
  await step('member list without a user', call(clients, 'Cluster', 'MemberList', {}));
  await step('member add without a user', call(clients, 'Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:9'] }));
  await step('member add as alice', call(clients, 'Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:9'] }, alice));
  const lease = await step('lease grant without a user', call(clients, 'Lease', 'LeaseGrant', { TTL: 600 }));
  const leaseId = lease.ok ? lease.response.ID : '0';
  await step('lease list without a user', call(clients, 'Lease', 'LeaseLeases', {}));
  await step('put a key on that lease, as root', call(clients, 'KV', 'Put', { key: key('leased'), value: key('v'), lease: leaseId }, root));
  await step('lease revoke as alice', call(clients, 'Lease', 'LeaseRevoke', { ID: leaseId }, alice));
  await step('lease revoke without a user', call(clients, 'Lease', 'LeaseRevoke', { ID: leaseId }));
  const empty = await step('another lease', call(clients, 'Lease', 'LeaseGrant', { TTL: 600 }, alice));
  await step('lease revoke of a lease without keys, without a user', call(clients, 'Lease', 'LeaseRevoke', { ID: empty.ok ? empty.response.ID : '0' }));
  await step('lease time-to-live with keys, as alice', call(clients, 'Lease', 'LeaseTimeToLive', { ID: leaseId, keys: true }, alice));
  await step('lease time-to-live without keys, as alice', call(clients, 'Lease', 'LeaseTimeToLive', { ID: leaseId, keys: false }, alice));
  await step('lease revoke as root', call(clients, 'Lease', 'LeaseRevoke', { ID: leaseId }, root));
  await step('compact as alice', call(clients, 'KV', 'Compact', { revision: 2 }, alice));
  await step('compact without a user', call(clients, 'KV', 'Compact', { revision: 2 }));
  await step('disarm an alarm without a user', call(clients, 'Maintenance', 'Alarm', { action: 'DEACTIVATE', alarm: 'NOSPACE' }));
  await step('move leader without a user', call(clients, 'Maintenance', 'MoveLeader', { targetID: '1' }));
  await step('grant an inverted range', call(clients, 'Auth', 'RoleGrantPermission', { name: 'reader', perm: { permType: READ, key: key('z'), range_end: key('a') } }, root));
  await step('compact as root, past what alice compacted on etcd', call(clients, 'KV', 'Compact', { revision: 3 }, root));
  await step('password change as alice', call(clients, 'Auth', 'UserChangePassword', { name: 'alice', password: 'x' }, alice));
  await step('password change as root', call(clients, 'Auth', 'UserChangePassword', { name: 'alice', password: 'newpw' }, root));
  await step('the old token after a password change', call(clients, 'KV', 'Range', { key: key('foo') }, alice));
  await authenticate('alice', 'alicepw');
  alice = await token('alice', 'newpw');
  await step('the new token', call(clients, 'KV', 'Range', { key: key('foo') }, alice));
  await step('revoke the role alice holds', call(clients, 'Auth', 'UserRevokeRole', { name: 'alice', role: 'reader' }, root));
  await step('revoke it again', call(clients, 'Auth', 'UserRevokeRole', { name: 'alice', role: 'reader' }, root));
  await step('get after the revoke', call(clients, 'KV', 'Range', { key: key('foo') }, alice));
  await step('revoke a permission not granted', call(clients, 'Auth', 'RoleRevokePermission', { role: 'reader', key: key('nope') }, root));
  await step('revoke a permission', call(clients, 'Auth', 'RoleRevokePermission', { role: 'reader', key: key('foo') }, root));
  await step('delete a role', call(clients, 'Auth', 'RoleDelete', { role: 'reader' }, root));
  await step('delete alice', call(clients, 'Auth', 'UserDelete', { name: 'alice' }, root));
  await step('the token of a deleted user', call(clients, 'KV', 'Range', { key: key('foo') }, alice));
  await step('auth disable as root', call(clients, 'Auth', 'AuthDisable', {}, root));
  await step('a token after auth disable is ignored', call(clients, 'KV', 'Range', { key: key('foo') }, root));
  await step('auth disable again, without a user', call(clients, 'Auth', 'AuthDisable', {}));
  await step('re-enable', call(clients, 'Auth', 'AuthEnable', {}));
  await step('a token from before the disable', call(clients, 'KV', 'Range', { key: key('foo') }, root));
  return record;
}

/** Steps where Concord answers differently on purpose, with the reason (docs/store.md, "Authentication"). */
const DOCUMENTED_DIFFERENCES = new Map<string, string>([
  ['lease time-to-live with keys, as alice', 'the keys of a lease are shown only to who may read them (etcd 3.4.26, CVE-2023-32082); 3.4.23 shows them to anyone'],
  ['compact as alice', 'compaction destroys history: Concord asks for the root role; etcd 3.4 lets anyone compact'],
  ['compact without a user', 'as above'],
  ['disarm an alarm without a user', 'disarming NOSPACE or CORRUPT overrides a safety stop: Concord asks for the root role'],
  ['move leader without a user', 'moving leadership costs the cluster an election: Concord asks for the root role'],
  ['grant an inverted range', "a range that ends before it starts grants nothing: refused as etcd 3.5 refuses it; 3.4 stores it"],
]);

let etcd: EtcdMember | undefined;
let concord: StoreServer | undefined;
const logs: string[] = [];

describe('one etcd and one Concord member, with auth', () => {
  // Inside a describe, so that they stop before the file's data root is removed.
  before(async () => {
    etcd = await startEtcd();
    const keep = (line: string) => logs.push(line);
    concord = await startTestMember(dataRoot, 'auth-1', {}, { logger: { info: keep, warn: keep, error: keep } });
  });

  after(async () => {
    try {
      await concord?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  test('the scripted auth calls give the same status and text from Concord as from etcd 3.4', async () => {
    const expectedClients = clientsFor(etcd!.endpoint);
    const actualClients = clientsFor(concord!.clientAddresses[0]!);
    try {
      const [expected, actual] = await Promise.all([script(expectedClients), script(actualClients)]);
      assert.equal(actual.length, expected.length);
      const differences = expected
        .map(([step, outcome], i) => ({ step, expected: outcome, actual: actual[i]![1] }))
        .filter((d) => d.expected !== d.actual && !DOCUMENTED_DIFFERENCES.has(d.step));
      assert.deepEqual(differences, []);
      // The comparison has teeth: the script does get refusals, of several kinds.
      const refusals = new Set(expected.map(([, outcome]) => outcome).filter((outcome) => outcome !== 'ok'));
      assert.ok(refusals.size >= 10, [...refusals].join('\n'));
    } finally {
      closeClients(expectedClients);
      closeClients(actualClients);
    }
  });

  test('a snapshot stream needs the root role, refused with etcd\'s raw text on both', async () => {
    for (const endpoint of [etcd!.endpoint, concord!.clientAddresses[0]!]) {
      const clients = clientsFor(endpoint);
      try {
        const root = await tokenOf(clients, 'root', 'rootpw');
        await call(clients, 'Auth', 'UserAdd', { name: 'snap-user', password: 'pw' }, root);
        const token = await tokenOf(clients, 'snap-user', 'pw');
        const metadata = new Metadata();
        metadata.set('token', token);
        const stream = (clients.Maintenance as unknown as { Snapshot(request: object, metadata: Metadata): NodeJS.EventEmitter }).Snapshot({}, metadata);
        const error = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
        assert.deepEqual([error.code, error.details], [2, 'auth: permission denied'], endpoint);
      } finally {
        closeClients(clients);
      }
    }
  });

  test('neither passwords nor tokens reach the logs or the data dir', async () => {
    const clients = clientsFor(concord!.clientAddresses[0]!);
    try {
      const password = 'p4ss-unique-7f3e2a';
      const root = await tokenOf(clients, 'root', 'rootpw');
      await must(clients, 'Auth', 'UserAdd', { name: 'carol', password }, root);
      await must(clients, 'Auth', 'UserGrantRole', { user: 'carol', role: 'root' }, root);
      const token = await tokenOf(clients, 'carol', password);
      await must(clients, 'KV', 'Put', { key: key('x'), value: key('y') }, token);
      await call(clients, 'Auth', 'Authenticate', { name: 'carol', password: `${password}-wrong` });
      await concord!.member.snapshotSettled();
      const files = filesUnder(join(dataRoot.dir, 'auth-1'));
      assert.ok(files.length > 0);
      for (const file of files) {
        const content = readFileSync(file);
        assert.equal(content.indexOf(password), -1, `${file} holds the password`);
        assert.equal(content.indexOf(token), -1, `${file} holds a token`);
      }
      for (const line of logs) {
        assert.ok(!line.includes(password) && !line.includes(token), `a log line holds a secret: ${line}`);
      }
    } finally {
      closeClients(clients);
    }
  });

  test('watches: a watch the user may not read is created and cancelled at once, as etcd answers, and the stream stays open', async () => {
    const clients = clientsFor(concord!.clientAddresses[0]!);
    try {
      const root = await tokenOf(clients, 'root', 'rootpw');
      await must(clients, 'Auth', 'UserAdd', { name: 'dave', password: 'davepw' }, root);
      await must(clients, 'Auth', 'RoleAdd', { name: 'watcher' }, root);
      await must(clients, 'Auth', 'RoleGrantPermission', { name: 'watcher', perm: { permType: READ, key: key('w/'), range_end: key('w0') } }, root);
      await must(clients, 'Auth', 'UserGrantRole', { user: 'dave', role: 'watcher' }, root);
      const dave = await tokenOf(clients, 'dave', 'davepw');
      const metadata = new Metadata();
      metadata.set('token', dave);
      const stream = (clients.Watch as unknown as { Watch(metadata: Metadata): ClientDuplexStream<object, WatchResponse> }).Watch(metadata);
      const responses: WatchResponse[] = [];
      stream.on('data', (response: WatchResponse) => responses.push(response));
      stream.on('error', () => {});
      stream.write({ create_request: { key: key('w/'), range_end: key('w1') } });
      await waitFor('the refusal', () => responses.length >= 1);
      assert.deepEqual([responses[0]!.created, responses[0]!.canceled, responses[0]!.cancel_reason], [true, true, WATCH_PERMISSION_DENIED_REASON]);
      stream.write({ create_request: { key: key('w/'), range_end: key('w0') } });
      await waitFor('the allowed watch', () => responses.length >= 2);
      assert.deepEqual([responses[1]!.created, responses[1]!.canceled], [true, false]);
      await must(clients, 'KV', 'Put', { key: key('w/a'), value: key('1') }, root);
      await waitFor('the event', () => responses.length >= 3);
      assert.equal(responses[2]!.events[0]!.kv!.key.toString(), 'w/a');
      stream.end();
      stream.cancel();
    } finally {
      closeClients(clients);
    }
  });

  test('the etcd3 npm client authenticates, is allowed what its role allows, and is told "permission denied" otherwise', async () => {
    const clients = clientsFor(concord!.clientAddresses[0]!);
    const client = new Etcd3({ hosts: concord!.clientAddresses[0]!, auth: { username: 'erin', password: 'erinpw' } });
    try {
      const root = await tokenOf(clients, 'root', 'rootpw');
      await must(clients, 'Auth', 'UserAdd', { name: 'erin', password: 'erinpw' }, root);
      await must(clients, 'Auth', 'RoleAdd', { name: 'app' }, root);
      await must(clients, 'Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: READWRITE, key: key('app/'), range_end: key('app0') } }, root);
      await must(clients, 'Auth', 'UserGrantRole', { user: 'erin', role: 'app' }, root);
      await client.put('app/config').value('v1');
      assert.equal(await client.get('app/config').string(), 'v1');
      assert.deepEqual(await client.getAll().prefix('app/').strings(), { 'app/config': 'v1' });
      await assert.rejects(client.put('other').value('x').exec(), EtcdPermissionDeniedError);
      await assert.rejects(client.get('secret').string(), EtcdPermissionDeniedError);
      // A password change ends the client's token; it authenticates again by itself, with the new password.
      await must(clients, 'Auth', 'UserChangePassword', { name: 'erin', password: 'erinpw2' }, root);
      const renewed = new Etcd3({ hosts: concord!.clientAddresses[0]!, auth: { username: 'erin', password: 'erinpw2' } });
      try {
        assert.equal(await renewed.get('app/config').string(), 'v1');
      } finally {
        renewed.close();
      }
    } finally {
      client.close();
      closeClients(clients);
    }
  });

  test('locks and elections run as the calling user: its role must cover the lock or election keys', async () => {
    const clients = clientsFor(concord!.clientAddresses[0]!);
    const lock = new protos.clients.Lock(concord!.clientAddresses[0]!, credentials.createInsecure()) as unknown as Clients[ServiceName];
    const election = new protos.clients.Election(concord!.clientAddresses[0]!, credentials.createInsecure()) as unknown as Clients[ServiceName];
    const rpc = (target: Clients[ServiceName], method: string, request: object, token?: string) => call({ ...clients, KV: target }, 'KV', method, request, token);
    try {
      const root = await tokenOf(clients, 'root', 'rootpw');
      await must(clients, 'Auth', 'UserAdd', { name: 'gus', password: 'guspw' }, root);
      await must(clients, 'Auth', 'RoleAdd', { name: 'locker' }, root);
      await must(clients, 'Auth', 'RoleGrantPermission', { name: 'locker', perm: { permType: READWRITE, key: key('locks/'), range_end: key('locks0') } }, root);
      await must(clients, 'Auth', 'UserGrantRole', { user: 'gus', role: 'locker' }, root);
      const gus = await tokenOf(clients, 'gus', 'guspw');
      const held = await rpc(lock, 'Lock', { name: key('locks/a') }, gus);
      assert.ok(held.ok, held.ok ? '' : held.details);
      assert.match(String(held.response.key), /^locks\/a\/[0-9a-f]+$/);
      assert.ok((await rpc(lock, 'Unlock', { key: held.response.key }, gus)).ok);
      assert.deepEqual(await rpc(lock, 'Lock', { name: key('elsewhere') }, gus), { ok: false, code: 7, details: 'etcdserver: permission denied' });
      assert.deepEqual(await rpc(lock, 'Lock', { name: key('locks/a') }), { ok: false, code: 3, details: 'etcdserver: user name is empty' });
      assert.deepEqual(await rpc(election, 'Leader', { name: key('elsewhere') }, gus), { ok: false, code: 7, details: 'etcdserver: permission denied' });
      assert.deepEqual(await rpc(election, 'Leader', { name: key('locks/e') }, gus), { ok: false, code: 2, details: 'election: no leader' });
    } finally {
      for (const target of [lock, election]) (target as unknown as { close(): void }).close();
      closeClients(clients);
    }
  });

  test('hostile input: huge names and passwords are refused with a clear error; a grant without a permission too', async () => {
    const clients = clientsFor(concord!.clientAddresses[0]!);
    try {
      const root = await tokenOf(clients, 'root', 'rootpw');
      const longName = await call(clients, 'Auth', 'UserAdd', { name: 'n'.repeat(5_000), password: 'x' }, root);
      assert.deepEqual(longName, { ok: false, code: 3, details: 'concord: auth input too long: user name of 5000 bytes, at most maxNameBytes 4096' });
      const hugeName = await call(clients, 'Auth', 'RoleAdd', { name: 'n'.repeat(1_700_000) }, root);
      assert.deepEqual(hugeName, { ok: false, code: 3, details: 'etcdserver: request is too large' });
      const longPassword = await call(clients, 'Auth', 'UserAdd', { name: 'frank', password: 'p'.repeat(2_000) }, root);
      assert.deepEqual(longPassword, { ok: false, code: 3, details: 'concord: auth input too long: a password may have at most 1024 bytes' });
      const longLogin = await call(clients, 'Auth', 'Authenticate', { name: 'root', password: 'p'.repeat(100_000) });
      assert.deepEqual(longLogin, { ok: false, code: 3, details: 'etcdserver: authentication failed, invalid user ID or password' });
      const noPermission = await call(clients, 'Auth', 'RoleGrantPermission', { name: 'app' }, root);
      assert.deepEqual(noPermission, { ok: false, code: 3, details: 'etcdserver: permission not given' });
      const inverted = await call(clients, 'Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: READ, key: key('z'), range_end: key('a') } }, root);
      assert.deepEqual(inverted, { ok: false, code: 3, details: 'etcdserver: invalid auth management' });
      const badType = await call(clients, 'Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: 7, key: key('a') } }, root);
      assert.equal(badType.ok, false);
    } finally {
      closeClients(clients);
    }
  });

});

test('a token expires tokenTtlMs after its last use (here shortened), and the client is told to authenticate again', async () => {
  const ttlMs = 200;
  const member = await startTestMember(dataRoot, 'auth-ttl', {}, { serviceOptions: { authTokens: { tokenTtlMs: ttlMs } } });
  const clients = clientsFor(member.clientAddresses[0]!);
  try {
    await setUp(clients);
    const root = await tokenOf(clients, 'root', 'rootpw');
    await must(clients, 'KV', 'Range', { key: key('foo') }, root);
    await new Promise((resolve) => setTimeout(resolve, 3 * ttlMs));
    assert.deepEqual(await call(clients, 'KV', 'Range', { key: key('foo') }, root), { ok: false, code: 16, details: 'etcdserver: invalid auth token' });
  } finally {
    closeClients(clients);
    await member.stop();
  }
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
