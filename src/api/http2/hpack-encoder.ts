// HPACK (RFC 7541) header block encoding for the HTTP/2 server's responses and trailers, without a
// dynamic table: a block depends on nothing but its fields, so a response's usual block can be
// encoded once and sent on every stream of every connection. What that gives up (indexing fields a
// connection repeats, Huffman coding) is a few dozen bytes per response, on a path where the body
// dominates.

import { STATIC_TABLE } from './hpack-static-table.ts';

/** name → value → the static index of that exact field. */
const STATIC_FIELDS = new Map<string, Map<string, number>>();
/** name → the first static index with that name. */
const STATIC_NAMES = new Map<string, number>();
STATIC_TABLE.forEach(({ name, value }, offset) => {
  const index = offset + 1;
  if (!STATIC_NAMES.has(name)) STATIC_NAMES.set(name, index);
  let values = STATIC_FIELDS.get(name);
  if (values === undefined) STATIC_FIELDS.set(name, values = new Map());
  values.set(value, index);
});

/**
 * Encodes [name0, value0, ...] (names already lower-case) with no dynamic table: a static-table
 * index for an exact match, else a literal without indexing (§6.2.2), with the name's static index
 * when it has one; no Huffman. Stateless, so any block can be cached and reused.
 */
export function encodeHeaderBlock(fields: readonly string[]): Uint8Array {
  if (fields.length % 2 !== 0) throw new Error(`encodeHeaderBlock: ${fields.length} strings is not a list of name, value pairs`);
  let length = 0;
  for (let at = 0; at < fields.length; at += 2) length += fieldLength(fields[at]!, fields[at + 1]!);
  const block = new Uint8Array(length);
  let written = 0;
  for (let at = 0; at < fields.length; at += 2) written = writeField(block, written, fields[at]!, fields[at + 1]!);
  if (written !== length) throw new Error(`encodeHeaderBlock: wrote ${written} octets of ${length}`); // fieldLength disagrees with writeField
  return block;
}

function fieldLength(name: string, value: string): number {
  if (STATIC_FIELDS.get(name)?.get(value) !== undefined) return 1; // every static index fits a 7-bit prefix
  const nameIndex = STATIC_NAMES.get(name);
  if (nameIndex === undefined) return 1 + stringLength(name) + stringLength(value);
  return integerLength(nameIndex, 0x0f) + stringLength(value);
}

/** Writes one field at block[at], returning where it ends. fieldLength must agree with it. */
function writeField(block: Uint8Array, at: number, name: string, value: string): number {
  const index = STATIC_FIELDS.get(name)?.get(value);
  if (index !== undefined) return writeInteger(block, at, 0x80, 0x7f, index); // §6.1
  const nameIndex = STATIC_NAMES.get(name);
  // §6.2.2: 0000 and a 4-bit name index, 0 for a name that follows as a string.
  let next = writeInteger(block, at, 0x00, 0x0f, nameIndex ?? 0);
  if (nameIndex === undefined) next = writeString(block, next, name);
  return writeString(block, next, value);
}

/** §5.2 without Huffman: a 7-bit-prefix length and the octets. */
function stringLength(text: string): number {
  return integerLength(text.length, 0x7f) + text.length;
}

function writeString(block: Uint8Array, at: number, text: string): number {
  let next = writeInteger(block, at, 0x00, 0x7f, text.length);
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code > 0xff) throw new Error(`encodeHeaderBlock: char code ${code} at ${index} of '${text.slice(0, 64)}' is not Latin-1`);
    block[next++] = code;
  }
  return next;
}

/** §5.1: octets for `value` after a prefix of `prefixMask` bits. */
function integerLength(value: number, prefixMask: number): number {
  if (value < prefixMask) return 1;
  let octets = 2;
  for (let rest = value - prefixMask; rest >= 0x80; rest = Math.floor(rest / 0x80)) octets++;
  return octets;
}

/** §5.1: `value` in the low `prefixMask` bits of block[at] (whose high bits are `flags`) and on. */
function writeInteger(block: Uint8Array, at: number, flags: number, prefixMask: number, value: number): number {
  if (value < prefixMask) {
    block[at] = flags | value;
    return at + 1;
  }
  block[at++] = flags | prefixMask;
  let rest = value - prefixMask;
  while (rest >= 0x80) {
    block[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  block[at] = rest;
  return at + 1;
}
