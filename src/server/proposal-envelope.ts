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
  // The request id is a safe integer: written as two 32-bit halves, with no bigint made per proposal.
  view.setUint32(9, Math.floor(envelope.requestId / 2 ** 32));
  view.setUint32(13, envelope.requestId >>> 0);
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
  const requestIdHigh = view.getUint32(9);
  if (requestIdHigh >= 2 ** 21) throw new EnvelopeError(`request id ${view.getBigUint64(9)} is out of range`);
  const requestId = requestIdHigh * 2 ** 32 + view.getUint32(13);
  const memberId = view.getBigUint64(1);
  if (version === 1) return { memberId, requestId, kind: 'stateMachine', payload: data.subarray(FORMAT_1_HEADER_BYTES) };
  if (data.byteLength < HEADER_BYTES) throw new EnvelopeError(`log entry of ${data.byteLength} bytes is too short for envelope format 2`);
  const kindCode = view.getUint8(17);
  const kind = kindCode === KIND_CODES.members ? 'members' : kindCode === KIND_CODES.stateMachine ? 'stateMachine' : undefined;
  if (!kind) throw new EnvelopeError(`log entry has unknown proposal kind ${kindCode}`);
  return { memberId, requestId, kind, payload: data.subarray(HEADER_BYTES) };
}

/** One proposing member's most recent request IDs: a set to look them up, a ring to know the oldest. */
class RequestWindow {
  readonly ids = new Set<number>();
  /** The IDs in the order they were applied, as a ring once full: `oldest` is where the oldest is. */
  private readonly order: number[] = [];
  private oldest = 0;
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  add(requestId: number): void {
    this.ids.add(requestId);
    if (this.order.length < this.capacity) {
      this.order.push(requestId);
      return;
    }
    this.ids.delete(this.order[this.oldest]!);
    this.order[this.oldest] = requestId;
    this.oldest = (this.oldest + 1) % this.capacity;
  }

  /** Oldest first. */
  inOrder(): number[] {
    return [...this.order.slice(this.oldest), ...this.order.slice(0, this.oldest)];
  }
}

/**
 * The most recent request IDs applied, per proposing member, in a bounded window. Part of the
 * replicated state: it must be in every snapshot so that all members deduplicate alike.
 *
 * It is consulted for every applied entry, so it avoids per-call allocation: the window's oldest ID
 * is found in a ring rather than by iterating the set, and the window of the member seen last (in
 * a busy cluster, usually the leader) is kept at hand rather than looked up by its bigint ID.
 */
export class AppliedRequests {
  /** Requests remembered per member; a retry older than this window would apply twice. */
  readonly windowPerMember: number;
  private readonly byMember = new Map<bigint, RequestWindow>();
  private lastMemberId: bigint | undefined;
  private lastWindow: RequestWindow | undefined;

  constructor(windowPerMember: number) {
    this.windowPerMember = windowPerMember;
  }

  /** Records the request; returns false when it was already applied (a duplicate to skip). */
  firstTime(memberId: bigint, requestId: number): boolean {
    const window = memberId === this.lastMemberId ? this.lastWindow! : this.windowOf(memberId);
    if (window.ids.has(requestId)) return false;
    window.add(requestId);
    return true;
  }

  private windowOf(memberId: bigint): RequestWindow {
    let window = this.byMember.get(memberId);
    if (!window) {
      window = new RequestWindow(this.windowPerMember);
      this.byMember.set(memberId, window);
    }
    this.lastMemberId = memberId;
    this.lastWindow = window;
    return window;
  }

  toJSON(): { windowPerMember: number; members: [string, number[]][] } {
    return { windowPerMember: this.windowPerMember, members: [...this.byMember].map(([id, window]) => [id.toString(), window.inOrder()]) };
  }

  static fromJSON(json: { windowPerMember: number; members: [string, number[]][] }): AppliedRequests {
    const applied = new AppliedRequests(json.windowPerMember);
    for (const [id, order] of json.members) {
      const window = applied.windowOf(BigInt(id));
      for (const requestId of order) if (!window.ids.has(requestId)) window.add(requestId);
    }
    return applied;
  }
}
