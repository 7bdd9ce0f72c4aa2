// The unary fast path in a real member: the KV calls of the grpc-js client and of etcdctl (with and
// without auth, over TLS with certificate logins) get the same answers from a member with the fast
// path as from one where grpc-js serves every call, and the fast path really served them (its call
// count: if a grpc-js upgrade breaks the seam in grpc-stream-seam.ts, these tests fail).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../../src/api/etcd/proto-loader.ts';
import type { StoreServer } from '../../src/server/store-server.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { makeCa, makeSignedCertificate } from '../support/certificates.ts';
import { startTestMember, useTestDataRoot } from '../support/store-member.ts';

const dataRoot = useTestDataRoot('concord-fast-path-');
const protos = loadEtcdProtos();

const MAX_REQUEST_BYTES = 2048;
const MAX_TXN_OPS = 4;
/** The member's grpc.max_receive_message_length: --max-request-bytes plus etcd's 512 KiB of gRPC overhead. */
const MAX_RECEIVE_BYTES = MAX_REQUEST_BYTES + 512 * 1024;
/** Generous: the machine is shared. */
const CALL_DEADLINE_MS = 10_000;
const LIMIT_FLAGS = { maxRequestBytes: String(MAX_REQUEST_BYTES), maxTxnOps: String(MAX_TXN_OPS) };

type KvClient = Record<string, (request: object, metadata: Metadata, options: { deadline: number },
  callback: (error: ServiceError | null, response: Record<string, unknown>) => void) => void> & { close(): void };

const key = (text: string) => Buffer.from(text);

/** A call's answer as compared: the response without the member's own ids, or the error's code, text and metadata. */
function kvCall(client: KvClient, method: string, request: object): Promise<unknown> {
  return new Promise((resolve) => {
    client[method]!.call(client, request, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error, response) => {
      if (error) {
        // node:http2 adds a date header to every answer; the member's own HTTP/2 server, like
        // etcd's grpc-go, sends none.
        const { date: _date, ...metadata } = error.metadata.toJSON();
        resolve({ code: error.code, details: error.details, metadata });
        return;
      }
      const { header, ...rest } = response;
      const { cluster_id: _cluster, member_id: _member, ...sameOnBoth } = header as Record<string, unknown>;
      resolve({ header: sameOnBoth, ...rest });
    });
  });
}

/** The same script of KV calls, on a fresh member: successes and etcd's errors. */
async function kvScript(member: StoreServer): Promise<unknown[]> {
  const client = new protos.clients.KV(member.clientAddresses[0]!, credentials.createInsecure()) as unknown as KvClient;
  try {
    const outcomes: unknown[] = [];
    const step = async (method: string, request: object) => outcomes.push([method, request, await kvCall(client, method, request)]);
    await step('Put', { key: key('a'), value: key('1') });
    await step('Put', { key: key('a'), value: key('2'), prev_kv: true });
    await step('Put', { key: key('b'), value: key('3') });
    await step('Range', { key: key('a') });
    await step('Range', { key: key('a'), range_end: key('c'), serializable: true });
    await step('Txn', {
      compare: [{ key: key('a'), target: 'VALUE', result: 'EQUAL', value: key('2') }],
      success: [{ request_put: { key: key('c'), value: key('4') } }, { request_range: { key: key('a') } }],
      failure: [],
    });
    await step('DeleteRange', { key: key('b'), prev_kv: true });
    await step('Compact', { revision: 3 });
    await step('Range', { key: key('a'), revision: 2 }); // compacted
    await step('Range', { key: key('a'), revision: 1000 }); // future revision
    await step('Put', { key: key(''), value: key('x') }); // no key
    await step('Put', { key: key('big'), value: Buffer.alloc(MAX_REQUEST_BYTES + 1) }); // over --max-request-bytes
    await step('Txn', { success: Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => ({ request_put: { key: key(`t${i}`) } })) });
    await step('Compact', { revision: 2 }); // already compacted
    return outcomes;
  } finally {
    client.close();
  }
}

