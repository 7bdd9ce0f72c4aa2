// The store's resource limits (docs/store.md, "Resource limits"), each against a real member on
// loopback with the limit set low through its flag: the refusal carries its code and gRPC status,
// is counted in concord_store_refused_total{limit}, and the member keeps serving what is within
// the limit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { credentials, status } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { Encodable, Int64Input, WatchRequest, WatchResponse } from '../../src/api/etcd/proto-loader.ts';
import type { StoreServer } from '../../src/server/store-server.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { startTestMember, useTestDataRoot, waitFor } from '../support/store-member.ts';

const dataRoot = useTestDataRoot('concord-limits-');

async function refusals(server: StoreServer, limit: string): Promise<number> {
  const metric = await server.metrics.refused.get();
  return metric.values.find((value) => value.labels.limit === limit)?.value ?? 0;
}

type WatchClient = InstanceType<ReturnType<typeof loadEtcdProtos>['clients']['Watch']>;
type WatchCall = ClientDuplexStream<Encodable<WatchRequest<Int64Input>>, WatchResponse>;

/** A raw Watch stream on `client` (streams of one client share its connection). */
class RawWatch {
  readonly responses: WatchResponse[] = [];
  ended: ServiceError | undefined;
  readonly call: WatchCall;

  constructor(client: WatchClient, options: { reading?: boolean } = {}) {
    this.call = (client as unknown as { Watch(): WatchCall }).Watch();
    this.call.on('error', (error: ServiceError) => (this.ended = error));
    if (options.reading !== false) this.read();
  }

  read(): void {
    this.call.on('data', (response: WatchResponse) => this.responses.push(response));
  }

  watch(prefix: string): void {
    const key = Buffer.from(prefix);
    const rangeEnd = Buffer.from(key);
    rangeEnd[rangeEnd.length - 1]! += 1;
    this.call.write({ create_request: { key, range_end: rangeEnd } });
  }
}

/** A gRPC client with a connection of its own (grpc-js shares one per target unless told not to). */
const watchClient = (endpoint: string): WatchClient =>
  new (loadEtcdProtos().clients.Watch)(endpoint, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });

