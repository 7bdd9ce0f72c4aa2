// The cluster's member list: each member's name, peer and client URLs and whether it is a learner,
// plus the IDs of removed members (a removed member may never come back: its ID is refused). It is
// replicated state, like etcd's membership store: changed only by applied log entries (membership
// changes carry the member's attributes in their context; a member publishes its client URLs with
// a proposal once it starts) and carried in every snapshot, so every member lists the same members.

import type { ConfChange, ConfState } from '../consensus/types.ts';

export interface MemberInfo {
  id: bigint;
  /** Empty until the member has started and published its attributes (etcd lists it "unstarted"). */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What a membership change entry carries in its context (JSON). */
export interface ConfChangeContext {
  member?: { name: string; peerUrls: string[]; clientUrls: string[] };
  /** Who proposed it, so that member can answer its waiting caller when it applies. */
  proposal?: { memberId: string; requestId: number };
}

/** A member publishing or changing its attributes (a replicated command, not a conf change). */
export interface MemberAttributesUpdate {
  id: string;
  name?: string;
  clientUrls?: string[];
  peerUrls?: string[];
}

export class MemberRegistryError extends Error {
  override name = 'MemberRegistryError';
  readonly code = 'CONCORD_E_MEMBERSHIP_ENTRY_INVALID';
}

export class MemberRegistry {
  private readonly members = new Map<bigint, MemberInfo>();
  private readonly removed = new Set<bigint>();

  /** The registry a new cluster starts with: every initial member a voter. */
  static bootstrap(initial: readonly Omit<MemberInfo, 'isLearner'>[]): MemberRegistry {
    const registry = new MemberRegistry();
    for (const member of initial) registry.members.set(member.id, { ...member, isLearner: false });
    return registry;
  }

  list(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((member) => ({ ...member }));
  }

  get(id: bigint): MemberInfo | undefined {
    const member = this.members.get(id);
    return member ? { ...member } : undefined;
  }

  has(id: bigint): boolean {
    return this.members.has(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  get size(): number {
    return this.members.size;
  }

  /** The member (if any) that advertises one of these peer URLs. */
  findByPeerUrl(peerUrls: readonly string[]): MemberInfo | undefined {
    const wanted = new Set(peerUrls.map(normalizeUrl));
    return this.list().find((member) => member.peerUrls.some((url) => wanted.has(normalizeUrl(url))));
  }

  /** Applies a committed membership change; the core's resulting ConfState keeps learner flags honest. */
  applyConfChange(change: ConfChange, confState: ConfState): void {
    const context = decodeConfChangeContext(change.context);
    switch (change.type) {
      case 'addNode':
      case 'addLearner': {
        if (this.removed.has(change.nodeId)) return; // the core refuses it too: a removed ID never returns
        const existing = this.members.get(change.nodeId);
        const attributes = context.member ?? { name: '', peerUrls: [], clientUrls: [] };
        this.members.set(change.nodeId, {
          id: change.nodeId,
          name: existing?.name || attributes.name,
          peerUrls: existing?.peerUrls.length ? existing.peerUrls : [...attributes.peerUrls],
          clientUrls: existing?.clientUrls.length ? existing.clientUrls : [...attributes.clientUrls],
          isLearner: confState.learners.includes(change.nodeId),
        });
        break;
      }
      case 'removeNode':
        this.members.delete(change.nodeId);
        this.removed.add(change.nodeId);
        break;
    }
  }

  applyAttributes(update: MemberAttributesUpdate): void {
    const id = BigInt(update.id);
    const member = this.members.get(id);
    if (!member) return; // removed meanwhile
    if (update.name !== undefined) member.name = update.name;
    if (update.clientUrls !== undefined) member.clientUrls = [...update.clientUrls];
    if (update.peerUrls !== undefined) member.peerUrls = [...update.peerUrls];
  }

  toJSON(): { members: { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }[]; removed: string[] } {
    return {
      members: this.list().map((member) => ({ ...member, id: member.id.toString() })),
      removed: [...this.removed].map(String),
    };
  }

  static fromJSON(json: unknown): MemberRegistry {
    const registry = new MemberRegistry();
    if (json === undefined || json === null) return registry;
    const { members, removed } = json as ReturnType<MemberRegistry['toJSON']>;
    if (!Array.isArray(members) || !Array.isArray(removed)) throw new MemberRegistryError('the member list in the snapshot is malformed');
    for (const member of members) {
      registry.members.set(BigInt(member.id), {
        id: BigInt(member.id), name: String(member.name), peerUrls: member.peerUrls.map(String),
        clientUrls: member.clientUrls.map(String), isLearner: Boolean(member.isLearner),
      });
    }
    for (const id of removed) registry.removed.add(BigInt(id));
    return registry;
  }
}

export function encodeConfChangeContext(context: ConfChangeContext): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(context));
}

export function decodeConfChangeContext(bytes: Uint8Array): ConfChangeContext {
  if (bytes.byteLength === 0) return {};
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as ConfChangeContext) : {};
  } catch (error) {
    throw new MemberRegistryError(`a membership change entry has an unreadable context: ${(error as Error).message}`);
  }
}

/** URLs compare by origin: http://127.0.0.1:2380 and http://127.0.0.1:2380/ are the same peer. */
export function normalizeUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
