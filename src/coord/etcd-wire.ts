// Conversions between CoordStore's shapes and the etcd v3 wire messages (as the etcd3 client
// decodes them: 64-bit numbers as decimal strings, keys and values as Buffers).

import type { IKeyValue } from 'etcd3';
import type { KeyValue } from './coord-store.ts';

/** The first key after every key that starts with `prefix` (etcd's prefix range end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end;
    }
  }
  // Every byte is 0xff (or the prefix is empty): the range runs to the end of the key space.
  return Buffer.from([0]);
}

export function rangeEndOf(key: string, options: { prefix?: boolean; rangeEnd?: string }): Buffer | undefined {
  if (options.prefix === true && options.rangeEnd !== undefined) throw new RangeError('give prefix or rangeEnd, not both');
  if (options.prefix === true) return prefixRangeEnd(key);
  if (options.rangeEnd !== undefined) return Buffer.from(options.rangeEnd, 'utf8');
  return undefined;
}

export function keyValueOf(kv: IKeyValue): KeyValue {
  return {
    key: Buffer.from(kv.key).toString('utf8'),
    value: kv.value === undefined || kv.value === null ? '' : Buffer.from(kv.value).toString('utf8'),
    createRevision: BigInt(kv.create_revision ?? 0),
    modRevision: BigInt(kv.mod_revision ?? 0),
    version: BigInt(kv.version ?? 0),
    lease: BigInt(kv.lease ?? 0),
  };
}

