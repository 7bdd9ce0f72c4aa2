// Bytes from the network that are not a valid request: the member answers with an error and keeps
// serving. (Broader fuzzing of every decoder belongs to the hardening work; this covers the gRPC
// entry points of the store.)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants } from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import { credentials } from '@grpc/grpc-js';

let server: StoreServer;
let dataRoot: string;

before(async () => {
  dataRoot = mkdtempSync(join(tmpdir(), 'concord-hostile-'));
  server = await StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    name: 'hostile', dataDir: join(dataRoot, 'd'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0',
  })), { logger: { info: () => {}, warn: () => {}, error: () => {} } });
});

after(async () => {
  await server.stop();
  rmSync(dataRoot, { recursive: true, force: true });
});

/** Sends one gRPC frame with the given message bytes and returns the grpc-status it gets. */
function rawGrpcCall(path: string, message: Uint8Array, declaredLength = message.byteLength): Promise<{ status: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${server.clientAddresses[0]}`);
    session.on('error', reject);
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const frame = Buffer.alloc(5 + message.byteLength);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(declaredLength, 1);
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
      resolve({ status, message: details });
    });
    stream.on('error', reject);
    stream.setTimeout(5_000, () => {
      session.destroy();
      reject(new Error('no answer within 5 s'));
    });
    stream.end(frame);
  });
}

type UnaryMethod = (request: object, callback: (error: Error | null) => void) => void;
type KvClient = { Put: UnaryMethod; Range: UnaryMethod; close(): void };

function kvClient(): KvClient {
  return new (loadEtcdProtos().clients.KV)(server.clientAddresses[0]!, credentials.createInsecure()) as unknown as KvClient;
}

function putViaClient(key: string, value: string): Promise<void> {
  const client = kvClient();
  return new Promise((resolve, reject) => {
    client.Put({ key: Buffer.from(key), value: Buffer.from(value) }, (error: Error | null) => {
      client.close();
      if (error) reject(error);
      else resolve();
    });
  });
}

test('a malformed protobuf gets an error status, and the member keeps serving', async () => {
  const garbage = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x01]); // a length that runs past the end
  const answer = await rawGrpcCall('/etcdserverpb.KV/Put', garbage);
  assert.notEqual(answer.status, '0', `garbage must not succeed (got status ${answer.status})`);
  await putViaClient('still', 'alive');
});

test('a request for an unknown method is UNIMPLEMENTED, not a crash', async () => {
  const answer = await rawGrpcCall('/etcdserverpb.KV/NoSuchMethod', new Uint8Array(0));
  assert.equal(answer.status, '12');
  await putViaClient('still', 'alive');
});

test('extreme values: a revision beyond 2^53 is refused with a clear error', async () => {
  const client = kvClient();
  const error = await new Promise<Error & { details?: string }>((resolve) => {
    client.Range({ key: Buffer.from('a'), revision: '9223372036854775807' }, (failure: Error | null) => resolve(failure as Error));
  });
  client.close();
  assert.ok(error, 'the range failed');
  assert.match(error.details ?? error.message, /revision .* is out of range|future revision/);
});
