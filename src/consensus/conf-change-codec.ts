// The bytes of a membership-change log entry: version byte, change type, 64-bit node id, context.
// Fixed layout so that every member decodes the same change from the same entry.

import type { ConfChange, ConfChangeType } from './types.ts';
import { RaftError } from './types.ts';

const FORMAT_VERSION = 1;
const HEADER_BYTES = 10;
const TYPE_CODES: Record<ConfChangeType, number> = { addNode: 1, addLearner: 2, removeNode: 3 };
const TYPES_BY_CODE = new Map<number, ConfChangeType>(
  (Object.entries(TYPE_CODES) as [ConfChangeType, number][]).map(([type, code]) => [code, type]),
);

export function encodeConfChange(change: ConfChange): Uint8Array {
  if (change.nodeId <= 0n || change.nodeId >= 1n << 64n) {
    throw new RaftError('CONCORD_E_CONFIG_INVALID', `node id ${change.nodeId} is not a non-zero unsigned 64-bit integer`);
  }
  const bytes = new Uint8Array(HEADER_BYTES + change.context.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setUint8(1, TYPE_CODES[change.type]);
  view.setBigUint64(2, change.nodeId);
  bytes.set(change.context, HEADER_BYTES);
  return bytes;
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new RaftError('CONCORD_E_CONFIG_INVALID', `conf change entry is ${bytes.byteLength} bytes, needs at least ${HEADER_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== FORMAT_VERSION) {
    throw new RaftError('CONCORD_E_CONFIG_INVALID', `conf change entry has format version ${version}; this build reads ${FORMAT_VERSION}`);
  }
  const type = TYPES_BY_CODE.get(view.getUint8(1));
  if (!type) throw new RaftError('CONCORD_E_CONFIG_INVALID', `unknown conf change type code ${view.getUint8(1)}`);
  return { type, nodeId: view.getBigUint64(2), context: bytes.slice(HEADER_BYTES) };
}
