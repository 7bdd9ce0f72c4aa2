// Keys are bytes, compared byte-wise as etcd compares them. Inside the store a key is also held as
// a "byte string": one UTF-16 code unit per byte (0..255). JS compares strings code unit by code
// unit, so byte strings sort exactly as the bytes do, and they can key a Map.

/** Above this many bytes, String.fromCharCode is fed in slices to stay within argument limits. */
const FROM_CHAR_CODE_CHUNK_BYTES = 8192;

export function toByteString(bytes: Uint8Array): string {
  if (bytes.length <= FROM_CHAR_CODE_CHUNK_BYTES) return charCodesToString(bytes);
  let result = '';
  for (let start = 0; start < bytes.length; start += FROM_CHAR_CODE_CHUNK_BYTES) {
    result += charCodesToString(bytes.subarray(start, start + FROM_CHAR_CODE_CHUNK_BYTES));
  }
  return result;
}

/** apply takes the typed array as it is; a spread (`...bytes`) first iterates it into an array, about 3x slower. */
function charCodesToString(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

export function fromByteString(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Byte-wise comparison, as Go's bytes.Compare: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/**
 * The keys a request addresses, decoded from etcd's (key, rangeEnd) convention:
 * an empty rangeEnd means the single key; a single zero byte means every key >= key
 * (etcd's mkGteRange); anything else is the half-open interval [key, rangeEnd).
 */
export type KeyRange =
  | { kind: 'single'; key: string }
  | { kind: 'fromKey'; start: string }
  | { kind: 'interval'; start: string; end: string };

export function keyRangeOf(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyRange {
  const start = toByteString(key);
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', key: start };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'fromKey', start };
  return { kind: 'interval', start, end: toByteString(rangeEnd) };
}

export function keyInRange(range: KeyRange, key: string): boolean {
  switch (range.kind) {
    case 'single':
      return key === range.key;
    case 'fromKey':
      return key >= range.start;
    case 'interval':
      return key >= range.start && key < range.end;
  }
}

/** The first key of the range (inclusive). */
export function rangeStart(range: KeyRange): string {
  return range.kind === 'single' ? range.key : range.start;
}

/** True when the range cannot contain keys after `key` (used to stop scans early). */
export function rangeEndsBefore(range: KeyRange, key: string): boolean {
  switch (range.kind) {
    case 'single':
      return key > range.key;
    case 'fromKey':
      return false;
    case 'interval':
      return key >= range.end;
  }
}

/**
 * The rangeEnd that selects every key with the given prefix (clientv3.GetPrefixRangeEnd): the
 * prefix with its last non-0xff byte incremented; a prefix of only 0xff bytes selects all keys
 * from it (rangeEnd = one zero byte).
 */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i] = end[i]! + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}
