// The application's handle on the Raft core (etcd's RawNode): feed it ticks, messages and requests;
// take the work it produces as a Ready; report back with advance(). Still pure and synchronous:
// the caller owns the clock, the disk and the network.

import { Raft } from './raft.ts';
import type { ProposalOutcome, RaftConfig } from './raft.ts';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, SoftState } from './types.ts';
import { RaftError, assertIndexLike, hardStateEqual, isLocalMessage, isResponseMessage, message } from './types.ts';
import { encodeConfChange } from './conf-change-codec.ts';

export interface RaftStatus {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  lastIndex: number;
  /** Per-follower replication state, on the leader only. */
  progress: Map<NodeId, { match: number; next: number; state: string }>;
  leadTransferee: NodeId;
}

export class RaftNode {
  readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  /** The Ready handed out and not yet advanced: only one may be outstanding. */
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.previousSoftState = this.raft.softState();
    this.previousHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (as if the election timeout had elapsed). */
  campaign(): void {
    this.raft.step(message({ type: 'MsgHup', from: this.raft.id }));
  }

  propose(data: Uint8Array): ProposalOutcome {
    return this.raft.propose([{ term: 0, index: 0, type: 'normal', data }]);
  }

  /**
   * Proposes several commands as one batch: one proposal message, consecutive entries, one append
   * per follower. The batch is accepted or refused as a whole.
   */
  proposeBatch(batch: readonly Uint8Array[]): ProposalOutcome {
    return this.raft.propose(batch.map((data) => ({ term: 0, index: 0, type: 'normal' as const, data })));
  }

  /**
   * Proposes a single-server membership change. Changes that make no sense against this node's
   * view of the membership are refused at once with a reason (applyConfChange ignores them too).
   */
  proposeConfChange(change: ConfChange): ProposalOutcome {
    const refusal = this.confChangeRefusal(change);
    if (refusal) return { accepted: false, reason: refusal };
    return this.raft.propose([{ term: 0, index: 0, type: 'confChange', data: encodeConfChange(change) }]);
  }

  private confChangeRefusal(change: ConfChange): string | undefined {
    const voters = this.raft.voterIds();
    const learners = this.raft.learnerIds();
    const isVoter = voters.includes(change.nodeId);
    const isLearner = learners.includes(change.nodeId);
    if (this.raft.hasPendingConfChange()) {
      return 'another membership change is in progress (or this new leader has not applied its first entry yet); retry shortly';
    }
    switch (change.type) {
      case 'addNode':
        return isVoter ? `member ${change.nodeId} is already a voter` : undefined;
      case 'addLearner':
        if (isVoter) return `member ${change.nodeId} is a voter; remove it first to re-add it as a learner`;
        return isLearner ? `member ${change.nodeId} is already a learner` : undefined;
      case 'removeNode':
        if (!isVoter && !isLearner) return `member ${change.nodeId} is not in the cluster`;
        if (isVoter && voters.length === 1) return 'cannot remove the last voter';
        return undefined;
    }
  }

  /** Delivers a message from a peer. Local message types are refused: they never cross the network. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new RaftError('CONCORD_E_STEP_LOCAL_MSG', `cannot step local message ${m.type}`);
    assertIndexLike(m.term, 'message term');
    assertIndexLike(m.index, 'message index');
    assertIndexLike(m.logTerm, 'message log term');
    assertIndexLike(m.commit, 'message commit');
    if (isResponseMessage(m.type) && !this.raft.progress.has(m.from)) {
      throw new RaftError('CONCORD_E_STEP_PEER_NOT_FOUND', `response from unknown peer ${m.from}`);
    }
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read. When the leader has confirmed its leadership, a ReadState with
   * the same context appears in a Ready; the read is served once applied >= its index.
   */
  readIndex(context: Uint8Array): void {
    this.raft.step(message({ type: 'MsgReadIndex', from: this.raft.id, entries: [], context }));
  }

  /** Asks the leader to hand leadership to `transferee` (thesis §3.10). */
  transferLeadership(transferee: NodeId): void {
    this.raft.step(message({ type: 'MsgTransferLeader', from: transferee, to: this.raft.id }));
  }

  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  reportUnreachable(peer: NodeId): void {
    this.raft.step(message({ type: 'MsgUnreachable', from: peer }));
  }

  reportSnapshot(peer: NodeId, delivered: boolean): void {
    this.raft.step(message({ type: 'MsgSnapStatus', from: peer, reject: !delivered }));
  }

  hasReady(): boolean {
    const raft = this.raft;
    const soft = raft.softState();
    if (soft.leader !== this.previousSoftState.leader || soft.role !== this.previousSoftState.role) return true;
    if (!hardStateEqual(raft.hardState(), this.previousHardState)) return true;
    if (raft.log.unstable.snapshot) return true;
    return (
      raft.msgs.length > 0 ||
      raft.log.unstable.entries.length > 0 ||
      raft.readStates.length > 0 ||
      raft.log.hasNextCommittedEntries()
    );
  }

