// Membership administration (etcd's Cluster service and MoveLeader) and forwarding to the leader.
//
// Membership changes are decided by the leader, which alone knows how far each member's log has
// come (a learner may be promoted only once it has caught up) and which members are connected.
// The checks are etcd's strict reconfiguration checks (--strict-reconfig-check, on by default):
// a change must leave a quorum of started voters (a member has started once it published its
// name), an addition needs every voter connected, and a removal must leave a connected quorum
// (removing a member that is down is always allowed). A member
// that is not the leader forwards the request to the leader over the peer transport and relays the
// answer, so a client can send it to any member, as with etcd. Lease keep-alives and remaining TTLs
// are forwarded the same way (the lease service registers their handlers here).

import type { ConfChangeType } from '../consensus/types.ts';
import { NO_NODE } from '../consensus/types.ts';
import { ClusterError } from './cluster-errors.ts';
import { memberIdFor } from './member-ids.ts';
import type { MemberInfo } from './member-registry.ts';
import { normalizeUrl } from './member-registry.ts';
import type { RaftMember } from './raft-member.ts';
import { MemberError } from './raft-member.ts';

/** etcd 3.4 allows one learner at a time (maxLearners). */
export const MAX_LEARNERS = 1;
/** A learner may be promoted once its log matches at least this share of the leader's (etcd's readyPercent). */
export const LEARNER_READY_SHARE = 0.9;

export type RpcHandler = (params: unknown) => Promise<unknown>;

/** What the membership and forwarding logic needs of the member's surroundings. */
export interface ClusterAdminOptions {
  member: RaftMember<unknown>;
  clusterToken: string;
  /** Calls `method` on `peer` over the peer transport. */
  callPeer(peer: bigint, method: string, params: unknown, timeoutMs: number): Promise<unknown>;
  /** Whether this member's stream to `peer` is up (etcd's "started" member). */
  isConnected(peer: bigint): boolean;
  /** How long forwarding waits for a leader to appear, and for the leader's answer. */
  requestTimeoutMs: number;
  nowMs(): number;
  /** Rebuilds an error that crossed the transport (see grpc-errors.ts). */
  errorFromPeer(code: string, message: string): Error;
}

export class ClusterAdmin {
  private readonly options: ClusterAdminOptions;
  private readonly handlers = new Map<string, RpcHandler>();

  constructor(options: ClusterAdminOptions) {
    this.options = options;
    this.handle('memberAdd', (params) => {
      const { peerUrls, isLearner } = params as { peerUrls: string[]; isLearner: boolean };
      return this.addMemberOnLeader(peerUrls, isLearner).then(toWire);
    });
    this.handle('memberRemove', (params) => this.removeMemberOnLeader(BigInt((params as { id: string }).id)).then(toWire));
    this.handle('memberPromote', (params) => this.promoteMemberOnLeader(BigInt((params as { id: string }).id)).then(toWire));
  }

  private get member(): RaftMember<unknown> {
    return this.options.member;
  }

  /** Registers the handler for RPCs named `method` (served when this member leads). */
  handle(method: string, handler: RpcHandler): void {
    this.handlers.set(method, handler);
  }

  /** An RPC from a peer: served only by the leader, so a stale forwarder learns to retry. */
  async serveRpc(method: string, params: unknown): Promise<unknown> {
    const handler = this.handlers.get(method);
    if (!handler) throw new MemberError('CONCORD_E_TIMEOUT', `unknown peer RPC '${method}'`);
    if (!this.member.isLeader()) throw new MemberError('CONCORD_E_NOT_LEADER', 'this member no longer leads');
    return handler(params);
  }

