// The small building blocks: CRC-32C, the binary reader and writer, key ranges, and the error
// catalog's etcd texts and gRPC codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32c, crc32cUpdate } from '../../src/kv/crc32c.ts';
import { ByteReader, ByteWriter } from '../../src/kv/binary.ts';
import { KvError, KV_ERRORS, isKvError } from '../../src/kv/errors.ts';
import { compareBytes, fromByteString, keyInRange, keyRangeOf, prefixRangeEnd, toByteString } from '../../src/kv/key-range.ts';
import { b } from './helpers.ts';

test('CRC-32C matches the standard check value and can be computed in pieces', () => {
  assert.equal(crc32c(b('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32cUpdate(crc32cUpdate(0, b('12345')), b('6789')), 0xe3069283);
});

test('property: the binary writer and reader round-trip every value they accept', () => {
  fc.assert(
    fc.property(
      fc.maxSafeNat(),
      fc.maxSafeInteger(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.uint8Array({ maxLength: 300 }),
      (unsigned, signed, int64, uint64, bytes) => {
        const writer = new ByteWriter();
        writer.uvarint(unsigned);
        writer.int(signed);
        writer.int64(int64);
        writer.uint64(uint64);
        writer.bytes(bytes);
        const reader = new ByteReader(writer.finish(), (detail) => new Error(detail));
        assert.equal(reader.uvarint('u'), unsigned);
        assert.equal(reader.int('i'), signed === 0 ? 0 : signed);
        assert.equal(reader.int64('l'), int64);
        assert.equal(reader.uint64('m'), uint64);
        assert.deepEqual(reader.bytes('b'), bytes);
        reader.expectEnd('test');
      },
    ),
  );
});

test('the writer refuses numbers it cannot encode losslessly', () => {
  const writer = new ByteWriter();
  assert.throws(() => writer.uvarint(-1), KvError);
  assert.throws(() => writer.uvarint(2 ** 53), KvError);
  assert.throws(() => writer.int(0.5), KvError);
  assert.throws(() => writer.int64(2n ** 63n), KvError);
  assert.throws(() => writer.uint64(-1n), KvError);
});

test('byte strings preserve byte order, including bytes above 0x7f and long keys', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), (x, y) => {
      assert.equal(Math.sign(compareBytes(x, y)), Math.sign(toByteString(x) < toByteString(y) ? -1 : toByteString(x) > toByteString(y) ? 1 : 0));
      assert.deepEqual(fromByteString(toByteString(x)), x);
    }),
  );
  const long = new Uint8Array(100_000).fill(0xfe);
  assert.deepEqual(fromByteString(toByteString(long)), long);
});

test('key ranges and prefix ends follow clientv3', () => {
  assert.deepEqual(prefixRangeEnd(b('abc')), b('abd'));
  assert.deepEqual(prefixRangeEnd(new Uint8Array([0x61, 0xff])), new Uint8Array([0x62]));
  assert.deepEqual(prefixRangeEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]), 'all 0xff: every key from the prefix on');
  const fromKey = keyRangeOf(b('m'), new Uint8Array([0]));
  assert.equal(keyInRange(fromKey, 'z'), true);
  assert.equal(keyInRange(fromKey, 'a'), false);
  assert.equal(keyInRange(keyRangeOf(b('m'), undefined), 'm'), true);
  assert.equal(keyInRange(keyRangeOf(b('m'), new Uint8Array(0)), 'ma'), false);
});

