// gRPC through the proxy: a gRPC client speaks HTTP/2 without TLS (h2c) to the proxy's h2c
// listener; the pool talks h2c to gRPC backends; calls are balanced, and status codes, messages and
// metadata (which travel in HTTP/2 trailers) arrive intact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, credentials, Metadata, Server, ServerCredentials, status as GrpcStatus, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { startProxy } from './proxy-harness.ts';

const identity = (value: Buffer) => value;

async function startGrpcBackend(name: string): Promise<{ port: number; server: Server }> {
  const server = new Server();
  server.register('/echo.Echo/Say', (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
    const text = call.request.toString();
    if (text === 'fail') {
      const trailer = new Metadata();
      trailer.set('x-reason', 'asked to fail');
      callback({ code: GrpcStatus.FAILED_PRECONDITION, details: `${name} refuses`, metadata: trailer });
      return;
    }
    call.sendMetadata(new Metadata());
    callback(null, Buffer.from(`${name}:${text}:${call.metadata.get('x-user')[0] ?? ''}`));
  }, identity, identity, 'unary');
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  return { port, server };
}

function say(client: Client, text: string): Promise<{ value?: string; error?: ServiceError }> {
  const metadata = new Metadata();
  metadata.set('x-user', 'ada');
  return new Promise((resolve) => {
    client.makeUnaryRequest('/echo.Echo/Say', (value: Buffer) => value, identity, Buffer.from(text), metadata, { deadline: Date.now() + 5000 },
      (error: ServiceError | null, value?: Buffer) => resolve(error ? { error } : { value: value!.toString() }));
  });
}

test('gRPC calls are balanced over h2c backends, with status, details and trailers intact', async () => {
  const one = await startGrpcBackend('one');
  const two = await startGrpcBackend('two');
  const proxy = await startProxy({
    proxy: { h2cListen: '127.0.0.1:0' },
    pools: [{ name: 'grpc', balance: 'round-robin', upstreamProtocol: 'h2c', backends: [{ address: `127.0.0.1:${one.port}` }, { address: `127.0.0.1:${two.port}` }] }],
  });
  const client = new Client(`127.0.0.1:${proxy.proxy.h2cAddress!.port}`, credentials.createInsecure());
  try {
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await say(client, `hi${i}`));
    for (const reply of replies) assert.equal(reply.error, undefined, reply.error?.message);
    const names = replies.map((reply) => reply.value!.split(':')[0]);
    assert.deepEqual(new Set(names), new Set(['one', 'two']), 'both backends served');
    assert.match(replies[0]!.value!, /^(one|two):hi0:ada$/, 'request metadata reaches the backend');
    const failed = await say(client, 'fail');
    assert.equal(failed.error?.code, GrpcStatus.FAILED_PRECONDITION);
    assert.match(failed.error!.details, /refuses/);
    assert.deepEqual(failed.error!.metadata.get('x-reason'), ['asked to fail']);
  } finally {
    client.close();
    await proxy.stop();
    one.server.forceShutdown();
    two.server.forceShutdown();
  }
});
