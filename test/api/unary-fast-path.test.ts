// The unary fast path against grpc-js itself, on the wire: one test service is served three times,
// by a grpc-js Server alone, by a grpc-js Server with the fast path in front on node:http2 (the
// member's seam, grpc-stream-seam.ts), and by the member's own HTTP/2 server (client-front.ts: the
// fast path on its streams, every other stream relayed to grpc-js), and every case sends the same
// raw HTTP/2 request to all three and compares what comes back: response headers, body bytes and
// trailers. The cases are the edges of gRPC's unary
// contract (errors with metadata, a handler that throws, malformed and oversized messages, zero or
// two messages, deadlines, cancellation) and the streams the fast path must leave to grpc-js.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants as http2Constants } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { createServer } from 'node:net';
import type { Server as NetServer } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Metadata, Server, ServerCredentials, ServerInterceptingCall, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServiceDefinition } from '@grpc/grpc-js';
import { callMetadata, firstMetadataValue, UnaryFastPath } from '../../src/api/etcd/unary-fast-path.ts';
import type { UnaryMethod } from '../../src/api/etcd/unary-fast-path.ts';
import { createDivertedConnectionInjector } from '../../src/server/grpc-stream-seam.ts';
import { GrpcJsBridge } from '../../src/server/grpc-js-bridge.ts';
import { serveClientConnection } from '../../src/server/client-front.ts';

const PATH = '/test.Echo/Echo';
const MAX_RECEIVE_BYTES = 1024;
/** Generous: the machine is shared. */
const ANSWER_TIMEOUT_MS = 10_000;

/** A request that starts with this byte does not deserialize. */
const MALFORMED_MARK = 0xff;

function deserialize(bytes: Buffer): string {
  if (bytes[0] === MALFORMED_MARK) throw new Error('malformed test request');
  return bytes.toString('utf8');
}

function serialize(value: unknown): Buffer {
  if (!Buffer.isBuffer(value)) throw new Error('not a buffer');
  return value;
}

/** Calls held by the 'hold' command, answered by the test when it wants. */
const held: sendUnaryData<unknown>[] = [];
const heldWaiters: (() => void)[] = [];

/** The test handler: the request's text says what to do. */
function handler(call: ServerUnaryCall<string, unknown>, callback: sendUnaryData<unknown>): void {
  const command = call.request;
  if (command.startsWith('ok:')) return callback(null, Buffer.from(command.slice(3)));
  switch (command) {
    case 'ok-with-trailer': {
      const trailer = new Metadata();
      trailer.set('x-trailer', 'yes');
      trailer.set('x-trailer-bin', Buffer.from([0, 1, 2]));
      return callback(null, Buffer.from('with trailer'), trailer);
    }
    case 'error-with-metadata': {
      const metadata = new Metadata();
      metadata.set('x-error', 'detail');
      return callback(Object.assign(new Error('ignored'), {
        code: status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted; 100% ünïcode\nnewline', metadata,
      }));
    }
    case 'plain-error':
      return callback(new Error('a plain error, no code'));
    case 'throw':
      throw new Error('the handler threw');
    case 'bad-response':
      return callback(null, 'not a buffer');
    case 'echo-metadata':
      return callback(null, Buffer.from(JSON.stringify({ metadata: call.metadata.toJSON(), auth: call.getAuthContext() })));
    case 'hold':
      held.push(callback);
      for (const waiter of heldWaiters.splice(0)) waiter();
      return undefined;
    default: // 'never' and anything else: no answer
      return undefined;
  }
}

function nextHeld(): Promise<sendUnaryData<unknown>> {
  return new Promise((resolve) => {
    const take = () => resolve(held.shift()!);
    if (held.length > 0) take();
    else heldWaiters.push(take);
  });
}

const definition: ServiceDefinition = {
  Echo: {
    path: PATH, requestStream: false, responseStream: false,
    requestSerialize: serialize, requestDeserialize: deserialize, responseSerialize: serialize, responseDeserialize: (bytes: Buffer) => bytes,
  },
};

interface Served {
  port: number;
  grpc: Server;
  net: NetServer;
  fastPath?: UnaryFastPath;
  bridge?: GrpcJsBridge;
}