/** A raw request whose prefix announces more than the member receives: its answer, without the date. */
function oversizedPrefixAnswer(member: StoreServer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${member.clientAddresses[0]}`);
    const stream = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' });
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(MAX_RECEIVE_BYTES + 1, 1);
    let answer: unknown;
    stream.on('response', (headers) => {
      const { date: _date, ...rest } = headers;
      answer = rest;
    });
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve(answer);
    });
    stream.resume();
    stream.end(Buffer.concat([prefix, Buffer.alloc(16)]));
  });
}

/** etcdctl's answer as compared: exit code, output and its last line of errors (earlier ones are retry logs with times). */
async function etcdctlOutcome(endpoint: string, args: string[], stdin?: string): Promise<[number | null, string, string]> {
  const outcome = await runEtcdctl({ endpoint, args, ...(stdin === undefined ? {} : { stdin }) });
  return [outcome.exitCode, outcome.stdout, outcome.stderr.trim().split('\n').at(-1) ?? ''];
}

describe('KV calls without TLS or auth', () => {
  let fast: StoreServer;
  let plain: StoreServer;

  before(async () => {
    fast = await startTestMember(dataRoot, 'fast', LIMIT_FLAGS);
    plain = await startTestMember(dataRoot, 'plain', LIMIT_FLAGS, { unaryFastPath: false });
  });

  after(async () => {
    await fast?.stop();
    await plain?.stop();
  });

  test('the grpc-js client gets the same answers, successes and errors, with and without the fast path', async () => {
    const before = fast.fastPathCalls();
    const [fastOutcomes, plainOutcomes] = [await kvScript(fast), await kvScript(plain)];
    assert.deepEqual(fastOutcomes, plainOutcomes);
    assert.equal(fast.fastPathCalls() - before, fastOutcomes.length, 'every KV call was served by the fast path');
    assert.equal(plain.fastPathCalls(), 0);
    // The script does reach etcd's errors, not only successes.
    const texts = JSON.stringify(fastOutcomes);
    for (const expected of ['required revision has been compacted', 'required revision is a future revision', 'key is not provided',
      'request is too large', 'too many operations in txn request']) {
      assert.ok(texts.includes(expected), `the script gets "${expected}"`);
    }
  });

  test('a request message over the receive limit is refused by its prefix, as grpc-js refuses it', async () => {
    const before = fast.fastPathCalls();
    const answer = await oversizedPrefixAnswer(fast);
    assert.deepEqual(answer, await oversizedPrefixAnswer(plain));
    assert.equal(fast.fastPathCalls() - before, 1);
    assert.equal((answer as Record<string, string>)['grpc-status'], '8'); // RESOURCE_EXHAUSTED
  });

  test('etcdctl put, get, del and txn give the same output', async () => {
    const before = fast.fastPathCalls();
    const script = async (member: StoreServer) => {
      const endpoint = member.clientAddresses[0]!;
      return [
        await etcdctlOutcome(endpoint, ['put', 'ctl/one', 'uno']),
        await etcdctlOutcome(endpoint, ['put', 'ctl/two', 'dos']),
        await etcdctlOutcome(endpoint, ['get', 'ctl/', '--prefix']),
        await etcdctlOutcome(endpoint, ['txn'], 'value("ctl/one") = "uno"\n\nput ctl/three tres\n\nput ctl/four cuatro\n\n'),
        await etcdctlOutcome(endpoint, ['del', 'ctl/one']),
        await etcdctlOutcome(endpoint, ['get', 'ctl/', '--prefix', '--keys-only']),
        await etcdctlOutcome(endpoint, ['get', 'ctl/two', '--rev=1']),
      ];
    };
    const fastOutcomes = await script(fast);
    assert.deepEqual(fastOutcomes, await script(plain));
    assert.equal(fastOutcomes[2]![1], 'ctl/one\nuno\nctl/two\ndos\n');
    assert.ok(fast.fastPathCalls() - before >= fastOutcomes.length);
  });
});

describe('KV calls over TLS with client certificates and auth on', () => {
  let fast: StoreServer;
  let plain: StoreServer;
  let tlsArgs: string[];

  before(async () => {
    const ca = makeCa(dataRoot.dir, 'fast-path-ca');
    const server = makeSignedCertificate(dataRoot.dir, 'server', ca);
    // The client certificate's common name is the user it logs in as.
    const client = makeSignedCertificate(dataRoot.dir, 'client', ca);
    tlsArgs = ['--cacert', ca.cert, '--cert', client.cert, '--key', client.key];
    const tlsFlags = {
      ...LIMIT_FLAGS, listenClientUrls: 'https://127.0.0.1:0', certFile: server.cert, keyFile: server.key, trustedCaFile: ca.cert, clientCertAuth: 'true',
    };
    fast = await startTestMember(dataRoot, 'tls-fast', tlsFlags);
    plain = await startTestMember(dataRoot, 'tls-plain', tlsFlags, { unaryFastPath: false });
    for (const member of [fast, plain]) {
      const endpoint = `https://${member.clientAddresses[0]}`;
      for (const args of [
        ['user', 'add', 'root', '--new-user-password=rootpw'], ['role', 'add', 'root'], ['user', 'grant-role', 'root', 'root'],
        ['role', 'add', 'cn-role'], ['role', 'grant-permission', 'cn-role', 'readwrite', 'cn/', '--prefix=true'],
        ['user', 'add', 'client', '--no-password'], ['user', 'grant-role', 'client', 'cn-role'], ['auth', 'enable'],
      ]) {
        const [exitCode, , error] = await etcdctlOutcome(endpoint, [...tlsArgs, ...args]);
        assert.equal(exitCode, 0, `etcdctl ${args.join(' ')}: ${error}`);
      }
    }
  });

  after(async () => {
    await fast?.stop();
    await plain?.stop();
  });

  test('etcdctl as root (a token), as the certificate\'s user and refused: the same answers with and without the fast path', async () => {
    const before = fast.fastPathCalls();
    const script = async (member: StoreServer) => {
      const endpoint = `https://${member.clientAddresses[0]}`;
      const root = [...tlsArgs, '--user', 'root:rootpw'];
      return [
        await etcdctlOutcome(endpoint, [...root, 'put', 'k', 'v']),
        await etcdctlOutcome(endpoint, [...root, 'get', 'k']),
        await etcdctlOutcome(endpoint, [...root, 'txn'], 'value("k") = "v"\n\nput k2 v2\n\n\n'),
        await etcdctlOutcome(endpoint, [...root, 'del', 'k']),
        await etcdctlOutcome(endpoint, [...tlsArgs, 'put', 'cn/mine', 'yes']),
        await etcdctlOutcome(endpoint, [...tlsArgs, 'get', 'cn/mine']),
        await etcdctlOutcome(endpoint, [...tlsArgs, 'put', 'elsewhere', 'no']),
        await etcdctlOutcome(endpoint, [...tlsArgs, 'get', 'k2']),
        await etcdctlOutcome(endpoint, [...tlsArgs, 'del', 'k2']),
      ];
    };
    const fastOutcomes = await script(fast);
    assert.deepEqual(fastOutcomes, await script(plain));
    assert.deepEqual(fastOutcomes[0], [0, 'OK\n', '']);
    assert.deepEqual(fastOutcomes[4], [0, 'OK\n', ''], 'the certificate\'s common name is the user');
    assert.deepEqual(fastOutcomes[5], [0, 'cn/mine\nyes\n', '']);
    assert.deepEqual(fastOutcomes[6]!.slice(0, 2), [1, '']);
    assert.match(fastOutcomes[6]![2], /permission denied/);
    assert.ok(fast.fastPathCalls() - before >= fastOutcomes.length);
    assert.equal(plain.fastPathCalls(), 0);
  });
});