  /**
   * Runs `method` on the leader: here if this member leads, else forwarded to the leader. Waits
   * (bounded) for a leader when there is none.
   */
  async callLeader(method: string, params: unknown): Promise<unknown> {
    const deadline = this.options.nowMs() + this.options.requestTimeoutMs;
    for (;;) {
      const leader = this.member.leaderId();
      if (leader === this.member.id) return this.serveRpc(method, params);
      if (leader !== NO_NODE) {
        try {
          return await this.options.callPeer(leader, method, JSON.parse(JSON.stringify(params, idsAsStrings)), Math.max(1, deadline - this.options.nowMs()));
        } catch (error) {
          const code = String((error as { code?: unknown }).code ?? '');
          // The leader changed under us: ask the new one, while time allows.
          if (code !== 'CONCORD_E_NOT_LEADER' && code !== 'CONCORD_E_PEER_UNAVAILABLE') throw this.options.errorFromPeer(code, (error as Error).message);
        }
      }
      if (this.options.nowMs() >= deadline) {
        throw new MemberError(leader === NO_NODE ? 'CONCORD_E_NO_LEADER' : 'CONCORD_E_TIMEOUT', 'no leader answered in time');
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  members(): MemberInfo[] {
    return this.member.memberList();
  }

  async addMember(peerUrls: string[], isLearner: boolean): Promise<{ added: MemberInfo; members: MemberInfo[] }> {
    return fromWire(await this.callLeader('memberAdd', { peerUrls, isLearner })) as { added: MemberInfo; members: MemberInfo[] };
  }

  async removeMember(id: bigint): Promise<MemberInfo[]> {
    return (fromWire(await this.callLeader('memberRemove', { id: id.toString() })) as { members: MemberInfo[] }).members;
  }

  async promoteMember(id: bigint): Promise<MemberInfo[]> {
    return (fromWire(await this.callLeader('memberPromote', { id: id.toString() })) as { members: MemberInfo[] }).members;
  }

  /** MemberUpdate: new peer URLs for a member (a replicated attribute change, any member may propose it). */
  async updateMember(id: bigint, peerUrls: string[]): Promise<MemberInfo[]> {
    const urls = checkPeerUrls(peerUrls);
    const existing = this.member.memberList();
    if (!existing.some((member) => member.id === id)) throw new ClusterError('CONCORD_E_MEMBER_NOT_FOUND', `member ${hex(id)}`);
    if (existing.some((member) => member.id !== id && sharesPeerUrl(member, urls))) throw new ClusterError('CONCORD_E_PEER_URL_EXISTS');
    await this.member.proposeMemberAttributes({ id: id.toString(), peerUrls: urls });
    return this.member.memberList();
  }

  /** Maintenance.MoveLeader: only the leader can hand leadership over (etcd answers "not leader" elsewhere). */
  async moveLeader(target: bigint): Promise<void> {
    if (!this.member.isLeader()) throw new MemberError('CONCORD_E_NOT_LEADER', 'MoveLeader must be sent to the leader');
    if (!this.member.membership().voters.includes(target)) throw new ClusterError('CONCORD_E_MEMBER_NOT_FOUND', `transferee ${hex(target)} is not a voting member`);
    await this.member.transferLeadership(target, this.options.requestTimeoutMs);
  }

  // --- on the leader ---------------------------------------------------------------------------

  private async addMemberOnLeader(peerUrls: string[], isLearner: boolean): Promise<{ added: MemberInfo; members: MemberInfo[] }> {
    const urls = checkPeerUrls(peerUrls);
    const existing = this.member.memberList();
    if (existing.some((member) => sharesPeerUrl(member, urls))) throw new ClusterError('CONCORD_E_PEER_URL_EXISTS');
    if (isLearner && existing.filter((member) => member.isLearner).length >= MAX_LEARNERS) throw new ClusterError('CONCORD_E_TOO_MANY_LEARNERS');
    if (!isLearner) this.checkStartedForNewVoter();
    this.checkAllVotersConnected();
    const id = this.newMemberId(urls);
    await this.proposeChange(isLearner ? 'addLearner' : 'addNode', id, { name: '', peerUrls: urls, clientUrls: [] });
    const members = this.member.memberList();
    const added = members.find((member) => member.id === id);
    if (!added) throw new ClusterError('CONCORD_E_MEMBER_NOT_FOUND', `member ${hex(id)} vanished right after it was added`);
    return { added, members };
  }

  private async removeMemberOnLeader(id: bigint): Promise<{ members: MemberInfo[] }> {
    const target = this.member.memberList().find((member) => member.id === id);
    if (!target) throw new ClusterError('CONCORD_E_MEMBER_NOT_FOUND', this.member.isRemovedMember(id) ? `member ${hex(id)} was removed already` : `member ${hex(id)}`);
    if (!target.isLearner) this.checkQuorumAfterRemovingVoter(target);
    await this.proposeChange('removeNode', id);
    return { members: this.member.memberList() };
  }

  private async promoteMemberOnLeader(id: bigint): Promise<{ members: MemberInfo[] }> {
    const target = this.member.memberList().find((member) => member.id === id);
    if (!target) throw new ClusterError('CONCORD_E_MEMBER_NOT_FOUND', `member ${hex(id)}`);
    if (!target.isLearner) throw new ClusterError('CONCORD_E_MEMBER_NOT_LEARNER');
    const match = this.member.followerMatch();
    const learnerMatch = match.get(id) ?? 0;
    const leaderMatch = match.get(this.member.id) ?? this.member.lastLogIndex();
    if (learnerMatch < leaderMatch * LEARNER_READY_SHARE) {
      throw new ClusterError('CONCORD_E_LEARNER_NOT_READY', `learner ${hex(id)} has ${learnerMatch} of the leader's ${leaderMatch} entries`);
    }
    this.checkStartedForNewVoter();
    await this.proposeChange('addNode', id, { name: target.name, peerUrls: target.peerUrls, clientUrls: target.clientUrls });
    return { members: this.member.memberList() };
  }

  /**
   * One change at a time, and none from a leader that has not applied its first entry: a change
   * that arrives while one is pending waits for it (bounded by the request timeout) instead of
   * failing, so an operator's request right after an election or another change just works.
   */
  private async proposeChange(type: ConfChangeType, id: bigint, attributes?: { name: string; peerUrls: string[]; clientUrls: string[] }): Promise<void> {
    const deadline = this.options.nowMs() + this.options.requestTimeoutMs;
    while (this.member.membershipChangePending() && this.options.nowMs() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.member.proposeConfChange(type, id, attributes);
  }

  private voters(): MemberInfo[] {
    return this.member.memberList().filter((member) => !member.isLearner);
  }

  /**
   * A new voter counts toward the quorum at once, though it has not started: the started voters
   * must make a quorum of the grown cluster (a single started member may always grow to two, so a
   * cluster restored from a snapshot can be rebuilt).
   */
  private checkStartedForNewVoter(): void {
    const voters = this.voters();
    const started = voters.filter(hasStarted).length;
    if (started === 1 && voters.length === 1) return;
    if (started < quorum(voters.length + 1)) {
      throw new ClusterError('CONCORD_E_NOT_ENOUGH_STARTED_MEMBERS', `${started} of ${voters.length} voters have started; ${voters.length + 1} voters need ${quorum(voters.length + 1)}`);
    }
  }

  /** etcd adds members only while the leader is connected to every voter. */
  private checkAllVotersConnected(): void {
    const down = this.voters().filter((voter) => !this.isConnected(voter.id));
    if (down.length > 0) throw new ClusterError('CONCORD_E_UNHEALTHY_CLUSTER', `not connected to ${down.map((voter) => hex(voter.id)).join(', ')}`);
  }

  private checkQuorumAfterRemovingVoter(target: MemberInfo): void {
    const voters = this.voters();
    const remaining = voters.filter((voter) => voter.id !== target.id);
    if (remaining.length === 0) throw new ClusterError('CONCORD_E_NOT_ENOUGH_STARTED_MEMBERS', 'the last voter cannot be removed');
    if (remaining.filter(hasStarted).length < quorum(remaining.length)) throw new ClusterError('CONCORD_E_NOT_ENOUGH_STARTED_MEMBERS');
    // A member that is down is safe to remove: it is not part of the active quorum.
    if (target.id !== this.member.id && !this.isConnected(target.id)) return;
    const connected = voters.filter((voter) => this.isConnected(voter.id)).length;
    if (connected - 1 < quorum(remaining.length)) {
      throw new ClusterError('CONCORD_E_UNHEALTHY_CLUSTER', `after the removal only ${connected - 1} of ${remaining.length} voters would be connected`);
    }
  }

  private isConnected(id: bigint): boolean {
    return id === this.member.id || this.options.isConnected(id);
  }

  /** A fresh ID from the URLs and the time (as etcd's), never one in use or removed. */
  private newMemberId(peerUrls: string[]): bigint {
    const inUse = new Set(this.member.memberList().map((member) => member.id));
    for (let attempt = 0; ; attempt++) {
      const id = memberIdFor(peerUrls.map((url) => new URL(url)), `${this.options.clusterToken}|${this.options.nowMs()}|${attempt}`);
      if (!inUse.has(id) && !this.member.isRemovedMember(id)) return id;
    }
  }
}

/** A member has started once it published its name (etcd's IsStarted). */
function hasStarted(member: MemberInfo): boolean {
  return member.name !== '';
}

function quorum(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** Peer URLs must be http(s)://HOST:PORT; they are compared and stored by origin. */
function checkPeerUrls(peerUrls: readonly string[]): string[] {
  if (peerUrls.length === 0) throw new ClusterError('CONCORD_E_MEMBER_BAD_URLS', 'no peer URL given');
  return peerUrls.map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ClusterError('CONCORD_E_MEMBER_BAD_URLS', `'${text}' is not a URL`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.port || url.pathname !== '/') {
      throw new ClusterError('CONCORD_E_MEMBER_BAD_URLS', `'${text}' is not http(s)://HOST:PORT`);
    }
    return url.origin;
  });
}

function sharesPeerUrl(member: MemberInfo, urls: readonly string[]): boolean {
  const theirs = new Set(member.peerUrls.map(normalizeUrl));
  return urls.some((url) => theirs.has(normalizeUrl(url)));
}

function hex(id: bigint): string {
  return id.toString(16);
}

function idsAsStrings(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Member lists cross the transport as JSON, with ids as decimal strings. */
function toWire(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, idsAsStrings));
}

function fromWire(value: unknown): unknown {
  const member = (raw: Record<string, unknown>): MemberInfo => ({
    id: BigInt(raw.id as string),
    name: String(raw.name),
    peerUrls: (raw.peerUrls as string[]).map(String),
    clientUrls: (raw.clientUrls as string[]).map(String),
    isLearner: Boolean(raw.isLearner),
  });
  const raw = value as { added?: Record<string, unknown>; members: Record<string, unknown>[] };
  return { ...(raw.added ? { added: member(raw.added) } : {}), members: raw.members.map(member) };
}