/** grpc-js alone; grpc-js with the fast path in front through the seam; the member's own HTTP/2 server. */
type ServerKind = 'grpc-js' | 'seam' | 'own';

async function serve(kind: ServerKind): Promise<Served> {
  const grpc = new Server({ 'grpc.max_receive_message_length': MAX_RECEIVE_BYTES });
  grpc.addService(definition, { Echo: handler });
  const credentials = ServerCredentials.createInsecure();
  const method: UnaryMethod = { path: PATH, requestDeserialize: deserialize, responseSerialize: serialize, handler: handler as UnaryMethod['handler'] };
  const fastPath = new UnaryFastPath([method], { maxReceiveMessageBytes: MAX_RECEIVE_BYTES });
  let net: NetServer;
  let bridge: GrpcJsBridge | undefined;
  if (kind === 'own') {
    const started = await GrpcJsBridge.start(grpc);
    bridge = started;
    net = createServer((socket) => serveClientConnection(socket, { fastPath, bridge: started, warn: () => {}, maxConcurrentStreams: 100 }));
  } else if (kind === 'seam') {
    const diverted = createDivertedConnectionInjector(grpc, credentials, (stream, headers) => fastPath.serve(stream, headers));
    assert.equal(diverted.notDiverted, undefined, 'the seam into grpc-js (grpc-stream-seam.ts) no longer fits this grpc-js');
    net = createServer((socket) => diverted.injector.injectConnection(socket));
  } else {
    const injector = grpc.createConnectionInjector(credentials);
    net = createServer((socket) => injector.injectConnection(socket));
  }
  await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
  const address = net.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0, grpc, net,
    ...(kind === 'grpc-js' ? {} : { fastPath }), ...(bridge ? { bridge } : {}),
  };
}

/** A gRPC message: the 5-byte prefix (flag, big-endian length) and the bytes. */
function frame(message: Buffer | string, compressedFlag = 0): Buffer {
  const bytes = Buffer.from(message);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressedFlag, 0);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

interface WireAnswer {
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders;
}

