// The peer transport between real sockets on loopback: messages, snapshots in chunks, RPCs, the
// handshake's refusals, bounded queues, reconnects, and hostile bytes on the peer port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Message } from '../../src/consensus/types.ts';
import { message } from '../../src/consensus/types.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { FRAME_TYPES, PROTOCOL_VERSION, encodeFrame, encodeHello } from '../../src/transport/frame.ts';
import { requestJoinInfo } from '../../src/transport/join-request.ts';
import { encodeMessage } from '../../src/transport/message-codec.ts';
import { PeerTransport, RpcError } from '../../src/transport/peer-transport.ts';
import type { TransportHandler } from '../../src/transport/peer-transport.ts';
import type { TransportLimits } from '../../src/transport/transport-options.ts';

const CLUSTER = 0xc1c1n;
const WAIT_MS = 5_000;

interface Recorder {
  messages: Message[];
  unreachable: bigint[];
  snapshotStatus: { peer: bigint; delivered: boolean }[];
  removed: string[];
  logs: string[];
}

interface Node {
  id: bigint;
  transport: PeerTransport;
  url: string;
  seen: Recorder;
}

async function startNode(id: bigint, options: {
  clusterId?: bigint; members?: () => Map<bigint, 'member' | 'removed' | 'unknown'>; limits?: Partial<TransportLimits>; port?: number;
  rpc?: TransportHandler['onRpc'];
} = {}): Promise<Node> {
  const seen: Recorder = { messages: [], unreachable: [], snapshotStatus: [], removed: [], logs: [] };
  const log = (level: string) => (text: string) => seen.logs.push(`${level} ${text}`);
  const transport = new PeerTransport({
    selfId: id,
    clusterId: options.clusterId ?? CLUSTER,
    listenUrls: [new URL(`http://127.0.0.1:${options.port ?? 0}`)],
    random: new SeededRandom(Number(id)),
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    limits: { reconnectMinMs: 20, reconnectMaxMs: 100, handshakeTimeoutMs: 500, ...options.limits },
    handler: {
      onMessage: (m) => seen.messages.push(m),
      onUnreachable: (peer) => seen.unreachable.push(peer),
      onSnapshotStatus: (peer, delivered) => seen.snapshotStatus.push({ peer, delivered }),
      memberStatus: (peer) => options.members?.().get(peer) ?? 'member',
      onRemovedFromCluster: (text) => seen.removed.push(text),
      onRpc: options.rpc ?? (async (_from, method, params) => ({ echoed: method, params })),
      onJoinRequest: (peerUrls) => ({ clusterId: CLUSTER.toString(), asked: peerUrls }),
    },
  });
  await transport.start();
  return { id, transport, url: `http://${transport.listenAddresses[0]}`, seen };
}

