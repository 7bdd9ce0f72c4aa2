// KV.Put's hand-written codec against the generic one (protobufjs through proto-loader, which the
// rest of the API uses and test/api/protos.test.ts checks against a real etcd): every request the
// generic encoder writes decodes to the same PutRequest, every response decodes with the generic
// decoder to what the generic path would have sent, and malformed bytes are refused by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadEtcdProtos, type PutRequest as WireShapePutRequest } from '../../src/api/etcd/proto-loader.ts';
import { decodePutRequest, PutCodecError, PutResponseEncoder, withPutCodec } from '../../src/api/etcd/put-codec.ts';
import { putRequestFromWire, putResponseToWire, type HeaderSource } from '../../src/api/etcd/wire.ts';
import type { KeyValue, PutResponse } from '../../src/kv/types.ts';

const protos = loadEtcdProtos();
const genericRequest = protos.messageType<WireShapePutRequest>('etcdserverpb.PutRequest');
const genericResponse = protos.messageType('etcdserverpb.PutResponse');

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const bytesArbitrary = fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes));
const revisionArbitrary = fc.oneof(fc.constant(0), fc.nat(1000), fc.maxSafeNat());

const putRequestArbitrary = fc.record({
  key: bytesArbitrary,
  value: bytesArbitrary,
  lease: fc.oneof(fc.constant(0n), fc.bigInt(INT64_MIN, INT64_MAX), fc.bigInt(1n, 2n ** 20n)),
  prev_kv: fc.boolean(),
  ignore_value: fc.boolean(),
  ignore_lease: fc.boolean(),
}, { requiredKeys: [] });

const keyValueArbitrary: fc.Arbitrary<KeyValue> = fc.record({
  key: bytesArbitrary,
  createRevision: revisionArbitrary,
  modRevision: revisionArbitrary,
  version: revisionArbitrary,
  value: bytesArbitrary,
  lease: fc.oneof(fc.constant(0n), fc.bigInt(INT64_MIN, INT64_MAX)),
});

const putResponseArbitrary: fc.Arbitrary<PutResponse> = fc.record({
  header: fc.record({ revision: revisionArbitrary }),
  prevKv: fc.option(keyValueArbitrary, { nil: undefined }),
}, { requiredKeys: ['header'] });

const headerSourceArbitrary: fc.Arbitrary<HeaderSource> = fc.record({
  clusterId: fc.oneof(fc.constant(0n), fc.bigInt(1n, UINT64_MAX)),
  memberId: fc.oneof(fc.constant(0n), fc.bigInt(1n, UINT64_MAX)),
  term: fc.oneof(fc.constant(0), fc.nat(1000), fc.maxSafeNat()),
}).map(({ clusterId, memberId, term }) => ({ clusterId, memberId, raftTerm: () => term }));

/** What the generic request path hands the KV service: protobufjs's decoding, then wire.ts's conversion. */
function genericDecode(bytes: Buffer) {
  return putRequestFromWire(genericRequest.deserialize(bytes));
}

test('property: a request the generic encoder wrote decodes to the PutRequest the generic path produces', () => {
  fc.assert(
    fc.property(putRequestArbitrary, (request) => {
      const bytes = genericRequest.serialize(request);
      assert.deepEqual(decodePutRequest(bytes), genericDecode(bytes));
    }),
    { numRuns: 500 },
  );
});

test('property: a response decodes with the generic decoder to what the generic encoder would have sent', () => {
  fc.assert(
    fc.property(putResponseArbitrary, headerSourceArbitrary, (response, source) => {
      const handWritten = genericResponse.deserialize(new PutResponseEncoder(source).encode(response));
      const generic = genericResponse.deserialize(genericResponse.serialize(putResponseToWire(response, source)));
      assert.deepEqual(handWritten, generic);
    }),
    { numRuns: 500 },
  );
});

test('a request with unknown fields, repeated fields and fields out of order decodes as proto3 says', () => {
  const bytes = Buffer.from([
    0x30, 0x02, // ignore_lease = true (any non-zero varint is true)
    0x12, 0x01, 0x61, // value = "a" (overwritten below)
    0x48, 0x96, 0x01, // unknown field 9, varint 150
    0x0a, 0x02, 0x6b, 0x31, // key = "k1"
    0x55, 0x01, 0x02, 0x03, 0x04, // unknown field 10, fixed32
    0x59, 1, 2, 3, 4, 5, 6, 7, 8, // unknown field 11, fixed64
    0x62, 0x03, 0x78, 0x79, 0x7a, // unknown field 12, bytes
    0x12, 0x02, 0x76, 0x32, // value = "v2": the last one wins
    0x18, 0x07, // lease = 7
  ]);
  assert.deepEqual(decodePutRequest(bytes), {
    key: Buffer.from('k1'), value: Buffer.from('v2'), lease: 7n, prevKv: false, ignoreValue: false, ignoreLease: true,
  });
  assert.deepEqual(decodePutRequest(bytes), genericDecode(bytes));
});

test('an empty request is the all-zero PutRequest', () => {
  assert.deepEqual(decodePutRequest(Buffer.alloc(0)), {
    key: Buffer.alloc(0), value: Buffer.alloc(0), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false,
  });
});

test('int64 leases at both ends survive, negative ones as ten-byte varints', () => {
  for (const lease of [INT64_MIN, -1n, 1n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 56n, INT64_MAX]) {
    assert.equal(decodePutRequest(genericRequest.serialize({ key: Buffer.from('k'), lease })).lease, lease, String(lease));
  }
});

test('malformed requests are refused with what is wrong', () => {
  const cases: [string, number[], RegExp][] = [
    ['a key longer than the message', [0x0a, 0x05, 0x61], /runs past the message's end/],
    ['a varint cut short', [0x18, 0x80], /ends inside a varint/],
    ['a varint over ten bytes', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 10 bytes/],
    ['a known field with the wrong wire type', [0x08, 0x01], /field 1 \(key\) has wire type 0, expected 2/],
    ['a group (wire type 3)', [0x4b], /wire type 3/],
    ['a fixed64 cut short', [0x59, 1, 2], /runs past the message's end/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(() => decodePutRequest(Buffer.from(bytes)), (error: unknown) => error instanceof PutCodecError && message.test(error.message), what);
  }
});

test('a negative revision is a bug, not a silently wrapped number', () => {
  const encoder = new PutResponseEncoder({ clusterId: 1n, memberId: 2n, raftTerm: () => 3 });
  assert.throws(() => encoder.encode({ header: { revision: -1 } }), /revision -1/);
});

test('only the server side of Put changes: clients keep the generic request encoder and response decoder', () => {
  const generic = protos.services.KV;
  const fast = withPutCodec(generic);
  assert.equal(fast.Put!.requestSerialize, generic.Put!.requestSerialize);
  assert.equal(fast.Put!.responseDeserialize, generic.Put!.responseDeserialize);
  assert.equal(fast.Put!.path, generic.Put!.path);
  assert.equal(fast.Range, generic.Range);
  assert.notEqual(generic.Put!.requestDeserialize, decodePutRequest, 'the shared definition itself is left as it was');
});
