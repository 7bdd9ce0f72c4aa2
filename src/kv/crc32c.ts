// CRC-32C (Castagnoli), the checksum etcd uses for HashKV and its WAL. Computed in plain TypeScript
// so the pure core needs no package; a 256-entry table keeps it fast enough for snapshots.

const CASTAGNOLI_POLYNOMIAL_REVERSED = 0x82f63b78;

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_POLYNOMIAL_REVERSED : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * Continues a running CRC-32C over more bytes (start from 0). A state machine may be given another
 * implementation of the same function (the server passes a native one, about 15 times faster on a
 * 130 MB snapshot here): the bytes are the same either way.
 */
export type Crc32cUpdate = (crc: number, bytes: Uint8Array) => number;

/** Continues a running CRC-32C over more bytes; start from 0. */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32c(bytes: Uint8Array): number {
  return crc32cUpdate(0, bytes);
}