test('--max-client-connections: a connection over the bound is closed at once and counted; those within it are served', async () => {
  const server = await startTestMember(dataRoot, 'c1', { maxClientConnections: '2' });
  const [host, port] = [server.clientAddresses[0]!.split(':')[0]!, Number(server.clientAddresses[0]!.split(':')[1])];
  const sockets: Socket[] = [];
  try {
    const open = async () => {
      const socket = connect(port, host);
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      return socket;
    };
    await open();
    await open();
    const third = await open();
    await new Promise((resolve) => third.once('close', resolve));
    await waitFor('the refusal to be counted', async () => (await refusals(server, 'max-client-connections')) === 1);
    assert.equal(sockets[0]!.destroyed, false, 'connections within the bound stay open');

    // Once one closes, a real client connects and is served.
    sockets[0]!.destroy();
    await waitFor('the closed connection to be forgotten', async () => (await server.metrics.clientConnections.get()).values[0]?.value === 1);
    const client = new Etcd3({ hosts: server.clientAddresses[0]! });
    try {
      await client.put('k').value('v');
      assert.equal(await client.get('k').string(), 'v');
    } finally {
      client.close();
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
  }
});

test('--max-watch-streams: a Watch stream over the bound ends with RESOURCE_EXHAUSTED and the reason', async () => {
  const server = await startTestMember(dataRoot, 'c2', { maxWatchStreams: '2' });
  const client = watchClient(server.clientAddresses[0]!);
  try {
    const first = new RawWatch(client);
    const second = new RawWatch(client);
    first.watch('a/');
    second.watch('b/');
    await waitFor('both streams to be open', () => first.responses.length > 0 && second.responses.length > 0);
    const third = new RawWatch(client);
    third.watch('c/');
    await waitFor('the third stream to end', () => third.ended !== undefined);
    assert.equal(third.ended!.code, status.RESOURCE_EXHAUSTED);
    assert.match(third.ended!.details, /^concord: too many watch streams on this member: 2 are open \(--max-watch-streams 2\)/);
    assert.equal(await refusals(server, 'max-watch-streams'), 1);
    assert.equal(first.ended, undefined);
  } finally {
    client.close();
    await server.stop();
  }
});

test('--max-watches-per-connection counts the watchers of every stream on one connection; another connection is not affected', async () => {
  const server = await startTestMember(dataRoot, 'c3', { maxWatchesPerConnection: '3' });
  const client = watchClient(server.clientAddresses[0]!);
  const other = watchClient(server.clientAddresses[0]!);
  try {
    const streamA = new RawWatch(client);
    const streamB = new RawWatch(client);
    streamA.watch('a/');
    streamA.watch('b/');
    await waitFor('two watchers on stream A', () => streamA.responses.filter((r) => r.created).length === 2);
    streamB.watch('c/');
    streamB.watch('d/');
    await waitFor('two answers on stream B', () => streamB.responses.filter((r) => r.created).length === 2);
    const [accepted, refused] = streamB.responses;
    assert.equal(accepted!.canceled, false);
    assert.equal(refused!.canceled, true, 'the fourth watcher of the connection is refused');
    assert.match(refused!.cancel_reason, /^concord: too many watchers; cancel unused watches or raise maxWatchers: 3 watchers on this connection \(--max-watches-per-connection 3\)/);
    assert.equal(streamB.ended, undefined, 'the stream stays open, as for any refused watch');
    assert.equal(await refusals(server, 'max-watches-per-connection'), 1);

    const streamC = new RawWatch(other);
    streamC.watch('e/');
    await waitFor('the other connection\'s watcher', () => streamC.responses.length === 1);
    assert.equal(streamC.responses[0]!.canceled, false);
  } finally {
    client.close();
    other.close();
    await server.stop();
  }
});

test('--max-concurrent-streams (etcd\'s flag): a stream over the bound on one connection is held back; another connection is served', async () => {
  const server = await startTestMember(dataRoot, 'c7', { maxConcurrentStreams: '1' });
  const client = watchClient(server.clientAddresses[0]!);
  const other = watchClient(server.clientAddresses[0]!);
  try {
    const first = new RawWatch(client);
    first.watch('a/');
    await waitFor('the first stream\'s watcher', () => first.responses.length === 1);
    const second = new RawWatch(client);
    second.watch('b/');
    const elsewhere = new RawWatch(other);
    elsewhere.watch('c/');
    await waitFor('the other connection\'s watcher', () => elsewhere.responses.length === 1);
    // Held back by the client's HTTP/2 layer (SETTINGS_MAX_CONCURRENT_STREAMS): the member never sees it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(second.responses.length, 0, 'the second stream on the full connection got no answer');
  } finally {
    client.close();
    other.close();
    await server.stop();
  }
});

test('--max-leases: a grant over the bound fails with RESOURCE_EXHAUSTED; after a revoke, grants succeed again', async () => {
  const server = await startTestMember(dataRoot, 'c4', { maxLeases: '2' });
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    const first = client.lease(60, { autoKeepAlive: false });
    const second = client.lease(60, { autoKeepAlive: false });
    await first.grant();
    await second.grant();
    // The etcd3 library retries RESOURCE_EXHAUSTED and then opens its circuit breaker: ask from a client of its own.
    const probe = new Etcd3({ hosts: server.clientAddresses[0]! });
    try {
      await assert.rejects(probe.lease(60, { autoKeepAlive: false }).grant(), (error: Error) => {
        assert.match(error.message, /concord: too many leases: 2 leases exist \(--max-leases 2\)/);
        return true;
      });
    } finally {
      probe.close();
    }
    assert.ok(await refusals(server, 'max-leases') >= 1);
    await first.revoke();
    const fourth = client.lease(60, { autoKeepAlive: false });
    await fourth.grant();
  } finally {
    client.close();
    await server.stop();
  }
});

test('--max-range-keys: a Range over the bound is refused, not truncated; paging with limit and count-only ranges work', async () => {
  const server = await startTestMember(dataRoot, 'c5', { maxRangeKeys: '5' });
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    for (let i = 0; i < 5; i++) await client.put(`k/${i}`).value('v');
    assert.equal((await client.getAll().prefix('k/').keys()).length, 5, 'a result at the bound is served');
    await client.put('k/5').value('v');
    await assert.rejects(client.getAll().prefix('k/').keys(), (error: Error) => {
      assert.match(error.message, /concord: range result has too many keys: 6 keys match, over --max-range-keys 5/);
      return true;
    });
    await assert.rejects(client.getAll().prefix('k/').limit(6).keys(), /too many keys/, 'a limit above the bound does not lift it');
    assert.equal(await refusals(server, 'max-range-keys'), 2);
    assert.deepEqual(await client.getAll().prefix('k/').limit(5).keys(), ['k/0', 'k/1', 'k/2', 'k/3', 'k/4']);
    assert.equal(await client.getAll().prefix('k/').count(), 6);
  } finally {
    client.close();
    await server.stop();
  }
});

