// The binary form of one key's retained history, shared by snapshots (which store it) and HashKV
// (which checksums it), so that two members hash exactly what they would snapshot.

import type { ByteReader, ByteWriter } from './binary.ts';
import type { KeyRevision } from './key-index.ts';
import type { KeyValue } from './types.ts';
import { EMPTY_VALUE } from './types.ts';

/** Writes the key and its first `count` retained changes (all of them by default). */
export function writeKeyHistory(writer: ByteWriter, key: Uint8Array, revisions: readonly KeyRevision[], count = revisions.length): void {
  writer.bytes(key);
  writer.uvarint(count);
  for (let i = 0; i < count; i++) {
    const change = revisions[i]!;
    writer.uvarint(change.main);
    writer.uvarint(change.sub);
    writer.bool(change.tombstone);
    if (change.tombstone) continue;
    writer.uvarint(change.kv.createRevision);
    writer.uvarint(change.kv.version);
    writer.bytes(change.kv.value);
    writer.int64(change.kv.lease);
  }
}

export function readKeyHistory(reader: ByteReader): { key: Uint8Array; revisions: KeyRevision[] } {
  const key = reader.bytes('key');
  const count = reader.uvarint('revision count');
  const revisions: KeyRevision[] = [];
  for (let i = 0; i < count; i++) {
    const main = reader.uvarint('main revision');
    const sub = reader.uvarint('sub revision');
    const tombstone = reader.bool('tombstone flag');
    revisions.push({ main, sub, tombstone, kv: tombstone ? tombstoneKv(key, main) : readPutKv(reader, key, main) });
  }
  return { key, revisions };
}

function readPutKv(reader: ByteReader, key: Uint8Array, main: number): KeyValue {
  const createRevision = reader.uvarint('create revision');
  const version = reader.uvarint('version');
  const value = reader.bytes('value');
  const lease = reader.int64('lease');
  return { key, createRevision, modRevision: main, version, value, lease };
}

/** What etcd stores for a delete: the key and, as the event's modRevision, the delete's revision. */
export function tombstoneKv(key: Uint8Array, revision: number): KeyValue {
  return { key, createRevision: 0, modRevision: revision, version: 0, value: EMPTY_VALUE, lease: 0n };
}
