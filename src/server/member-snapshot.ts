// The data of a member's Raft snapshot: the replicated AppliedRequests window (so re-proposals
// stay at-most-once after a restore) followed by the state machine's own snapshot bytes. Binary,
// not JSON: the state machine part can be large, and base64 in JSON made taking a snapshot of a
// big store stall the member for seconds.
//
// Layout: u8 format version | u32 length of the AppliedRequests JSON | that JSON | state machine bytes.

import { AppliedRequests } from './proposal-envelope.ts';

const FORMAT_VERSION = 1;
const HEADER_BYTES = 5;

export class MemberSnapshotError extends Error {
  override name = 'MemberSnapshotError';
  readonly code = 'CONCORD_E_SNAPSHOT_CORRUPT';
}

export function encodeMemberSnapshot(appliedRequests: AppliedRequests, stateMachine: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(appliedRequests.toJSON()));
  const bytes = new Uint8Array(HEADER_BYTES + json.byteLength + stateMachine.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setUint32(1, json.byteLength);
  bytes.set(json, HEADER_BYTES);
  bytes.set(stateMachine, HEADER_BYTES + json.byteLength);
  return bytes;
}

export function decodeMemberSnapshot(data: Uint8Array): { appliedRequests: AppliedRequests; stateMachine: Uint8Array } {
  if (data.byteLength < HEADER_BYTES) throw new MemberSnapshotError(`snapshot data of ${data.byteLength} bytes is too short`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  if (version !== FORMAT_VERSION) {
    throw new MemberSnapshotError(`snapshot data has format ${version}; this Concord reads format ${FORMAT_VERSION}: upgrade it`);
  }
  const jsonBytes = view.getUint32(1);
  if (HEADER_BYTES + jsonBytes > data.byteLength) throw new MemberSnapshotError('snapshot data is truncated');
  const json = JSON.parse(new TextDecoder().decode(data.subarray(HEADER_BYTES, HEADER_BYTES + jsonBytes))) as ReturnType<AppliedRequests['toJSON']>;
  return { appliedRequests: AppliedRequests.fromJSON(json), stateMachine: data.subarray(HEADER_BYTES + jsonBytes) };
}
