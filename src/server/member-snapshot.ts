// The data of a member's Raft snapshot: the replicated AppliedRequests window (so re-proposals
// stay at-most-once after a restore) and the member list, followed by the state machine's own
// snapshot bytes. Binary, not JSON: the state machine part can be large, and base64 in JSON made
// taking a snapshot of a big store stall the member for seconds.
//
// Layout: u8 format version | u32 length of the JSON | JSON | state machine bytes.
// Format 1 (single-member releases) had only the AppliedRequests in the JSON; format 2 holds
// { appliedRequests, members }.

import { AppliedRequests } from './proposal-envelope.ts';
import { MemberRegistry } from './member-registry.ts';

const FORMAT_VERSION = 2;
const OLDEST_READABLE_VERSION = 1;
const HEADER_BYTES = 5;

export class MemberSnapshotError extends Error {
  override name = 'MemberSnapshotError';
  readonly code = 'CONCORD_E_SNAPSHOT_CORRUPT';
}

export interface MemberSnapshot {
  appliedRequests: AppliedRequests;
  members: MemberRegistry;
  stateMachine: Uint8Array;
}

export function encodeMemberSnapshot(snapshot: MemberSnapshot): Uint8Array {
  const envelope = encodeMemberSnapshotEnvelope(snapshot);
  const bytes = new Uint8Array(envelope.byteLength + snapshot.stateMachine.byteLength);
  bytes.set(envelope);
  bytes.set(snapshot.stateMachine, envelope.byteLength);
  return bytes;
}

/**
 * The bytes before the state machine's: format version, JSON length and JSON. A member takes them at
 * the capture and has the state machine encode its snapshot right after them, into one buffer.
 */
export function encodeMemberSnapshotEnvelope(envelope: Omit<MemberSnapshot, 'stateMachine'>): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ appliedRequests: envelope.appliedRequests.toJSON(), members: envelope.members.toJSON() }));
  const bytes = new Uint8Array(HEADER_BYTES + json.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setUint32(1, json.byteLength);
  bytes.set(json, HEADER_BYTES);
  return bytes;
}

export function decodeMemberSnapshot(data: Uint8Array): MemberSnapshot {
  if (data.byteLength < HEADER_BYTES) throw new MemberSnapshotError(`snapshot data of ${data.byteLength} bytes is too short`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  if (version < OLDEST_READABLE_VERSION || version > FORMAT_VERSION) {
    throw new MemberSnapshotError(`snapshot data has format ${version}; this Concord reads formats ${OLDEST_READABLE_VERSION} to ${FORMAT_VERSION}: upgrade it`);
  }
  const jsonBytes = view.getUint32(1);
  if (HEADER_BYTES + jsonBytes > data.byteLength) throw new MemberSnapshotError('snapshot data is truncated');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data.subarray(HEADER_BYTES, HEADER_BYTES + jsonBytes)));
  } catch (error) {
    throw new MemberSnapshotError(`snapshot data has an unreadable header: ${(error as Error).message}`);
  }
  const stateMachine = data.subarray(HEADER_BYTES + jsonBytes);
  if (version === 1) {
    return { appliedRequests: AppliedRequests.fromJSON(json as ReturnType<AppliedRequests['toJSON']>), members: new MemberRegistry(), stateMachine };
  }
  const parts = json as { appliedRequests: ReturnType<AppliedRequests['toJSON']>; members: unknown };
  return { appliedRequests: AppliedRequests.fromJSON(parts.appliedRequests), members: MemberRegistry.fromJSON(parts.members), stateMachine };
}
