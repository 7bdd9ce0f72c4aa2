// The Lease service on a real store member in this process, driven by the real etcdctl, the etcd3
// npm client and a raw gRPC client, compared with a real etcd where etcdctl's output is the
// contract; and the leader's expiry loop (LeaseKeeper) on a fake member with a hand-driven clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, status } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { toServiceError } from '../../src/api/etcd/grpc-errors.ts';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { LeaseGrantResponse, LeaseKeepAliveResponse } from '../../src/api/etcd/proto-loader.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import type { ApplyResult } from '../../src/kv/state-machine.ts';
import type { KvCommand } from '../../src/kv/types.ts';
import { MEMBER_REQUESTER } from '../../src/kv/auth/auth-types.ts';
import { ServerMetrics } from '../../src/observe/server-metrics.ts';
import { LeaseKeeper } from '../../src/server/lease-keeper.ts';
import type { LeaseKeeperContext } from '../../src/server/lease-keeper.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { startEtcd } from '../compat/etcd-process.ts';
import { Normalizer, runEtcdctl, userFacingErrors } from '../compat/etcdctl.ts';
import { etcdctlOk, startTestMember, useTestDataRoot, waitFor } from '../support/store-member.ts';

/** The shortest lease with default timing (heartbeat 100 ms, election timeout 1 s). */
const MIN_TTL_SECONDS = 2;

const dataRoot = useTestDataRoot('concord-lease-');

const startServer = (name: string): Promise<StoreServer> => startTestMember(dataRoot, name);
const etcdctl = (endpoint: string, ...args: string[]): Promise<string> => etcdctlOk(endpoint, args);

async function revisionOf(endpoint: string): Promise<number> {
  return Number(/"revision":(\d+)/.exec(await etcdctl(endpoint, 'get', 'nothing', '-w', 'json'))![1]);
}

async function leaseGauge(server: StoreServer): Promise<number> {
  return (await server.metrics.leases.get()).values[0]?.value ?? 0;
}

