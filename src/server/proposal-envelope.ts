// Every proposal a member makes travels in an envelope naming the proposing member and a request
// number. The member that proposed it recognises its own request when the entry is applied (to
// answer the waiting client), and a request re-proposed after a leader change is applied at most
// once: the replicated AppliedRequests window remembers which requests already took effect.

/** Who applies the payload: the state machine (key-value commands) or the member list. */
export type ProposalKind = 'stateMachine' | 'members';

export interface ProposalEnvelope {
  memberId: bigint;
  requestId: number;
  kind: ProposalKind;
  payload: Uint8Array;
}

// Format 1: u8 version | u64 member | u64 request | payload (always for the state machine).
// Format 2: u8 version | u64 member | u64 request | u8 kind | payload.
const FORMAT_1_HEADER_BYTES = 1 + 8 + 8;
const FORMAT_VERSION = 2;
const HEADER_BYTES = FORMAT_1_HEADER_BYTES + 1;
const KIND_CODES: Record<ProposalKind, number> = { stateMachine: 0, members: 1 };

export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
  readonly code = 'CONCORD_E_ENTRY_CORRUPT';
}

export function encodeEnvelope(envelope: ProposalEnvelope): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES + envelope.payload.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, FORMAT_VERSION);
  view.setBigUint64(1, envelope.memberId);
  view.setBigUint64(9, BigInt(envelope.requestId));
  view.setUint8(17, KIND_CODES[envelope.kind]);
  bytes.set(envelope.payload, HEADER_BYTES);
  return bytes;
}

export function decodeEnvelope(data: Uint8Array): ProposalEnvelope {
  if (data.byteLength < FORMAT_1_HEADER_BYTES) {
    throw new EnvelopeError(`log entry of ${data.byteLength} bytes is too short for a proposal envelope (${FORMAT_1_HEADER_BYTES} bytes)`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  if (version !== 1 && version !== FORMAT_VERSION) {
    throw new EnvelopeError(`log entry has envelope format ${version}; this Concord reads formats 1 and ${FORMAT_VERSION}: upgrade it`);
  }
  const requestId = view.getBigUint64(9);
  if (requestId > BigInt(Number.MAX_SAFE_INTEGER)) throw new EnvelopeError(`request id ${requestId} is out of range`);
  const memberId = view.getBigUint64(1);
  if (version === 1) return { memberId, requestId: Number(requestId), kind: 'stateMachine', payload: data.subarray(FORMAT_1_HEADER_BYTES) };
  if (data.byteLength < HEADER_BYTES) throw new EnvelopeError(`log entry of ${data.byteLength} bytes is too short for envelope format 2`);
  const kindCode = view.getUint8(17);
  const kind = kindCode === KIND_CODES.members ? 'members' : kindCode === KIND_CODES.stateMachine ? 'stateMachine' : undefined;
  if (!kind) throw new EnvelopeError(`log entry has unknown proposal kind ${kindCode}`);
  return { memberId, requestId: Number(requestId), kind, payload: data.subarray(HEADER_BYTES) };
}

/**
 * The most recent request IDs applied, per proposing member, in a bounded window. Part of the
 * replicated state: it must be in every snapshot so that all members deduplicate alike.
 */
export class AppliedRequests {
  /** Requests remembered per member; a retry older than this window would apply twice. */
  readonly windowPerMember: number;
  /** Per member, its request IDs in the order they were applied (a Set keeps insertion order). */
  private readonly byMember = new Map<bigint, Set<number>>();

  constructor(windowPerMember: number) {
    this.windowPerMember = windowPerMember;
  }

  /** Records the request; returns false when it was already applied (a duplicate to skip). */
  firstTime(memberId: bigint, requestId: number): boolean {
    let ids = this.byMember.get(memberId);
    if (!ids) {
      ids = new Set();
      this.byMember.set(memberId, ids);
    }
    if (ids.has(requestId)) return false;
    ids.add(requestId);
    // The oldest is the first in insertion order: dropping it is O(1), unlike shifting an array.
    if (ids.size > this.windowPerMember) ids.delete(ids.values().next().value!);
    return true;
  }

  toJSON(): { windowPerMember: number; members: [string, number[]][] } {
    return { windowPerMember: this.windowPerMember, members: [...this.byMember].map(([id, ids]) => [id.toString(), [...ids]]) };
  }

  static fromJSON(json: { windowPerMember: number; members: [string, number[]][] }): AppliedRequests {
    const applied = new AppliedRequests(json.windowPerMember);
    for (const [id, order] of json.members) applied.byMember.set(BigInt(id), new Set(order));
    return applied;
  }
}
