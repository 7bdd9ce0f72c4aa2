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
  return new MemberSnapshotAssembler(snapshot, [snapshot.stateMachine]).step(Number.MAX_SAFE_INTEGER)!;
}

/**
 * Builds a member snapshot from the state machine's snapshot in pieces, copying a bounded number of
 * bytes per step, so that a member can assemble a large snapshot between other work.
 */
export class MemberSnapshotAssembler {
  private readonly bytes: Uint8Array;
  private readonly pieces: readonly Uint8Array[];
  private nextPiece = 0;
  private offset: number;

  constructor(envelope: Omit<MemberSnapshot, 'stateMachine'>, stateMachinePieces: readonly Uint8Array[]) {
    const json = new TextEncoder().encode(JSON.stringify({ appliedRequests: envelope.appliedRequests.toJSON(), members: envelope.members.toJSON() }));
    let stateMachineBytes = 0;
    for (const piece of stateMachinePieces) stateMachineBytes += piece.byteLength;
    this.bytes = new Uint8Array(HEADER_BYTES + json.byteLength + stateMachineBytes);
    const view = new DataView(this.bytes.buffer);
    view.setUint8(0, FORMAT_VERSION);
    view.setUint32(1, json.byteLength);
    this.bytes.set(json, HEADER_BYTES);
    this.offset = HEADER_BYTES + json.byteLength;
    this.pieces = stateMachinePieces;
  }

  /** Copies whole pieces until at least maxBytes are copied; returns the snapshot once all are in. */
  step(maxBytes: number): Uint8Array | undefined {
    let copied = 0;
    while (this.nextPiece < this.pieces.length && copied < maxBytes) {
      const piece = this.pieces[this.nextPiece++]!;
      this.bytes.set(piece, this.offset);
      this.offset += piece.byteLength;
      copied += piece.byteLength;
    }
    return this.nextPiece === this.pieces.length ? this.bytes : undefined;
  }
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