function connectPair(a: Node, b: Node): void {
  a.transport.setPeers(new Map([[b.id, [b.url]]]));
  b.transport.setPeers(new Map([[a.id, [a.url]]]));
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function heartbeat(from: bigint, to: bigint, term = 1): Message {
  return message({ type: 'MsgHeartbeat', from, to, term, commit: 0 });
}

function raftFrame(m: Message): Uint8Array {
  return encodeFrame(FRAME_TYPES.RAFT, encodeMessage(m));
}

/** The HELLO a member of this cluster opens its stream to another with. */
function streamHello(fromId: bigint, toId: bigint): Uint8Array {
  return encodeFrame(FRAME_TYPES.HELLO, encodeHello({ protocolVersion: PROTOCOL_VERSION, purpose: 'stream', clusterId: CLUSTER, fromId, toId, peerUrls: [] }));
}

test('messages flow both ways, in order, once the streams are up', async () => {
  const a = await startNode(1n);
  const b = await startNode(2n);
  try {
    connectPair(a, b);
    await waitFor('streams up', () => a.transport.isConnected(2n) && b.transport.isConnected(1n));
    const batch = Array.from({ length: 50 }, (_, i) => message({
      type: 'MsgApp', from: 1n, to: 2n, term: 2, index: i, entries: [{ term: 2, index: i + 1, type: 'normal', data: Uint8Array.of(i) }],
    }));
    a.transport.send(batch);
    b.transport.send([heartbeat(2n, 1n)]);
    await waitFor('all 50 appends', () => b.seen.messages.length === 50);
    assert.deepEqual(b.seen.messages.map((m) => m.index), batch.map((m) => m.index), 'in order');
    assert.deepEqual([...b.seen.messages[7]!.entries[0]!.data], [7]);
    await waitFor('the heartbeat', () => a.seen.messages.length === 1);
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('a snapshot of several MiB streams in chunks on its own connection and is acknowledged', async () => {
  const a = await startNode(1n, { limits: { snapshotChunkBytes: 64 * 1024 } });
  const b = await startNode(2n);
  try {
    connectPair(a, b);
    await waitFor('streams up', () => a.transport.isConnected(2n));
    const data = new Uint8Array(5 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    a.transport.send([message({
      type: 'MsgSnap', from: 1n, to: 2n, term: 3,
      snapshot: { metadata: { index: 100, term: 3, confState: { voters: [1n, 2n], learners: [] } }, data },
    })]);
    await waitFor('the snapshot delivered and acknowledged', () => a.seen.snapshotStatus.length === 1, 20_000);
    assert.deepEqual(a.seen.snapshotStatus, [{ peer: 2n, delivered: true }]);
    const received = b.seen.messages.find((m) => m.type === 'MsgSnap')!;
    assert.equal(received.snapshot!.metadata.index, 100);
    assert.deepEqual(received.snapshot!.metadata.confState.voters, [1n, 2n]);
    assert.ok(Buffer.from(received.snapshot!.data).equals(Buffer.from(data)), 'every byte arrived');
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('a snapshot over the receiver\'s limit is refused and reported as not delivered', async () => {
  const a = await startNode(1n);
  const b = await startNode(2n, { limits: { maxSnapshotBytes: 1000 } });
  try {
    connectPair(a, b);
    await waitFor('streams up', () => a.transport.isConnected(2n));
    a.transport.send([message({
      type: 'MsgSnap', from: 1n, to: 2n, term: 3,
      snapshot: { metadata: { index: 9, term: 3, confState: { voters: [1n, 2n], learners: [] } }, data: new Uint8Array(5000) },
    })]);
    await waitFor('the outcome', () => a.seen.snapshotStatus.length === 1);
    assert.deepEqual(a.seen.snapshotStatus, [{ peer: 2n, delivered: false }]);
    assert.ok(b.seen.logs.some((line) => /over the limit of 1000/.test(line)), b.seen.logs.join('\n'));
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('RPCs return results and coded errors; an RPC to an unreachable peer fails at once', async () => {
  const a = await startNode(1n);
  const b = await startNode(2n, {
    rpc: async (from, method) => {
      if (method === 'fail') throw new RpcError('CONCORD_E_MEMBER_NOT_FOUND', 'no such member');
      return { from: from.toString(), method };
    },
  });
  try {
    connectPair(a, b);
    await waitFor('streams up', () => a.transport.isConnected(2n));
    assert.deepEqual(await a.transport.rpc(2n, 'hello', { x: 1 }, 2_000), { from: '1', method: 'hello' });
    await assert.rejects(a.transport.rpc(2n, 'fail', {}, 2_000), (error: RpcError) => error.code === 'CONCORD_E_MEMBER_NOT_FOUND' && error.message === 'no such member');
    await assert.rejects(a.transport.rpc(9n, 'hello', {}, 2_000), (error: RpcError) => error.code === 'CONCORD_E_PEER_UNAVAILABLE');
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('a peer of another cluster is refused with a log line naming both clusters', async () => {
  const a = await startNode(1n);
  const stranger = await startNode(2n, { clusterId: 0xbadn });
  try {
    stranger.transport.setPeers(new Map([[1n, [a.url]]]));
    await waitFor('the refusal', () => a.seen.logs.some((line) => /refused a peer connection/.test(line)));
    const line = a.seen.logs.find((entry) => /refused a peer connection/.test(entry))!;
    assert.match(line, /^error .*belongs to cluster bad, this member to c1c1/);
    assert.ok(stranger.seen.logs.some((entry) => /refused this member \(foreign-cluster\)/.test(entry)), 'the stranger logs it too');
    assert.equal(stranger.transport.isConnected(1n), false);
  } finally {
    await a.transport.stop();
    await stranger.transport.stop();
  }
});

test('a removed member is told so when it dials; an unknown member is refused', async () => {
  const status = new Map<bigint, 'member' | 'removed' | 'unknown'>([[2n, 'removed'], [3n, 'unknown']]);
  const a = await startNode(1n, { members: () => status });
  const removed = await startNode(2n);
  const unknown = await startNode(3n);
  try {
    removed.transport.setPeers(new Map([[1n, [a.url]]]));
    await waitFor('the removed member learns it', () => removed.seen.removed.length > 0);
    assert.match(removed.seen.removed[0]!, /permanently removed/);
    unknown.transport.setPeers(new Map([[1n, [a.url]]]));
    await waitFor('the unknown member is refused', () => unknown.seen.logs.some((line) => /unknown-member/.test(line)));
    assert.equal(unknown.transport.isConnected(1n), false);
  } finally {
    await a.transport.stop();
    await removed.transport.stop();
    await unknown.transport.stop();
  }
});

test('garbage, a truncated frame, a huge length prefix or no HELLO close the connection; the member keeps serving', async () => {
  const a = await startNode(1n, { limits: { partialFrameTimeoutMs: 300 } });
  const b = await startNode(2n);
  try {
    connectPair(a, b);
    await waitFor('streams up', () => b.transport.isConnected(1n));
    const port = Number(new URL(a.url).port);
    const hello = streamHello(2n, 1n);
    const hugeLength = new Uint8Array(5);
    new DataView(hugeLength.buffer).setUint32(0, 0xffff_fff0, true);
    hugeLength[4] = FRAME_TYPES.RAFT;
    const attacks: [string, Uint8Array][] = [
      ['garbage', new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['huge length before HELLO', hugeLength],
      ['huge length after HELLO', Buffer.concat([hello, hugeLength])],
      ['undecodable raft message after HELLO', Buffer.concat([hello, encodeFrame(FRAME_TYPES.RAFT, Uint8Array.of(3, 1, 2))])],
      ['spoofed sender after HELLO', Buffer.concat([hello, raftFrame(heartbeat(7n, 1n))])],
    ];
    for (const [what, bytes] of attacks) {
      const closed = await sendAndAwaitClose(port, bytes);
      assert.ok(closed, `${what}: the connection was closed`);
    }
    // A truncated frame and silence: closed after the handshake timeout.
    assert.ok(await sendAndAwaitClose(port, hello.subarray(0, 7)), 'truncated HELLO: closed');
    // After an accepted HELLO: a frame cut short, then silence, or then the end of the connection.
    const frame = raftFrame(heartbeat(2n, 1n));
    const cutShort = Buffer.concat([hello, frame.subarray(0, frame.byteLength - 3)]);
    assert.ok(await sendAndAwaitClose(port, cutShort), 'truncated frame after HELLO, then silence: closed');
    await waitFor('the silence logged', () => a.seen.logs.some((line) => /closed the peer connection .*truncated frame: \d+ bytes of a frame, then nothing for 300 ms/.test(line)));
    assert.ok(await sendAndAwaitClose(port, cutShort, { end: true }), 'truncated frame after HELLO, then the end: closed');
    await waitFor('the end logged', () => a.seen.logs.some((line) => /closed the peer connection .*truncated frame: the connection ended after \d+ bytes of a frame/.test(line)));
    assert.ok(a.seen.logs.filter((line) => /closed the peer connection/.test(line)).length >= attacks.length, a.seen.logs.join('\n'));
    assert.equal(a.transport.stats.protocolErrors >= attacks.length, true);
    assert.equal(a.seen.messages.length, 0, 'nothing hostile reached Raft');
    b.transport.send([heartbeat(2n, 1n)]);
    await waitFor('a real peer still gets through', () => a.seen.messages.length === 1);
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('a frame that arrives slowly, each byte within partialFrameTimeoutMs, is not cut: the wait restarts with every byte', async () => {
  const a = await startNode(1n, { limits: { partialFrameTimeoutMs: 800 } });
  const socket = connect(Number(new URL(a.url).port), '127.0.0.1');
  try {
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.on('data', () => {});
    socket.write(streamHello(2n, 1n));
    const frame = raftFrame(heartbeat(2n, 1n));
    // Twenty pieces 100 ms apart: the frame takes about 2 s, over twice the 800 ms timeout, while
    // each gap leaves it eight times its length.
    const pieceBytes = Math.ceil(frame.byteLength / 20);
    for (let at = 0; at < frame.byteLength; at += pieceBytes) {
      socket.write(frame.subarray(at, at + pieceBytes));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor('the message delivered', () => a.seen.messages.length === 1);
    assert.equal(socket.destroyed, false, 'the connection is still open');
    assert.ok(!a.seen.logs.some((line) => /truncated frame/.test(line)), a.seen.logs.join('\n'));
  } finally {
    socket.destroy();
    await a.transport.stop();
  }
});

test('a peer that stops reading costs a bounded queue: messages beyond it are dropped and reported', async () => {
  // A fake peer that completes the handshake and then never reads another byte.
  const silent: Socket[] = [];
  const fake: Server = createServer((socket) => {
    silent.push(socket);
    socket.once('data', () => {
      socket.write(encodeFrame(FRAME_TYPES.HELLO_OK, new Uint8Array(0)));
      socket.pause();
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  const port = (fake.address() as { port: number }).port;
  const a = await startNode(1n, { limits: { maxQueuedBytesPerPeer: 256 * 1024 } });
  try {
    a.transport.setPeers(new Map([[2n, [`http://127.0.0.1:${port}`]]]));
    await waitFor('stream up', () => a.transport.isConnected(2n));
    // 64 MiB offered to a peer that reads nothing. What is accepted fits in the queue plus what the
    // kernel's socket buffers can take (their maxima, read from the machine); the rest is dropped.
    const big = new Uint8Array(64 * 1024);
    const offered = 1_024;
    for (let i = 0; i < offered; i++) {
      a.transport.send([message({ type: 'MsgApp', from: 1n, to: 2n, term: 1, entries: [{ term: 1, index: i + 1, type: 'normal', data: big }] })]);
    }
    const accepted = offered - a.transport.stats.messagesDropped;
    const bound = 256 * 1024 + kernelSocketBufferMaxBytes() + big.byteLength;
    assert.ok(a.transport.stats.messagesDropped > 0, 'some were dropped');
    assert.ok(a.seen.unreachable.includes(2n), 'and Raft was told');
    assert.ok(accepted * big.byteLength <= bound, `accepted ${accepted} messages of 64 KiB: within the queue and socket buffers (${bound} bytes)`);
  } finally {
    await a.transport.stop();
    for (const socket of silent) socket.destroy();
    await new Promise<void>((resolve) => fake.close(() => resolve()));
  }
});

test('a stream reconnects after its peer restarts on the same port', async () => {
  const a = await startNode(1n);
  let b = await startNode(2n);
  const port = Number(new URL(b.url).port);
  try {
    connectPair(a, b);
    await waitFor('streams up', () => a.transport.isConnected(2n));
    await b.transport.stop();
    await waitFor('the stream notices', () => !a.transport.isConnected(2n));
    a.transport.send([heartbeat(1n, 2n)]);
    assert.ok(a.seen.unreachable.includes(2n), 'a message to a peer that is down is dropped and reported');
    b = await startNode(2n, { port });
    b.transport.setPeers(new Map([[1n, [a.url]]]));
    await waitFor('reconnected', () => a.transport.isConnected(2n));
    a.transport.send([heartbeat(1n, 2n)]);
    await waitFor('delivered after the restart', () => b.seen.messages.length === 1);
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

test('a join request gets the answer of any member, without cluster or member IDs', async () => {
  const a = await startNode(1n);
  try {
    const answer = await requestJoinInfo({ url: new URL(a.url), peerUrls: ['http://127.0.0.1:9'], timeoutMs: 2_000 });
    assert.deepEqual(answer, { clusterId: CLUSTER.toString(), asked: ['http://127.0.0.1:9'] });
  } finally {
    await a.transport.stop();
  }
});

/** The most bytes the kernel's send and receive buffers of one loopback connection can hold. */
function kernelSocketBufferMaxBytes(): number {
  const maxOf = (file: string) => Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]);
  return maxOf('/proc/sys/net/ipv4/tcp_wmem') + maxOf('/proc/sys/net/ipv4/tcp_rmem');
}

/** Sends bytes (then ends the connection when asked) and tells whether the other side closed it within 3 s. */
function sendAndAwaitClose(port: number, bytes: Uint8Array, options: { end?: boolean } = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (options.end ? socket.end(bytes) : socket.write(bytes)));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 3_000);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