/** Sends one request (its body in the given chunks) and records the answer, without the date header. */
function rawCall(session: ClientHttp2Session, chunks: Buffer[], extraHeaders: OutgoingHttpHeaders = {}): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders,
    });
    const answer: WireAnswer = { headers: {}, body: '', trailers: {} };
    const timer = setTimeout(() => reject(new Error(`no answer in ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    stream.on('response', (headers) => {
      const { date: _date, ...rest } = headers;
      answer.headers = rest;
    });
    stream.on('data', (chunk: Buffer) => {
      answer.body += chunk.toString('hex');
    });
    stream.on('trailers', (trailers) => {
      answer.trailers = { ...trailers };
    });
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    stream.on('error', reject);
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
  });
}

describe('the unary fast path answers on the wire exactly as grpc-js does', () => {
  let plain: Served;
  let fast: Served;
  let own: Served;
  let plainSession: ClientHttp2Session;
  let fastSession: ClientHttp2Session;
  let ownSession: ClientHttp2Session;

  before(async () => {
    plain = await serve('grpc-js');
    fast = await serve('seam');
    own = await serve('own');
    plainSession = connect(`http://127.0.0.1:${plain.port}`);
    fastSession = connect(`http://127.0.0.1:${fast.port}`);
    ownSession = connect(`http://127.0.0.1:${own.port}`);
  });

  after(async () => {
    plainSession.close();
    fastSession.close();
    ownSession.close();
    for (const served of [plain, fast, own]) {
      await served.bridge?.close();
      served.grpc.forceShutdown();
      await new Promise((resolve) => served.net.close(resolve));
    }
  });

  /**
   * Sends the same request to the three servers; returns the fast path's answer after checking
   * that all three agree and that the fast path served it (or left it to grpc-js) on both.
   */
  async function same(chunks: Buffer[], extraHeaders: OutgoingHttpHeaders = {}, expectFastPath = true): Promise<WireAnswer> {
    const servedBefore = [fast.fastPath!.callsServed, own.fastPath!.callsServed];
    const [expected, actual, ownActual] = await Promise.all([
      rawCall(plainSession, chunks, extraHeaders), rawCall(fastSession, chunks, extraHeaders), rawCall(ownSession, chunks, extraHeaders),
    ]);
    assert.deepEqual(actual, expected, 'the fast path on node:http2');
    assert.deepEqual(ownActual, expected, 'the member\'s own HTTP/2 server');
    const served = expectFastPath ? 1 : 0;
    assert.equal(fast.fastPath!.callsServed - servedBefore[0]!, served, expectFastPath ? 'served by the fast path' : 'left to grpc-js');
    assert.equal(own.fastPath!.callsServed - servedBefore[1]!, served, expectFastPath ? 'served by the own server\'s fast path' : 'relayed to grpc-js');
    return actual;
  }

  const CASES: [string, () => Buffer[], number][] = [
    ['a success', () => [frame('ok:hello')], status.OK],
    ['a success with trailing metadata', () => [frame('ok-with-trailer')], status.OK],
    ['an error with a code, details to percent-encode and metadata', () => [frame('error-with-metadata')], status.OUT_OF_RANGE],
    ['an error without a code', () => [frame('plain-error')], status.UNKNOWN],
    ['a handler that throws', () => [frame('throw')], status.UNKNOWN],
    ['a response that does not serialize', () => [frame('bad-response')], status.INTERNAL],
    ['a request that does not deserialize', () => [frame(Buffer.from([MALFORMED_MARK, 1, 2]))], status.INTERNAL],
    // grpc-js counts a request that deserializes to a falsy value (here '') as no request.
    ['an empty message that deserializes to a falsy value', () => [frame('')], status.UNIMPLEMENTED],
    ['an empty response message', () => [frame('ok:')], status.OK],
    ['no message at all', () => [], status.UNIMPLEMENTED],
    ['two messages', () => [Buffer.concat([frame('ok:one'), frame('ok:two')])], status.UNIMPLEMENTED],
    ['two messages, the second malformed', () => [Buffer.concat([frame('ok:one'), frame(Buffer.from([MALFORMED_MARK]))])], status.INTERNAL],
    ['two messages in two DATA frames', () => [frame('ok:one'), frame('ok:two')], status.UNIMPLEMENTED],
    ['a prefix announcing more than the receive limit', () => [frame('x'.repeat(MAX_RECEIVE_BYTES + 1))], status.RESOURCE_EXHAUSTED],
    ['a message at the receive limit', () => [frame(`ok:${'y'.repeat(MAX_RECEIVE_BYTES - 3)}`)], status.OK],
    ['a message split across many DATA frames, the prefix too', () => {
      const bytes = frame('ok:split in pieces');
      return [bytes.subarray(0, 2), bytes.subarray(2, 7), bytes.subarray(7, 12), bytes.subarray(12)];
    }, status.OK],
    ['the compressed flag with identity encoding (grpc-js reads the bytes as they are)', () => [frame('ok:flagged', 1)], status.OK],
  ];

  for (const [name, chunks, code] of CASES) {
    test(name, async () => {
      const answer = await same(chunks());
      assert.equal(answer.trailers['grpc-status'] ?? answer.headers['grpc-status'], String(code));
    });
  }

  test('a deadline that passes before the answer: DEADLINE_EXCEEDED', async () => {
    const answer = await same([frame('never')], { 'grpc-timeout': '50m' });
    assert.equal(answer.headers['grpc-status'], String(status.DEADLINE_EXCEEDED));
  });

  test('a deadline that does not pass: the answer', async () => {
    const answer = await same([frame('ok:in time')], { 'grpc-timeout': '30S' });
    assert.equal(answer.trailers['grpc-status'], '0');
  });

  test('the metadata and auth context the handler sees are grpc-js\'s', async () => {
    await same([frame('echo-metadata')], { token: 'abc', 'x-custom-bin': Buffer.from('hi').toString('base64'), 'grpc-timeout': '20S' });
  });

  test('streams the fast path leaves to grpc-js: gzip encoding, another content type, a malformed timeout, another method', async () => {
    const gzipped = gzipSync(Buffer.from('ok:zipped'));
    const zippedAnswer = await same([frame(gzipped, 1)], { 'grpc-encoding': 'gzip' }, false);
    assert.equal(zippedAnswer.trailers['grpc-status'], '0');
    await same([frame('ok:json')], { 'content-type': 'application/grpc+json' }, false);
    await same([frame('ok:timeout')], { 'grpc-timeout': 'soon' }, false);
    const unknown = await same([frame('ok:x')], { ':path': '/test.Echo/Other' }, false);
    assert.equal(unknown.headers['grpc-status'], String(status.UNIMPLEMENTED));
  });

  test('a client that cancels: the late answer is dropped, and the server keeps serving', async () => {
    for (const session of [plainSession, fastSession, ownSession]) {
      const stream = session.request({ ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      stream.end(frame('hold'));
      const callback = await nextHeld();
      const closed = new Promise((resolve) => stream.on('close', resolve));
      stream.close(http2Constants.NGHTTP2_CANCEL);
      await closed;
      callback(null, Buffer.from('too late'));
      // A second late answer through the same callback must not throw either.
      callback(null, Buffer.from('too late again'));
    }
    const answer = await same([frame('ok:still serving')]);
    assert.equal(answer.trailers['grpc-status'], '0');
  });
});

test('the seam leaves every stream to grpc-js, and says why, when it cannot put the fast path in front', async () => {
  // Server interceptors would be skipped by the fast path: with one configured, nothing is diverted.
  const grpc = new Server({ interceptors: [(_method, call) => new ServerInterceptingCall(call)] });
  grpc.addService(definition, { Echo: handler });
  const path = new UnaryFastPath([], { maxReceiveMessageBytes: MAX_RECEIVE_BYTES });
  const diverted = createDivertedConnectionInjector(grpc, ServerCredentials.createInsecure(), (stream, headers) => path.serve(stream, headers));
  assert.match(diverted.notDiverted ?? '', /interceptors/);
  const net = createServer((socket) => diverted.injector.injectConnection(socket));
  await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
  const address = net.address();
  const session = connect(`http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`);
  try {
    const answer = await rawCall(session, [frame('ok:through grpc-js')]);
    assert.equal(answer.trailers['grpc-status'], '0');
    assert.equal(answer.body, frame('through grpc-js').toString('hex'));
  } finally {
    session.close();
    grpc.forceShutdown();
    await new Promise((resolve) => net.close(resolve));
  }
});

test("a call's metadata is grpc-js's parse of its headers without the pseudo-headers and the transport's own", () => {
  const headers = {
    ':method': 'POST', ':path': '/etcdserverpb.KV/Put', ':scheme': 'http', ':authority': '127.0.0.1:2379',
    'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '30S', 'grpc-accept-encoding': 'identity,gzip',
    'grpc-encoding': 'identity', 'accept-encoding': 'gzip', 'user-agent': 'grpc-go/1.41.0', token: 'abc.123',
    'trace-bin': Buffer.from([1, 2, 255]).toString('base64'), 'x-multi': ['one', 'two'],
  };
  const expected = Metadata.fromHttp2Headers(headers);
  for (const name of ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type']) expected.remove(name);
  const metadata = callMetadata(headers);
  assert.deepEqual(metadata.toJSON(), expected.toJSON());
  assert.deepEqual(Object.keys(metadata.toJSON()).sort(), ['token', 'trace-bin', 'user-agent', 'x-multi']);
  assert.deepEqual(metadata.get('trace-bin'), [Buffer.from([1, 2, 255])]);
});

test("one metadata value read from the headers is the first of what the call's metadata holds for its key", () => {
  const headers = {
    ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', 'grpc-timeout': '30S',
    token: 'abc.123', authorization: 'Bearer \u00e9t\u00e9', empty: '', 'trace-bin': Buffer.from([1, 2, 255]).toString('base64'),
    'x-multi': ['one', 'two'],
  };
  const metadata = callMetadata(headers);
  for (const key of [':path', 'content-type', 'grpc-timeout', 'token', 'authorization', 'empty', 'trace-bin', 'x-multi', 'absent']) {
    assert.deepEqual(firstMetadataValue(headers, key), metadata.get(key)[0], key);
  }
  // A value grpc-js refuses (here, not printable ASCII) is not in the metadata, so not read either.
  assert.equal(firstMetadataValue(headers, 'authorization'), undefined);
  assert.equal(firstMetadataValue(headers, 'token'), 'abc.123');
});
