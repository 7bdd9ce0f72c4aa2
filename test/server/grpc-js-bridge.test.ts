// The streams the member's own HTTP/2 server relays to grpc-js (src/server/grpc-js-bridge.ts),
// with real clients on loopback: server streaming under a small client window with a slow reader
// (every byte, then the trailers), bidirectional streaming both ways, a client's cancel reaching the
// handler, one peer address per client connection (what --max-watches-per-connection counts), and
// the internal port refusing connections the bridge did not open.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect as connectTcp, createServer } from 'node:net';
import type { Server as NetServer } from 'node:net';
import { Server } from '@grpc/grpc-js';
import type { ServerDuplexStream, ServerWritableStream, ServiceDefinition } from '@grpc/grpc-js';
import { UnaryFastPath } from '../../src/api/etcd/unary-fast-path.ts';
import { BRIDGE_MATCH_TIMEOUT_MS, GrpcJsBridge } from '../../src/server/grpc-js-bridge.ts';
import { serveClientConnection } from '../../src/server/client-front.ts';

const CHUNK_BYTES = 32 * 1024;
const CHUNKS = 40;
/** Generous: the machine is shared. */
const WAIT_MS = 20_000;

const identity = (bytes: Buffer) => bytes;
const definition: ServiceDefinition = {
  Download: { path: '/test.Bridge/Download', requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  Chat: { path: '/test.Bridge/Chat', requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};

/** What the Chat handler saw: its peer, and whether its call was cancelled. */
const chats: { peer: string; cancelled: boolean }[] = [];

function download(call: ServerWritableStream<Buffer, Buffer>): void {
  for (let i = 0; i < CHUNKS; i++) call.write(Buffer.alloc(CHUNK_BYTES, i));
  call.end();
}

function chat(call: ServerDuplexStream<Buffer, Buffer>): void {
  const record = { peer: call.getPeer(), cancelled: false };
  chats.push(record);
  call.on('cancelled', () => { record.cancelled = true; });
  call.on('data', (message: Buffer) => call.write(Buffer.concat([Buffer.from('echo:'), message])));
  call.on('end', () => call.end());
}

function grpcFrame(message: Buffer | string): Buffer {
  const bytes = Buffer.from(message);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      return setTimeout(check, 10);
    };
    check();
  });
}

describe('streams relayed to grpc-js', () => {
  let grpc: Server;
  let bridge: GrpcJsBridge;
  let net: NetServer;
  let url: string;

  before(async () => {
    grpc = new Server();
    grpc.addService(definition, { Download: download, Chat: chat });
    bridge = await GrpcJsBridge.start(grpc);
    net = createServer((socket) => serveClientConnection(socket, { fastPath: new UnaryFastPath([], { maxReceiveMessageBytes: 1024 }), bridge, warn: () => {}, maxConcurrentStreams: 100 }));
    await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
    const address = net.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });

  after(async () => {
    await bridge.close();
    grpc.forceShutdown();
    await new Promise((resolve) => net.close(resolve));
  });

  test('server streaming under a small window and a slow reader: every byte, then the trailers', async () => {
    // A 16 KiB stream window and a reader that pauses after every chunk keep data waiting in the
    // member's stream while grpc-js has already sent its trailers.
    const session = connectHttp2(url, { settings: { initialWindowSize: 16_384 } });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Bridge/Download', 'content-type': 'application/grpc', te: 'trailers' });
      let received = 0;
      let trailers: Record<string, unknown> | undefined;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        stream.pause();
        setTimeout(() => stream.resume(), 1);
      });
      stream.on('trailers', (headers) => { trailers = headers; });
      const closed = new Promise((resolve) => stream.on('close', resolve));
      stream.end(grpcFrame(''));
      await closed;
      assert.equal(received, CHUNKS * (CHUNK_BYTES + 5));
      assert.equal(trailers?.['grpc-status'], '0');
    } finally {
      session.close();
    }
  });

  test('bidirectional streaming relays both ways, and a client\'s cancel reaches the handler', async () => {
    const session = connectHttp2(url);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Bridge/Chat', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      let echoed = '';
      stream.on('data', (chunk: Buffer) => { echoed += chunk.toString('latin1'); });
      stream.write(grpcFrame('one'));
      await until(() => echoed.includes('echo:one'), 'the first echo');
      stream.write(grpcFrame('two'));
      await until(() => echoed.includes('echo:two'), 'the second echo');
      const chatRecord = chats.at(-1)!;
      stream.close(0x8);
      await until(() => chatRecord.cancelled, 'the handler to see the cancel');
    } finally {
      session.close();
    }
  });

  test('each client connection is its own peer to grpc-js', async () => {
    const sessions: ClientHttp2Session[] = [connectHttp2(url), connectHttp2(url)];
    try {
      const before = chats.length;
      for (const session of sessions) {
        for (let i = 0; i < 2; i++) {
          const stream = session.request({ ':method': 'POST', ':path': '/test.Bridge/Chat', 'content-type': 'application/grpc', te: 'trailers' });
          stream.on('error', () => {});
          stream.resume();
          stream.end(grpcFrame('hi'));
        }
      }
      await until(() => chats.length === before + 4, 'four calls');
      const peers = chats.slice(before).map((record) => record.peer);
      assert.equal(peers[0], peers[1], 'two streams of one connection: one peer');
      assert.equal(peers[2], peers[3]);
      assert.notEqual(peers[0], peers[2], 'two connections: two peers');
      assert.notEqual(peers[0], 'unknown');
    } finally {
      for (const session of sessions) session.close();
    }
  });

  test('the internal port closes a connection the bridge did not open', async () => {
    const internalPort = (bridge as unknown as { port: number }).port;
    const socket = connectTcp(internalPort, '127.0.0.1');
    socket.on('error', () => {});
    const closedAfterMs = await new Promise<number>((resolve) => {
      const started = Date.now();
      socket.on('close', () => resolve(Date.now() - started));
    });
    // Closed once the match timeout has passed; the upper bound allows for a busy machine.
    assert.ok(closedAfterMs < 4 * BRIDGE_MATCH_TIMEOUT_MS, `closed after ${closedAfterMs} ms`);
  });
});
