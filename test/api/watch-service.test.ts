// The Watch service on a real store member in this process, driven by the real etcdctl, the etcd3
// npm client and a raw gRPC client (for the wire details etcdctl does not expose), and compared
// with a real etcd where etcdctl's output is the contract.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, status } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import type { IKeyValue, Watcher } from 'etcd3';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { Encodable, Int64Input, WatchRequest, WatchResponse } from '../../src/api/etcd/proto-loader.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import type { StoreServerOptions } from '../../src/server/store-server.ts';
import { startEtcd } from '../compat/etcd-process.ts';
import { EtcdctlProcess, runEtcdctl, userFacingErrors } from '../compat/etcdctl.ts';
import { WAIT_MS, etcdctlOk, startTestMember, useTestDataRoot, waitFor } from '../support/store-member.ts';


const dataRoot = useTestDataRoot('concord-watch-');

const startServer = (name: string, options: StoreServerOptions = {}): Promise<StoreServer> => startTestMember(dataRoot, name, {}, options);
const etcdctl = (endpoint: string, ...args: string[]): Promise<string> => etcdctlOk(endpoint, args);

async function watcherGauge(server: StoreServer): Promise<number> {
  return (await server.metrics.watchers.get()).values[0]?.value ?? 0;
}

/** A raw Watch stream that records every response and how it ended. */
class RawWatch {
  readonly responses: WatchResponse[] = [];
  ended: ServiceError | undefined;
  private readonly client: InstanceType<ReturnType<typeof loadEtcdProtos>['clients']['Watch']>;
  readonly call: ClientDuplexStream<Encodable<WatchRequest<Int64Input>>, WatchResponse>;

  constructor(endpoint: string, options: { reading?: boolean } = {}) {
    this.client = new (loadEtcdProtos().clients.Watch)(endpoint, credentials.createInsecure());
    this.call = (this.client as unknown as { Watch(): RawWatch['call'] }).Watch();
    this.call.on('error', (error: ServiceError) => (this.ended = error));
    if (options.reading !== false) this.read();
  }

  /** Starts reading (a stream created with reading: false lets responses pile up at the server). */
  read(): void {
    this.call.on('data', (response: WatchResponse) => this.responses.push(response));
  }

  send(request: Encodable<WatchRequest<Int64Input>>): void {
    this.call.write(request);
  }