test('the catalog carries etcd\'s exact texts and gRPC codes', () => {
  const expected: [keyof typeof KV_ERRORS, string, number][] = [
    ['CONCORD_E_KV_EMPTY_KEY', 'etcdserver: key is not provided', 3],
    ['CONCORD_E_KV_KEY_NOT_FOUND', 'etcdserver: key not found', 3],
    ['CONCORD_E_KV_VALUE_PROVIDED', 'etcdserver: value is provided', 3],
    ['CONCORD_E_KV_LEASE_PROVIDED', 'etcdserver: lease is provided', 3],
    ['CONCORD_E_KV_TOO_MANY_OPS', 'etcdserver: too many operations in txn request', 3],
    ['CONCORD_E_KV_DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request', 3],
    ['CONCORD_E_KV_COMPACTED', 'etcdserver: mvcc: required revision has been compacted', 11],
    ['CONCORD_E_KV_FUTURE_REVISION', 'etcdserver: mvcc: required revision is a future revision', 11],
    ['CONCORD_E_KV_NO_SPACE', 'etcdserver: mvcc: database space exceeded', 8],
    ['CONCORD_E_KV_REQUEST_TOO_LARGE', 'etcdserver: request is too large', 3],
    ['CONCORD_E_LEASE_NOT_FOUND', 'etcdserver: requested lease not found', 5],
    ['CONCORD_E_LEASE_EXISTS', 'etcdserver: lease already exists', 9],
    ['CONCORD_E_LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL', 11],
    ['CONCORD_E_KV_CORRUPT', 'etcdserver: corrupt cluster', 15],
  ];
  for (const [code, message, grpcCode] of expected) {
    const error = new KvError(code, 'detail for logs');
    assert.equal(error.message, message, 'etcd texts are never decorated');
    assert.equal(error.grpcCode, grpcCode);
    assert.equal(error.detail, 'detail for logs');
    assert.ok(isKvError(error, code));
  }
  assert.equal(new KvError('CONCORD_E_KV_INVALID_ARGUMENT', 'limit is 0.5').message, 'concord: invalid argument: limit is 0.5');
});

test('an in-place ByteWriter never moves what it wrote: early views read the same bytes to the end, also past its reservation', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 30 }), fc.integer({ min: 1, max: 20_000 }), (pieces, reservedBytes) => {
    const writer = new ByteWriter({ growInPlaceBytes: reservedBytes });
    const views: { view: Uint8Array; piece: Uint8Array }[] = [];
    for (const piece of pieces) {
      const start = writer.sizeBytes;
      writer.raw(piece);
      views.push({ view: writer.viewFrom(start), piece });
    }
    for (const { view, piece } of views) assert.deepEqual(view, piece);
    const whole = Uint8Array.from(pieces.flatMap((piece) => [...piece]));
    assert.deepEqual(writer.viewFrom(0), whole);
    assert.deepEqual(writer.finish(), whole);
  }));
});

test('ByteWriter.viewFrom on an ordinary writer: the bytes written since an offset, checksummed piecewise like the whole', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (pieces) => {
    const writer = new ByteWriter();
    let crc = 0;
    let checksummed = 0;
    for (const piece of pieces) {
      writer.raw(piece);
      const view = writer.viewFrom(checksummed);
      assert.deepEqual([...view], [...piece], 'exactly what was written since the offset');
      crc = crc32cUpdate(crc, view);
      checksummed = writer.sizeBytes;
    }
    assert.equal(crc, crc32cUpdate(0, writer.finish()), 'piecewise checksum equals the whole');
  }));
});

test('an in-place ByteWriter grows a megabyte at a time within its reservation, then moves once, and every view stays right', () => {
  const writer = new ByteWriter({ growInPlaceBytes: 2 * 1024 * 1024 });
  const views: { view: Uint8Array; first: number }[] = [];
  for (let i = 0; i < 48; i++) {
    const start = writer.sizeBytes;
    writer.u32(i);
    writer.uvarint(i * 1000);
    writer.raw(new Uint8Array(64 * 1024).fill(i));
    views.push({ view: writer.viewFrom(start), first: i });
  }
  const whole = writer.viewFrom(0);
  assert.ok(whole.buffer instanceof ArrayBuffer && whole.buffer.resizable && whole.buffer.maxByteLength === 4 * 1024 * 1024, 'moved once, to twice the reservation');
  const reader = new ByteReader(whole, (detail) => new Error(detail));
  for (const { view, first } of views) {
    assert.equal(new DataView(view.buffer, view.byteOffset).getUint32(0), first, 'a view taken before the growth still reads its bytes');
    assert.equal(reader.u32('n'), first);
    assert.equal(reader.uvarint('n'), first * 1000);
    assert.ok(reader.raw(64 * 1024, 'fill').every((byte) => byte === first));
  }
});

test('a reused ByteWriter cannot grow in place: reset() of an in-place writer is a bug, refused', () => {
  assert.throws(() => new ByteWriter({ growInPlaceBytes: 100 }).reset(), /not reused/);
});