/** etcd lists a lease's attached keys in Go map order, which varies from run to run: compare them as a set. */
function sortAttachedKeys(line: string): string {
  return line.replace(/attached keys\(\[([^\]]*)\]\)/, (_, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`);
}

test('the etcdctl lease commands print what they print against real etcd, errors included', async () => {
  const etcd = await startEtcd();
  const server = await startServer('l1');
  try {
    const transcripts: string[][] = [];
    for (const endpoint of [etcd.endpoint, server.clientAddresses[0]!]) {
      const normalizer = new Normalizer();
      const transcript: string[] = [];
      const step = async (...args: string[]) => {
        const outcome = await runEtcdctl({ endpoint, args });
        const text = [outcome.stdout, ...userFacingErrors(outcome.stderr)].join('').split('\n').map((line) => sortAttachedKeys(normalizer.text(line))).join('\n');
        transcript.push(`$ ${args.join(' ')} -> ${outcome.exitCode}\n${text}`);
        return outcome.stdout;
      };
      const id = /lease ([0-9a-f]+) granted/.exec(await step('lease', 'grant', '60'))![1]!;
      const placeholder = normalizer.leasePlaceholder(BigInt(`0x${id}`));
      await step('put', '--lease', id, 'k1', 'v1');
      await step('put', '--lease', id, 'k2', 'v2');
      await step('lease', 'timetolive', '--keys', id);
      await step('lease', 'keep-alive', '--once', id);
      await step('lease', 'list');
      await step('lease', 'revoke', id);
      await step('get', 'k', '--prefix');
      await step('lease', 'revoke', id);
      await step('lease', 'timetolive', id);
      await step('lease', 'keep-alive', '--once', id);
      await step('put', '--lease', id, 'k3', 'v3');
      await step('lease', 'grant', '9000000001');
      transcripts.push(transcript.map((entry) => entry.replaceAll(id, placeholder)));
    }
    assert.deepEqual(transcripts[1], transcripts[0]);
    const concord = transcripts[1]!.join('\n');
    assert.match(concord, /lease revoke <lease-1> -> 1\nError: failed to revoke lease \(etcdserver: requested lease not found\)/);
    assert.match(concord, /lease timetolive <lease-1> -> 0\nlease <lease-1> already expired/);
    assert.match(concord, /keep-alive --once <lease-1> -> 2\nError: etcdserver: requested lease not found/);
  } finally {
    await server.stop();
    await etcd.stop();
  }
});

test('revoking a lease deletes its keys in one revision; timetolive and list reflect it', async () => {
  const server = await startServer('l2');
  const endpoint = server.clientAddresses[0]!;
  try {
    const id = /lease ([0-9a-f]+) granted with TTL\(30s\)/.exec(await etcdctl(endpoint, 'lease', 'grant', '30'))![1]!;
    await etcdctl(endpoint, 'put', '--lease', id, 'r/1', 'a');
    await etcdctl(endpoint, 'put', '--lease', id, 'r/2', 'b');
    const ttl = JSON.parse((await etcdctl(endpoint, 'lease', 'timetolive', '--keys', id, '-w', 'json')).replace(/"id":\d+/, '"id":0'));
    assert.equal(ttl['granted-ttl'], 30);
    assert.ok(ttl.ttl >= 28 && ttl.ttl <= 30, `remaining ${ttl.ttl} s`);
    assert.deepEqual(ttl.keys.map((key: string) => Buffer.from(key, 'base64').toString()), ['r/1', 'r/2']);
    assert.equal(await leaseGauge(server), 1);

    const before = await revisionOf(endpoint);
    assert.equal((await etcdctl(endpoint, 'lease', 'revoke', id)).trim(), `lease ${id} revoked`);
    assert.equal(await revisionOf(endpoint), before + 1, 'both keys go in one revision');
    assert.equal(await etcdctl(endpoint, 'get', 'r/', '--prefix'), '');
    assert.equal((await etcdctl(endpoint, 'lease', 'list')).trim(), 'found 0 leases');
    assert.equal(await leaseGauge(server), 0);
  } finally {
    await server.stop();
  }
});

test('an expired lease loses its keys within TTL + slack, while one kept alive by the etcd3 client stays', async () => {
  const server = await startServer('l3');
  const endpoint = server.clientAddresses[0]!;
  const client = new Etcd3({ hosts: endpoint });
  const kept = client.lease(MIN_TTL_SECONDS, { autoKeepAlive: true });
  let keepAlives = 0;
  let lost: unknown;
  kept.on('keepaliveSucceeded', () => keepAlives++);
  kept.on('lost', (error) => (lost = error));
  try {
    await kept.put('kept').value('alive');
    // Taken before the grant: the lease's TTL runs from the grant, and the etcdctl calls below can
    // take longer than the slack on a loaded machine (taken after them, the bound was unsound).
    const grantedAt = Date.now();
    const granted = /lease ([0-9a-f]+) granted with TTL\((\d+)s\)/.exec(await etcdctl(endpoint, 'lease', 'grant', '1'))!;
    assert.equal(granted[2], String(MIN_TTL_SECONDS), 'a shorter TTL is raised to the minimum, as in etcd');
    const id = granted[1]!;
    await etcdctl(endpoint, 'put', '--lease', id, 'x/1', 'a');
    await etcdctl(endpoint, 'put', '--lease', id, 'x/2', 'b');
    const before = await revisionOf(endpoint);
    await waitFor('the expired lease\'s keys to go', async () => (await etcdctl(endpoint, 'get', 'x/', '--prefix', '--keys-only')) === '',
      MIN_TTL_SECONDS * 1000 + 4_000);
    assert.ok(Date.now() - grantedAt >= MIN_TTL_SECONDS * 1000 - 100, 'not before the TTL');
    assert.equal(await revisionOf(endpoint), before + 1, 'expiry deletes both keys in one replicated revoke');
    assert.match(await etcdctl(endpoint, 'lease', 'timetolive', id), /already expired/);

    // Well past its TTL now: only the keep-alives hold the other lease.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await client.get('kept').string(), 'alive');
    assert.ok(keepAlives >= 1, `${keepAlives} keep-alives answered`);
    assert.equal(lost, undefined);
  } finally {
    await kept.revoke().catch(() => {});
    client.close();
    await server.stop();
  }
});

test('on the wire: chosen and explicit IDs, duplicates, keep-alive and timetolive of unknown leases', async () => {
  const server = await startServer('l4');
  const protos = loadEtcdProtos();
  type Callback = (error: ServiceError | null, response: unknown) => void;
  const lease = new protos.clients.Lease(server.clientAddresses[0]!, credentials.createInsecure()) as unknown as
    Record<string, (request: object, callback: Callback) => void> & { close(): void; LeaseKeepAlive(): ClientDuplexStream<object, LeaseKeepAliveResponse> };
  const unary = <T>(method: string, request: object) => new Promise<T>((resolve, reject) => {
    lease[method]!.call(lease, request, (error, response) => (error ? reject(error) : resolve(response as T)));
  });
  try {
    const chosen = await unary<LeaseGrantResponse>('LeaseGrant', { TTL: 10 });
    // etcd's layout: the member ID's low bits on top, then a time-based counter.
    assert.equal(BigInt(chosen.ID) >> 48n, server.memberId & 0x7fffn);
    const explicit = await unary<LeaseGrantResponse>('LeaseGrant', { TTL: 10, ID: 42 });
    assert.deepEqual([explicit.ID, explicit.TTL, explicit.error], ['42', '10', '']);
    await assert.rejects(unary('LeaseGrant', { TTL: 10, ID: 42 }),
      (error: ServiceError) => error.code === status.FAILED_PRECONDITION && error.details === 'etcdserver: lease already exists');

    const unknown = await unary<{ ID: string; TTL: string; grantedTTL: string }>('LeaseTimeToLive', { ID: 7 });
    assert.deepEqual([unknown.ID, unknown.TTL, unknown.grantedTTL], ['7', '-1', '0']);
    await unary<LeaseGrantResponse>('LeaseGrant', { TTL: 5, ID: 43 });
    const leases = await unary<{ leases: { ID: string }[] }>('LeaseLeases', {});
    assert.deepEqual(leases.leases.map((l) => l.ID), ['43', '42', chosen.ID], 'soonest expiry first, as etcd lists them');

    const stream = lease.LeaseKeepAlive();
    const answers: LeaseKeepAliveResponse[] = [];
    let ended: ServiceError | 'ok' | undefined;
    stream.on('data', (answer: LeaseKeepAliveResponse) => answers.push(answer));
    stream.on('error', (error: ServiceError) => (ended = error));
    stream.on('end', () => (ended ??= 'ok'));
    for (const ID of [42, 7, 42]) stream.write({ ID });
    await waitFor('three answers', () => answers.length === 3);
    assert.deepEqual(answers.map((answer) => [answer.ID, answer.TTL]), [['42', '10'], ['7', '0'], ['42', '10']],
      'in order; an unknown lease answers TTL 0, as etcd');
    stream.end();
    await waitFor('the stream to end', () => ended !== undefined);
    assert.equal(ended, 'ok', 'the client closing its side ends the stream with OK');
  } finally {
    lease.close();
    await server.stop();
  }
});

// --- LeaseKeeper on a fake member ---------------------------------------------------------------

class FakeMember {
  readonly machine = new KvStateMachine();
  readonly metrics = new ServerMetrics();
  readonly proposals: KvCommand[] = [];
  nowMs = 1_000_000;
  leader = 0n;
  private index = 0;
  private tick: (() => void) | undefined;
  private readonly applied = new Set<(result: ApplyResult) => void>();
  private readonly leaderListeners = new Set<(leader: bigint, term: number) => void>();
  readonly memberId = 0x1234n;

  readonly context: LeaseKeeperContext = {
    backend: {
      write: async (command) => {
        this.proposals.push(command);
        const result = this.machine.apply(command, ++this.index);
        for (const listener of this.applied) listener(result);
        if (result.status === 'failed') throw result.error;
        if (result.status === 'skipped') throw new Error('skipped');
        return result.response;
      },
      readBarrier: async () => {},
      range: (request) => this.machine.range(request),
    },
    stateMachine: () => this.machine,
    member: {
      memberId: this.memberId,
      clusterId: 1n,
      isLeader: () => this.leader === this.memberId,
      leaderId: () => this.leader,
      term: () => 1,
      appliedIndex: () => this.index,
      committedIndex: () => this.index,
      membership: () => ({ voters: [this.memberId], learners: [] }),
      writesDisabledReason: () => undefined,
    },
    events: {
      onApplied: (listener) => (this.applied.add(listener), () => this.applied.delete(listener)),
      onRestored: () => () => {},
      onLeaderChange: (listener) => (this.leaderListeners.add(listener), () => this.leaderListeners.delete(listener)),
    },
    config: { electionTimeoutMs: 1_000 } as LeaseKeeperContext['config'],
    metrics: this.metrics,
    clock: {
      nowMs: () => this.nowMs,
      setInterval: (callback) => (this.tick = callback),
      clearInterval: () => (this.tick = undefined),
    },
  };

  elect(leader: bigint): void {
    this.leader = leader;
    for (const listener of this.leaderListeners) listener(leader, 1);
  }

  /** Advances the clock and runs one expiry check to completion. */
  async advance(ms: number): Promise<void> {
    this.nowMs += ms;
    this.tick?.();
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
  }
}

test('LeaseKeeper: expiry is decided by the leader and carried out as replicated revokes', async () => {
  const fake = new FakeMember();
  const keeper = new LeaseKeeper(fake.context);
  keeper.start();
  try {
    // Before any election: not primary, and the error says so in etcd's words.
    assert.equal(await keeper.waitUntilPrimary(10), false);
    assert.throws(() => keeper.renew(1n), /etcdserver: not leader/);
    assert.equal(toServiceError(keeper.notPrimaryError()).details, 'etcdserver: no leader');

    // A lease that exists before this member leads gets its TTL plus the election timeout.
    await fake.context.backend.write({ type: 'leaseGrant', request: { id: 1n, ttl: 5 } }, MEMBER_REQUESTER);
    const waiting = keeper.waitUntilPrimary(1_000);
    fake.elect(fake.memberId);
    assert.equal(await waiting, true);
    assert.equal(keeper.remainingTtlSeconds(1n), 6);

    // A lease granted while leading gets exactly its TTL; its keys go with it in one revoke.
    await fake.context.backend.write({ type: 'leaseGrant', request: { id: 2n, ttl: 3 } }, MEMBER_REQUESTER);
    await fake.context.backend.write({ type: 'put', request: { key: new Uint8Array([1]), value: new Uint8Array([1]), lease: 2n } }, MEMBER_REQUESTER);
    assert.equal((await fake.metrics.leases.get()).values[0]!.value, 2);
    await fake.advance(2_999);
    assert.equal(fake.proposals.filter((command) => command.type === 'leaseRevoke').length, 0, 'not before the deadline');
    await fake.advance(1);
    assert.deepEqual(fake.proposals.at(-1), { type: 'leaseRevoke', request: { id: 2n } });
    assert.equal(fake.machine.lease(2n), undefined);
    assert.equal(fake.machine.range({ key: new Uint8Array([1]) }).kvs.length, 0);
    assert.equal((await fake.metrics.leases.get()).values[0]!.value, 1);

    // Keep-alives push the deadline out; an expired or unknown lease cannot be renewed.
    await fake.advance(2_000);
    assert.equal(keeper.renew(1n), 5);
    await fake.advance(4_999);
    assert.equal(fake.machine.lease(1n) !== undefined, true, 'renewed, so still there');
    assert.throws(() => keeper.renew(99n), /requested lease not found/);

    // Leadership lost: no more expiry here, and renewals are refused.
    fake.elect(0x9999n);
    await fake.advance(60_000);
    assert.notEqual(fake.machine.lease(1n), undefined);
    assert.match(toServiceError(keeper.notPrimaryError()).details, /etcdserver: not leader/);
  } finally {
    keeper.stop();
  }
});