  async next(what: string, matches: (response: WatchResponse) => boolean): Promise<WatchResponse> {
    await waitFor(what, () => this.responses.some(matches));
    return this.responses.find(matches)!;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

const events = (responses: readonly WatchResponse[]) => responses.flatMap((response) =>
  response.events.map((event) => `${event.type} ${event.kv!.key.toString()}=${event.kv!.value.toString()}@${event.kv!.mod_revision}`));

test('etcdctl watch --rev --prefix --prev-kv prints the history, then new events, as real etcd does', async () => {
  const etcd = await startEtcd();
  const server = await startServer('w1');
  try {
    const outputs: string[] = [];
    for (const endpoint of [etcd.endpoint, server.clientAddresses[0]!]) {
      await etcdctl(endpoint, 'put', 'a/1', 'x');
      await etcdctl(endpoint, 'put', 'a/2', 'y');
      await etcdctl(endpoint, 'put', 'b/1', 'not watched');
      await etcdctl(endpoint, 'del', 'a/1');
      const watch = new EtcdctlProcess({ endpoint, args: ['watch', '--rev', '3', '--prefix', '--prev-kv', 'a/'] });
      try {
        // History: PUT a/2 (3 lines), DELETE a/1 with its previous value (5 lines).
        assert.ok(await watch.waitForLines(8, WAIT_MS), 'the history arrives');
        await etcdctl(endpoint, 'put', 'a/2', 'z');
        assert.ok(await watch.waitForLines(13, WAIT_MS), 'the new event arrives');
      } finally {
        outputs.push((await watch.interrupt()).stdout);
      }
    }
    assert.equal(outputs[1], outputs[0]);
    assert.equal(outputs[1], 'PUT\na/2\ny\nDELETE\na/1\nx\na/1\n\nPUT\na/2\ny\na/2\nz\n');
  } finally {
    await server.stop();
    await etcd.stop();
  }
});

test('a watch from a compacted revision is cancelled with the compact revision, and etcdctl exits 5 as with etcd', async () => {
  const etcd = await startEtcd();
  const server = await startServer('w2');
  try {
    const outcomes = [];
    for (const endpoint of [etcd.endpoint, server.clientAddresses[0]!]) {
      for (let i = 0; i < 4; i++) await etcdctl(endpoint, 'put', 'c', `v${i}`);
      await etcdctl(endpoint, 'compact', '4');
      const outcome = await runEtcdctl({ endpoint, args: ['watch', '--rev', '2', 'c'] });
      outcomes.push({ exitCode: outcome.exitCode, stdout: outcome.stdout, errors: userFacingErrors(outcome.stderr) });
    }
    assert.deepEqual(outcomes[1], outcomes[0]);
    assert.deepEqual(outcomes[1], {
      exitCode: 5,
      stdout: '',
      errors: ['watch was canceled (etcdserver: mvcc: required revision has been compacted)', 'Error: watch is canceled by the server'],
    });

    // On the wire: created, then cancelled in-band with compact_revision, as etcd reports it.
    const raw = new RawWatch(server.clientAddresses[0]!);
    try {
      raw.send({ create_request: { key: Buffer.from('c'), start_revision: 2 } });
      const cancelled = await raw.next('the cancel', (response) => response.canceled);
      assert.equal(raw.responses[0]!.created, true);
      assert.equal(cancelled.compact_revision, '4');
      assert.equal(cancelled.watch_id, raw.responses[0]!.watch_id);
      await waitFor('the watcher to be forgotten', async () => (await watcherGauge(server)) === 0);
    } finally {
      raw.close();
    }
  } finally {
    await server.stop();
    await etcd.stop();
  }
});

test('the etcd3 client receives put and delete events with the previous key-value', async () => {
  const server = await startServer('w3');
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  // An etcd3 watcher that is not cancelled reconnects for ever, even after client.close().
  let watcher: Watcher | undefined;
  try {
    const seen: string[] = [];
    watcher = await client.watch().prefix('e/').withPreviousKV().create();
    // etcd3 hands over null (not undefined, as its typings say) when there is no previous key-value.
    const describe = (kv: IKeyValue | null | undefined) => (kv ? `${kv.key.toString()}=${kv.value.toString()}` : 'none');
    watcher.on('put', (kv: IKeyValue, previous?: IKeyValue) => seen.push(`put ${describe(kv)} prev ${describe(previous)}`));
    watcher.on('delete', (kv: IKeyValue, previous?: IKeyValue) => seen.push(`delete ${kv.key.toString()} prev ${describe(previous)}`));
    assert.equal(await watcherGauge(server), 1, 'the watchers gauge counts it');
    await client.put('e/k').value('one');
    await client.put('e/k').value('two');
    await client.put('other').value('ignored');
    await client.delete().key('e/k');
    await waitFor('three events', () => seen.length >= 3);
    assert.deepEqual(seen, ['put e/k=one prev none', 'put e/k=two prev e/k=one', 'delete e/k prev e/k=two']);
    await watcher.cancel();
    watcher = undefined;
    await waitFor('the gauge to drop', async () => (await watcherGauge(server)) === 0);
  } finally {
    await watcher?.cancel();
    client.close();
    await server.stop();
  }
});

test('filters, explicit watch IDs and cancel on the wire', async () => {
  const server = await startServer('w4');
  const raw = new RawWatch(server.clientAddresses[0]!);
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    raw.send({ create_request: { key: Buffer.from('f'), filters: ['NOPUT'], watch_id: 7 } });
    raw.send({ create_request: { key: Buffer.from('f') } });
    raw.send({ create_request: { key: Buffer.from('f'), watch_id: 7 } });
    await waitFor('three created responses', () => raw.responses.filter((response) => response.created).length === 3);
    const [filtered, automatic, duplicate] = raw.responses;
    assert.equal(filtered!.watch_id, '7');
    assert.equal(automatic!.watch_id, '0', 'automatic IDs count from 0, as in etcd');
    assert.deepEqual([duplicate!.watch_id, duplicate!.canceled, duplicate!.cancel_reason],
      ['-1', true, 'mvcc: duplicate watch ID provided on the WatchStream']);

    await client.put('f').value('1');
    await client.delete().key('f');
    await waitFor('events on both watchers', () => raw.responses.filter((response) => response.events.length > 0).length === 3);
    const eventsOf = (id: string) => events(raw.responses.filter((response) => response.watch_id === id));
    assert.deepEqual(eventsOf('7'), ['DELETE f=@3'], 'NOPUT leaves only the delete');
    assert.deepEqual(eventsOf('0'), ['PUT f=1@2', 'DELETE f=@3']);

    raw.send({ cancel_request: { watch_id: 0 } });
    raw.send({ cancel_request: { watch_id: 42 } }); // unknown: etcd answers nothing
    const cancelled = await raw.next('the cancel response', (response) => response.canceled && response.watch_id === '0');
    assert.equal(cancelled.header!.revision, '3');
    await client.put('f').value('2');
    await client.delete().key('f');
    await waitFor('the next delete on watch 7', () => eventsOf('7').length === 2);
    assert.deepEqual(eventsOf('0'), ['PUT f=1@2', 'DELETE f=@3'], 'a cancelled watcher gets nothing more');
    assert.equal(raw.responses.filter((response) => response.canceled).length, 2, 'no answer to the unknown cancel');
  } finally {
    raw.close();
    client.close();
    await server.stop();
  }
});

test('progress notifications at the configured interval, and progress requests', async () => {
  const server = await startServer('w5', { serviceOptions: { watch: { progressNotifyIntervalMs: 200 } } });
  const raw = new RawWatch(server.clientAddresses[0]!);
  try {
    await etcdctl(server.clientAddresses[0]!, 'put', 'p', '1');
    raw.send({ create_request: { key: Buffer.from('p'), progress_notify: true } });
    raw.send({ create_request: { key: Buffer.from('q') } });
    await waitFor('both created', () => raw.responses.filter((response) => response.created).length === 2);
    const notification = await raw.next('a progress notification',
      (response) => !response.created && response.events.length === 0 && response.watch_id === '0');
    assert.equal(notification.header!.revision, '2');
    assert.equal(raw.responses.some((response) => response.watch_id === '1' && !response.created), false,
      'only the watcher that asked for notifications gets them');

    raw.send({ progress_request: {} });
    const progress = await raw.next('the progress response', (response) => response.watch_id === '-1');
    assert.deepEqual([progress.created, progress.canceled, progress.header!.revision, progress.events], [false, false, '2', []]);
  } finally {
    raw.close();
    await server.stop();
  }
});

test('a client that stops reading is cut off at the queue bound with RESOURCE_EXHAUSTED, not buffered without limit', async () => {
  const maxQueuedBytesPerStream = 512 * 1024;
  const server = await startServer('w6', { serviceOptions: { watch: { maxQueuedBytesPerStream } } });
  const stalled = new RawWatch(server.clientAddresses[0]!, { reading: false });
  const healthy = new RawWatch(server.clientAddresses[0]!);
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    const watchersPerStream = 20;
    for (let i = 0; i < watchersPerStream; i++) stalled.send({ create_request: { key: Buffer.from('s'), range_end: Buffer.from('t') } });
    healthy.send({ create_request: { key: Buffer.from('s'), range_end: Buffer.from('t') } });
    await waitFor('all watchers', async () => (await watcherGauge(server)) === watchersPerStream + 1);

    // Each put is one response per watcher; 64 KiB values exhaust HTTP/2 flow control quickly.
    const value = 'v'.repeat(64 * 1024);
    for (let i = 0; i < 10 && (await watcherGauge(server)) > 1; i++) await client.put(`s${i}`).value(value);
    // Generous: on a loaded machine the puts' responses reach the stalled stream's queue slowly.
    await waitFor('the stalled stream to be dropped', async () => (await watcherGauge(server)) === 1, 20_000);

    stalled.read();
    await waitFor('the stalled stream to end', () => stalled.ended !== undefined);
    assert.equal(stalled.ended!.code, status.RESOURCE_EXHAUSTED);
    assert.match(stalled.ended!.details, /concord: watch stream ended because the client did not read its responses: \d+ responses waiting \(\d+ bytes waiting on this stream, --max-watch-stream-queued-bytes 524288\)/);
    assert.equal(healthy.ended, undefined, 'a client that reads is unaffected');
    await client.put('s-last').value('x');
    await healthy.next('events after the cut-off', (response) => events([response]).some((event) => event.startsWith('PUT s-last=')));
  } finally {
    stalled.close();
    healthy.close();
    client.close();
    await server.stop();
  }
});