test('--max-watch-queued-bytes bounds the backlog of all slow streams together, below each stream\'s own bound', async () => {
  const server = await startTestMember(dataRoot, 'c6', { maxWatchStreamQueuedBytes: '64MiB', maxWatchQueuedBytes: '512KiB' });
  const client = watchClient(server.clientAddresses[0]!);
  const kv = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    const stalled = [new RawWatch(client, { reading: false }), new RawWatch(client, { reading: false })];
    const healthy = new RawWatch(client);
    for (const stream of stalled) for (let i = 0; i < 10; i++) stream.watch('s/');
    healthy.watch('s/');
    const watchers = async () => (await server.metrics.watchers.get()).values[0]?.value ?? 0;
    await waitFor('all watchers', async () => (await watchers()) === 21);

    // Each put is one response per watcher; 64 KiB values exhaust HTTP/2 flow control quickly.
    const value = 'v'.repeat(64 * 1024);
    const queuedGauge = async () => (await server.metrics.watchQueuedBytes.get()).values[0]?.value ?? 0;
    let maxQueuedSeen = 0;
    for (let i = 0; i < 20 && (await watchers()) > 11; i++) {
      await kv.put(`s/${i}`).value(value);
      maxQueuedSeen = Math.max(maxQueuedSeen, await queuedGauge());
    }
    await waitFor('a stalled stream to be dropped', async () => (await watchers()) <= 11);
    assert.ok(await refusals(server, 'max-watch-queued-bytes') >= 1);
    assert.equal(await refusals(server, 'max-watch-stream-queued-bytes'), 0, 'no single stream reached its own bound');
    const queued = await queuedGauge();
    // The bound, plus at most one response per stream (a response always enters an empty queue).
    assert.ok(queued <= 512 * 1024 + 3 * 11 * (64 * 1024 + 1024), `backlog ${queued} bytes stays near the bound`);
    assert.ok(maxQueuedSeen > 0, 'the gauge showed the backlog while the stalled streams filled it');

    for (const stream of stalled) stream.read();
    await waitFor('a stalled stream to end', () => stalled.some((stream) => stream.ended !== undefined));
    const cut = stalled.find((stream) => stream.ended !== undefined)!;
    assert.equal(cut.ended!.code, status.RESOURCE_EXHAUSTED);
    assert.match(cut.ended!.details, /^concord: watch stream ended because the client did not read its responses: \d+ responses waiting \(\d+ bytes waiting on all streams, --max-watch-queued-bytes 524288\)/);
    assert.equal(healthy.ended, undefined, 'a client that reads is unaffected');
    // Every stream now reads or was cut: the gauge, read when collected, falls back to nothing waiting.
    await waitFor('the watch backlog gauge to read 0', async () => (await queuedGauge()) === 0);
  } finally {
    kv.close();
    client.close();
    await server.stop();
  }
});

test('the limits are flags and server: keys, with defaults, and a bad value names its flag', () => {
  const defaults = resolveServerConfig({}, {});
  assert.equal(defaults.maxConcurrentStreams, 2 ** 32 - 1, "etcd's default, math.MaxUint32");
  assert.deepEqual(defaults.limits, {
    maxClientConnections: 4096, maxWatchStreams: 10_000, maxWatchers: 100_000, maxWatchesPerConnection: 10_000,
    maxWatchStreamQueuedBytes: 32 * 1024 * 1024, maxWatchQueuedBytes: 512 * 1024 * 1024, maxLeases: 100_000, maxRangeKeys: 100_000,
  });
  const fromFile = resolveServerConfig({ maxLeases: 7, maxWatchQueuedBytes: 1024 }, settingsFromFlags({ maxRangeKeys: '9', maxWatchStreamQueuedBytes: '1MiB' }));
  assert.equal(fromFile.limits.maxLeases, 7);
  assert.equal(fromFile.limits.maxWatchQueuedBytes, 1024);
  assert.equal(fromFile.limits.maxRangeKeys, 9);
  assert.equal(fromFile.limits.maxWatchStreamQueuedBytes, 1024 * 1024);
  assert.throws(() => resolveServerConfig({ maxClientConnections: 0 }, {}), /--max-client-connections \(server\.maxClientConnections\)/);
  assert.throws(() => settingsFromFlags({ maxWatchStreams: 'many' }), /--max-watch-streams: 'many' is not a whole number/);
  assert.throws(() => settingsFromFlags({ maxWatchQueuedBytes: 'lots' }), /--max-watch-queued-bytes: 'lots' is not a size/);
});