  ready(): Ready {
    if (this.outstanding) throw new RaftError('CONCORD_E_UNAVAILABLE', 'advance() the previous Ready before asking for another');
    const raft = this.raft;
    const soft = raft.softState();
    const hard = raft.hardState();
    const entries = raft.log.unstableEntries();
    const hardStateChanged = !hardStateEqual(hard, this.previousHardState);
    const ready: Ready = {
      entries,
      committedEntries: raft.log.nextCommittedEntries(raft.maxCommittedSizePerReadyBytes),
      messages: compactAppendResponses(raft.msgs),
      readStates: raft.readStates,
      // A commit-index change alone needs no fsync: it can be recovered from the leader.
      mustSync:
        entries.length > 0 || hard.term !== this.previousHardState.term || hard.vote !== this.previousHardState.vote,
    };
    if (soft.leader !== this.previousSoftState.leader || soft.role !== this.previousSoftState.role) {
      ready.softState = soft;
      this.previousSoftState = soft;
    }
    if (hardStateChanged) ready.hardState = hard;
    if (raft.log.unstable.snapshot) ready.snapshot = raft.log.unstable.snapshot;
    raft.msgs = [];
    raft.readStates = [];
    this.outstanding = ready;
    return ready;
  }

  /**
   * Takes the messages that may go out now, before the outstanding Ready is persisted (they leave
   * the mailbox; everything else waits for the next Ready). Without this, a proposal that reaches a
   * member while it waits for an fsync could not move before that fsync ends: under load every
   * write waited out several fsyncs on its way (forward, append, acknowledge, commit).
   * See mayBeSentEarly for which messages qualify and why that is safe.
   */
  takeEarlyMessages(): Message[] {
    const raft = this.raft;
    // The hard state of the last advanced Ready is the one on disk.
    const leaderTermPersisted = raft.role === 'leader' && this.previousHardState.term === raft.term;
    const early: Message[] = [];
    const later: Message[] = [];
    for (const m of raft.msgs) (mayBeSentEarly(m, raft.term, leaderTermPersisted) ? early : later).push(m);
    if (early.length === 0) return [];
    raft.msgs = later;
    return early;
  }

  /** The application persisted, sent and applied everything in the last Ready. */
  advance(): void {
    const ready = this.outstanding;
    if (!ready) throw new RaftError('CONCORD_E_UNAVAILABLE', 'advance() without an outstanding Ready');
    this.outstanding = undefined;
    const log = this.raft.log;
    if (ready.hardState) this.previousHardState = ready.hardState;
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted) {
      log.appliedTo(lastCommitted.index);
      this.raft.reduceUncommittedSize(ready.committedEntries);
    } else if (ready.snapshot) {
      log.appliedTo(ready.snapshot.metadata.index);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry) log.stableTo(lastEntry.index, lastEntry.term);
    if (ready.snapshot) log.stableSnapTo(ready.snapshot.metadata.index);
    if (lastEntry) this.raft.onEntriesPersisted();
  }

  status(): RaftStatus {
    const raft = this.raft;
    const progress = new Map<NodeId, { match: number; next: number; state: string }>();
    if (raft.role === 'leader') {
      for (const [id, pr] of raft.progress) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    }
    return {
      id: raft.id,
      hardState: raft.hardState(),
      softState: raft.softState(),
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      progress,
      leadTransferee: raft.leadTransferee,
    };
  }

  isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  /** The leader this node knows of; NO_NODE when none. */
  leader(): NodeId {
    return this.raft.leader;
  }
}

/**
 * Keeps one acknowledgement per leader and term out of a Ready's accepted MsgAppResp, the last,
 * carrying the highest index: an acceptance means "my log matches yours up to index", so the
 * highest says everything the others do. A follower answers every append, and a leader that
 * commits on each answer appends (the new commit index) to everyone again, so under load answering
 * a batch of appends one by one multiplied the messages on both sides. A leader or term with a
 * rejection among its answers is left as it is.
 */
function compactAppendResponses(messages: Message[]): Message[] {
  const key = (m: Message) => `${m.to}/${m.term}`;
  const accepted = new Map<string, { count: number; highest: number }>();
  const hasRejection = new Set<string>();
  for (const m of messages) {
    if (m.type !== 'MsgAppResp') continue;
    if (m.reject) {
      hasRejection.add(key(m));
      continue;
    }
    const seen = accepted.get(key(m));
    accepted.set(key(m), { count: (seen?.count ?? 0) + 1, highest: Math.max(seen?.highest ?? 0, m.index) });
  }
  if (![...accepted].some(([k, seen]) => seen.count > 1 && !hasRejection.has(k))) return messages;
  const remaining = new Map([...accepted].map(([k, seen]) => [k, seen.count]));
  const compacted: Message[] = [];
  for (const m of messages) {
    const k = key(m);
    if (m.type !== 'MsgAppResp' || m.reject || hasRejection.has(k)) {
      compacted.push(m);
      continue;
    }
    const left = remaining.get(k)! - 1;
    remaining.set(k, left);
    if (left === 0) compacted.push({ ...m, index: accepted.get(k)!.highest });
  }
  return compacted;
}

/**
 * Whether a message promises nothing about this node's disk, so it may be sent before the state it
 * was produced with is persisted:
 * - a proposal or read-index request a follower forwards to its leader is only a request;
 * - a leader's appends, heartbeats and read-index answers of its current term, once that term is on disk (thesis
 *   §10.2.1: the leader may send its entries before writing them itself; its own copy counts
 *   toward a quorum only once persisted, see Raft.onEntriesPersisted). Until its term is durable
 *   (a single voter elects itself within one Ready) a crash could let it lead the same term twice.
 * Everything else (votes, append acknowledgements, heartbeat answers) promises durable state and
 * waits for the Ready it belongs to.
 */
function mayBeSentEarly(m: Message, term: number, leaderTermPersisted: boolean): boolean {
  if (m.type === 'MsgProp' || m.type === 'MsgReadIndex') return true;
  const leaderMessage = m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgReadIndexResp';
  return leaderTermPersisted && m.term === term && leaderMessage;
}

export type { Entry };
