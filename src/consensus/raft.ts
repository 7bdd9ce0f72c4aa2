// The Raft protocol as a pure state machine, in the style of etcd's raft library: input is a tick or
// a message, output is a mailbox of messages plus changes to the log and hard state, which the
// RaftNode wrapper hands to the application as a Ready. No clock, no I/O, no ambient randomness.
//
// Each role has its own step function (stepLeader, stepCandidate, stepFollower) and tick function;
// become* switches between them. Functions named maybe* may do nothing.

import type { InjectableBug } from './bugs.ts';
import { RaftLog } from './log.ts';
import { Progress, majorityCommittedIndex, voteResult } from './progress.ts';
import type { VoteResult } from './progress.ts';
import { ReadOnlyQueue } from './read-only.ts';
import type { ReadOnlyOption } from './read-only.ts';
import type { LogStorage } from './storage.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Role,
  Snapshot,
  SoftState,
} from './types.ts';
import {
  EMPTY_BYTES,
  NO_NODE,
  RaftBugError,
  RaftError,
  assertIndexLike,
  entriesSizeBytes,
  message,
  voteResponseType,
} from './types.ts';
import type { Random } from '../random/seeded-random.ts';

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between a leader's heartbeats. Must be smaller than electionTick. */
  heartbeatTick: number;
  storage: LogStorage;
  /** The last index the application has applied (on restart); 0 for a fresh node. */
  applied?: number;
  /** Upper bound on the entries' size in one MsgApp (at least one entry is always sent). */
  maxSizePerMsgBytes?: number;
  /** Upper bound on the committed entries' size handed to the application in one Ready. */
  maxCommittedSizePerReadyBytes?: number;
  /** At most this many MsgApp in flight to one follower in 'replicate' state. */
  maxInflightMsgs?: number;
  /** At most this many bytes of entries in flight to one follower. */
  maxInflightBytes?: number;
  /** A leader refuses proposals once this many bytes of entries are uncommitted. */
  maxUncommittedEntriesBytes?: number;
  /** A leader steps down when it has not heard from a quorum within an election timeout. */
  checkQuorum?: boolean;
  /** Candidates first ask whether they could win (thesis §9.6), so a rejoining node does not disrupt. */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Source of election jitter. */
  random: Random;
  /** Deliberate defects, for proving the simulator's checks (never set in production). */
  injectedBugs?: ReadonlySet<InjectableBug>;
}

const DEFAULT_MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
const DEFAULT_MAX_INFLIGHT_MSGS = 256;
const DEFAULT_MAX_UNCOMMITTED_ENTRIES_BYTES = 64 * 1024 * 1024;

export const TRANSFER_CONTEXT = new TextEncoder().encode('transfer');

function isTransferContext(context: Uint8Array): boolean {
  if (context.byteLength !== TRANSFER_CONTEXT.byteLength) return false;
  return context.every((byte, i) => byte === TRANSFER_CONTEXT[i]);
}

export function validateRaftConfig(config: RaftConfig): void {
  const fail = (text: string): never => {
    throw new RaftError('CONCORD_E_CONFIG_INVALID', text);
  };
  if (config.id === NO_NODE) fail('cannot use 0 as a node id');
  if (!Number.isSafeInteger(config.heartbeatTick) || config.heartbeatTick <= 0) {
    fail('heartbeat tick must be a positive integer');
  }
  if (!Number.isSafeInteger(config.electionTick) || config.electionTick <= config.heartbeatTick) {
    fail('election tick must be greater than heartbeat tick');
  }
  if (config.maxInflightMsgs !== undefined && config.maxInflightMsgs <= 0) fail('max inflight messages must be greater than 0');
  if (config.maxInflightBytes !== undefined && config.maxSizePerMsgBytes !== undefined &&
      config.maxInflightBytes < config.maxSizePerMsgBytes) {
    fail('max inflight bytes must be >= max message size');
  }
  if (config.readOnlyOption === 'lease' && !config.checkQuorum) {
    fail('checkQuorum must be enabled when readOnlyOption is lease');
  }
}

export type ProposalOutcome = { accepted: true } | { accepted: false; reason: string };

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NO_NODE;
  role: Role = 'follower';
  leader: NodeId = NO_NODE;
  readonly log: RaftLog;
  /** Progress of every member (voters and learners), including this node. */
  readonly progress = new Map<NodeId, Progress>();
  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  /** Outgoing messages, collected until the application takes them in a Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private votes = new Map<NodeId, boolean>();
  /** The transfer target while a leadership transfer is under way. */
  leadTransferee: NodeId = NO_NODE;
  /** Only one membership change may be pending: this is the index of the latest one. */
  private pendingConfIndex = 0;
  private uncommittedSizeBytes = 0;
  private readOnly = new ReadOnlyQueue();
  /** Read-index requests that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly maxMsgSizeBytes: number;
  readonly maxCommittedSizePerReadyBytes: number;
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;
  private readonly maxUncommittedEntriesBytes: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly readOnlyOption: ReadOnlyOption;
  private readonly disableProposalForwarding: boolean;
  private readonly random: Random;
  readonly bugs: ReadonlySet<InjectableBug>;

  constructor(config: RaftConfig) {
    validateRaftConfig(config);
    this.id = config.id;
    this.electionTimeout = config.electionTick;
    this.heartbeatTimeout = config.heartbeatTick;
    this.maxMsgSizeBytes = config.maxSizePerMsgBytes ?? DEFAULT_MAX_SIZE_PER_MSG_BYTES;
    this.maxCommittedSizePerReadyBytes = config.maxCommittedSizePerReadyBytes ?? this.maxMsgSizeBytes;
    this.maxInflightMsgs = config.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
    this.maxInflightBytes = config.maxInflightBytes ?? Number.POSITIVE_INFINITY;
    this.maxUncommittedEntriesBytes = config.maxUncommittedEntriesBytes ?? DEFAULT_MAX_UNCOMMITTED_ENTRIES_BYTES;
    this.checkQuorum = config.checkQuorum ?? false;
    this.preVote = config.preVote ?? false;
    this.readOnlyOption = config.readOnlyOption ?? 'safe';
    this.disableProposalForwarding = config.disableProposalForwarding ?? false;
    this.random = config.random;
    this.bugs = config.injectedBugs ?? new Set();
    this.log = new RaftLog(config.storage, this.bugs);

    const { hardState, confState } = config.storage.initialState();
    this.applyConfState(confState);
    if (hardState.term !== 0 || hardState.vote !== NO_NODE || hardState.commit !== 0) this.loadHardState(hardState);
    if (config.applied !== undefined && config.applied > 0) this.log.appliedTo(config.applied);
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---------------------------------------------------------------------------------------------
  // State accessors

  softState(): SoftState {
    return { leader: this.leader, role: this.role };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(compareIds), learners: [...this.learners].sort(compareIds) };
  }

  /** A node may campaign only while it is a voter. */
  promotable(): boolean {
    return this.voters.has(this.id);
  }

  private loadHardState(hardState: HardState): void {
    assertIndexLike(hardState.term, 'term');
    assertIndexLike(hardState.commit, 'commit');
    if (hardState.commit < this.log.committed || hardState.commit > this.log.lastIndex()) {
      throw new RaftBugError(`hard state commit ${hardState.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`);
    }
    this.log.committed = hardState.commit;
    this.term = hardState.term;
    this.vote = hardState.vote;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private send(m: Message): void {
    if (m.from === NO_NODE) m.from = this.id;
    if (m.type === 'MsgVote' || m.type === 'MsgVoteResp' || m.type === 'MsgPreVote' || m.type === 'MsgPreVoteResp') {
      // Vote messages carry the term they are for (a pre-vote asks about the next term), set by the caller.
      if (m.term === 0) throw new RaftBugError(`term should be set when sending ${m.type}`);
    } else {
      if (m.term !== 0) throw new RaftBugError(`term should not be set when sending ${m.type} (was ${m.term})`);
      // Proposals and read-index requests forwarded to the leader are treated as local messages there.
      if (m.type !== 'MsgProp' && m.type !== 'MsgReadIndex') m.term = this.term;
    }
    this.msgs.push(m);
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends a MsgApp (or a MsgSnap when the needed entries are compacted) to `to`, unless flow control
   * pauses that follower or there is nothing to send and `sendIfEmpty` is false.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(to);
    if (!progress || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.termOrUndefined(prevIndex);
    let entries: Entry[] | undefined = [];
    try {
      // With a full window, send an empty MsgApp only: if every message in the window was lost,
      // its answer (accept or reject) is what clears the window and lets replication resume.
      const throttled = progress.state === 'replicate' && progress.inflights.full();
      if (!throttled) entries = this.log.entriesFrom(progress.next, this.maxMsgSizeBytes);
    } catch (error) {
      if (!(error instanceof RaftError && error.code === 'CONCORD_E_COMPACTED')) throw error;
      entries = undefined;
    }
    if (prevTerm === undefined || entries === undefined) return this.maybeSendSnapshot(to, progress);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(message({ type: 'MsgApp', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed }));
    progress.sentEntries(entries.length, entriesSizeBytes(entries));
    return true;
  }

  private maybeSendSnapshot(to: NodeId, progress: Progress): boolean {
    // A follower we have not heard from recently is probably down; a snapshot would be wasted.
    if (!progress.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot.metadata.index === 0) throw new RaftBugError('need a non-empty snapshot to send');
    progress.becomeSnapshot(snapshot.metadata.index);
    this.send(message({ type: 'MsgSnap', to, snapshot }));
    return true;
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array): void {
    const progress = this.progress.get(to)!;
    // A follower may not have the leader's whole log yet; it must not commit beyond what it matches.
    const commit = Math.min(progress.match, this.log.committed);
    this.send(message({ type: 'MsgHeartbeat', to, commit, context }));
  }

  private forEachPeer(visit: (id: NodeId, progress: Progress) => void): void {
    for (const [id, progress] of this.progress) {
      if (id !== this.id) visit(id, progress);
    }
  }

  private bcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  private bcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext();
    this.bcastHeartbeatWithContext(context ?? EMPTY_BYTES);
  }

  private bcastHeartbeatWithContext(context: Uint8Array): void {
    this.forEachPeer((id) => this.sendHeartbeat(id, context));
  }

  // ---------------------------------------------------------------------------------------------
  // Commit

  /**
   * Raft §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
   * entries from the leader's current term are committed by counting replicas."
   */
  maybeCommit(): boolean {
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0);
    const candidate = majorityCommittedIndex(matches);
    if (candidate <= this.log.committed || candidate > this.log.lastIndex()) return false;
    const termAtCandidate = this.log.termOrUndefined(candidate);
    if (termAtCandidate !== this.term && !this.bugs.has('commit-earlier-term')) return false;
    this.log.commitTo(candidate);
    return true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrUndefined(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------------------------------------
  // Role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.leader = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    const lastIndex = this.log.lastIndex();
    for (const [id, old] of this.progress) {
      const fresh = new Progress(lastIndex + 1, this.maxInflightMsgs, this.maxInflightBytes, old.isLearner);
      // A node counts toward a quorum only with what it has persisted (see onEntriesPersisted).
      if (id === this.id) fresh.match = this.log.lastStableIndex();
      this.progress.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly = new ReadOnlyQueue();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random.nextInt(this.electionTimeout);
  }

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new RaftBugError('invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new RaftBugError('invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither its term nor its vote: it only asks whether it could win.
    this.votes = new Map();
    this.role = 'preCandidate';
    this.leader = NO_NODE;
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new RaftBugError('invalid transition [follower -> leader]');
    this.reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    // Followers start in probe state; this node is trivially up to date with itself.
    this.progress.get(this.id)?.becomeReplicate();
    // Raft §8: "each leader commit a blank no-op entry into the log at the start of its term".
    if (!this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }])) {
      throw new RaftBugError('empty entry was dropped');
    }
    // No membership change until this no-op is applied: the known fix for single-server changes
    // is that a new leader first commits an entry of its own term (see ConfChange in types.ts).
    // Set after the append: covering only the entries before it would let a change in early.
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---------------------------------------------------------------------------------------------
  // Elections

  private hup(transfer: boolean): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChange()) return; // the membership we would campaign in is not final yet
    this.campaign(this.preVote && !transfer ? 'preElection' : 'election', transfer);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const pending = this.log.slice(this.log.applied + 1, this.log.committed + 1, Number.POSITIVE_INFINITY);
    return pending.some((entry) => entry.type === 'confChange');
  }

  private campaign(kind: 'preElection' | 'election', transfer: boolean): void {
    let voteType: MessageType;
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'MsgPreVote';
      term = this.term + 1; // the term the node would campaign in
    } else {
      this.becomeCandidate();
      voteType = 'MsgVote';
      term = this.term;
    }
    if (this.poll(this.id, voteResponseType(voteType), true) === 'won') {
      // A single-voter cluster wins at once.
      if (kind === 'preElection') this.campaign('election', transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const voter of [...this.voters].sort(compareIds)) {
      if (voter === this.id) continue;
      this.send(message({
        type: voteType, to: voter, term, index: lastIndex, logTerm: lastTerm,
        context: transfer ? TRANSFER_CONTEXT : EMPTY_BYTES,
      }));
    }
  }

  private poll(from: NodeId, _type: MessageType, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteResult([...this.voters], this.votes);
  }

  /** Handles MsgVote and MsgPreVote from a candidate whose term is not older than ours. */
  private handleVoteRequest(m: Message): void {
    // Raft §5.2: "each server will vote for at most one candidate in a given term, on a
    // first-come-first-served basis". A pre-vote for a later term binds nothing.
    let canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (m.type === 'MsgPreVote' && m.term > this.term);
    if (this.bugs.has('double-vote') && m.type === 'MsgVote') canVote = true;
    // Raft §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the candidate".
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // The response carries the request's term: for a pre-vote we have not (and must not) move to it.
      this.send(message({ type: voteResponseType(m.type), to: m.from, term: m.term }));
      if (m.type === 'MsgVote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true }));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Ticks

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(message({ type: 'MsgHup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: 'MsgCheckQuorum', from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === 'leader' && this.leadTransferee !== NO_NODE) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'MsgBeat', from: this.id }));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Step: the entry point for every message

  step(m: Message): void {
    if (m.term === 0) {
      // A local message (or a forwarded proposal / read-index request).
    } else if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      const acceptStale = this.bugs.has('accept-stale-term-append') && m.type === 'MsgApp' && this.role === 'follower';
      if (!acceptStale) return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(false);
        return;
      case 'MsgVote':
      case 'MsgPreVote':
        this.handleVoteRequest(m);
        return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /** A message from a later term. Returns false when the message must be ignored. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
      const force = isTransferContext(m.context);
      // Thesis §4.2.3: "if a server receives a RequestVote request within the minimum election
      // timeout of hearing from a current leader, it does not update its term or grant its vote".
      const inLease = this.checkQuorum && this.leader !== NO_NODE && this.electionElapsed < this.electionTimeout;
      if (!force && inLease) return false;
    }
    if (m.type === 'MsgPreVote') {
      // Never change our term in response to a pre-vote.
    } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
      // We will move to that term when a quorum grants the pre-vote; a rejection's term is handled below.
    } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
      this.becomeFollower(m.term, m.from);
    } else {
      this.becomeFollower(m.term, NO_NODE);
    }
    return true;
  }

  /** A message from an earlier term: mostly ignored, but some senders need to learn the new term. */
  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
      // A stale leader (e.g. after a partition heals) would otherwise never learn of the new term:
      // with CheckQuorum or PreVote, the others never raise their terms to its level.
      this.send(message({ type: 'MsgAppResp', to: m.from }));
    } else if (m.type === 'MsgPreVote') {
      // Tell the pre-candidate about our term so it stops campaigning.
      this.send(message({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return;
      case 'MsgCheckQuorum':
        this.checkQuorumActive();
        return;
      case 'MsgProp':
        this.leaderPropose(m);
        return;
      case 'MsgReadIndex':
        this.leaderReadIndex(m);
        return;
    }
    const progress = this.progress.get(m.from);
    if (!progress) return;
    switch (m.type) {
      case 'MsgAppResp':
        this.handleAppendResponse(m, progress);
        return;
      case 'MsgHeartbeatResp':
        this.handleHeartbeatResponse(m, progress);
        return;
      case 'MsgSnapStatus':
        if (progress.state !== 'snapshot') return;
        // Whether or not it arrived, wait for the follower's next answer before sending more.
        progress.becomeProbe();
        progress.msgAppFlowPaused = true;
        return;
      case 'MsgUnreachable':
        // The last MsgApp was probably lost: stop optimistic pipelining and probe again.
        if (progress.state === 'replicate') progress.becomeProbe();
        return;
      case 'MsgTransferLeader':
        this.handleTransferLeader(m, progress);
        return;
    }
  }

  private checkQuorumActive(): void {
    let active = 0;
    for (const voter of this.voters) {
      const progress = this.progress.get(voter);
      if (voter === this.id || progress?.recentActive) active++;
    }
    for (const [id, progress] of this.progress) progress.recentActive = id === this.id;
    // Thesis §6.2: "a leader ... steps down if an election timeout elapses without a successful
    // round of heartbeats to a majority of its cluster".
    if (active < Math.floor(this.voters.size / 2) + 1) this.becomeFollower(this.term, NO_NODE);
  }

  private leaderPropose(m: Message): void {
    if (m.entries.length === 0) throw new RaftBugError('stepped empty MsgProp');
    if (!this.progress.has(this.id)) return; // removed from the cluster: drop
    if (this.leadTransferee !== NO_NODE) return; // a transfer is under way: drop
    const entries = m.entries.map((entry, i) => {
      if (entry.type !== 'confChange') return entry;
      if (this.pendingConfIndex > this.log.applied) {
        // Only one membership change at a time: this one becomes a no-op.
        return { ...entry, type: 'normal' as const, data: EMPTY_BYTES };
      }
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
      return entry;
    });
    if (!this.appendEntries(entries)) return;
    this.bcastAppend();
  }

  private leaderReadIndex(m: Message): void {
    if (this.voters.size <= 1) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    if (this.bugs.has('read-without-quorum')) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    // Thesis §6.4: the leader must have committed an entry of its own term before its commit index
    // can be trusted as the read index.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexConfirmation(m);
  }

  private sendReadIndexConfirmation(m: Message): void {
    if (this.readOnlyOption === 'lease') {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    this.readOnly.addRequest(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeatWithContext(m.context);
  }

  private respondToReadIndex(request: Message, readIndex: number): void {
    if (request.from === NO_NODE || request.from === this.id) {
      this.readStates.push({ index: readIndex, context: request.context });
    } else {
      this.send(message({ type: 'MsgReadIndexResp', to: request.from, index: readIndex, context: request.context }));
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (!this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndexConfirmation(m);
  }

  private handleAppendResponse(m: Message, progress: Progress): void {
    progress.recentActive = true;
    if (m.reject) {
      let nextProbeIndex = m.rejectHint;
      if (m.logTerm > 0) {
        // Skip every entry of a term the follower does not have (fast backtracking).
        nextProbeIndex = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      }
      if (progress.maybeDecrTo(m.index, nextProbeIndex)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(m.index) && !(progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot)) {
      return;
    }
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex()) {
      // The snapshot arrived (or the follower caught up otherwise): replicate from its match.
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Keep the pipe full while the window allows; bounded by the number of entries to send.
    while (this.maybeSendAppend(m.from, false)) { /* send more */ }
    if (m.from === this.leadTransferee && progress.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, progress: Progress): void {
    progress.recentActive = true;
    progress.msgAppFlowPaused = false;
    if (progress.match < this.log.lastIndex() || progress.state === 'probe') this.sendAppend(m.from);
    if (this.readOnlyOption !== 'safe' || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks) return;
    if (voteResult([...this.voters], new Map([...acks].map((id) => [id, true]))) !== 'won') return;
    for (const read of this.readOnly.advance(m.context)) this.respondToReadIndex(read.request, read.index);
  }

  private handleTransferLeader(m: Message, progress: Progress): void {
    if (progress.isLearner) return;
    const transferee = m.from;
    if (this.leadTransferee !== NO_NODE) {
      if (this.leadTransferee === transferee) return; // the same transfer is already under way
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout, or it is abandoned (tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: 'MsgTimeoutNow', to }));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_NODE;
  }

  private stepCandidate(m: Message): void {
    const myVoteResponse: MessageType = this.role === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        return; // no leader: drop
      case 'MsgApp':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'MsgTimeoutNow':
        return;
    }
    if (m.type !== myVoteResponse) return;
    const result = this.poll(m.from, m.type, !m.reject);
    if (result === 'won') {
      if (this.role === 'preCandidate') this.campaign('election', false);
      else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === 'lost') {
      // A rejection from a later term already made us a follower in stepHigherTerm.
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        if (this.leader === NO_NODE || this.disableProposalForwarding) return; // dropped
        this.send({ ...m, to: this.leader });
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        if (m.term >= this.term) this.leader = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTransferLeader':
        if (this.leader === NO_NODE) return;
        this.send({ ...m, to: this.leader, term: 0 });
        return;
      case 'MsgTimeoutNow':
        // Thesis §3.10: the target "starts an election immediately", skipping PreVote.
        this.hup(true);
        return;
      case 'MsgReadIndex':
        if (this.leader === NO_NODE) return; // dropped
        this.send({ ...m, to: this.leader });
        return;
      case 'MsgReadIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.log.committed }));
      return;
    }
    const lastNewIndex = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNewIndex !== undefined) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: lastNewIndex }));
      return;
    }
    // Raft §5.3: "If a follower's log is inconsistent with the leader's, the AppendEntries
    // consistency check will fail". The hint lets the leader skip a whole conflicting term at once.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(message({
      type: 'MsgAppResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term,
    }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(message({ type: 'MsgHeartbeatResp', to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (!snapshot) throw new RaftBugError('MsgSnap without a snapshot');
    const index = this.restore(snapshot) ? this.log.lastIndex() : this.log.committed;
    this.send(message({ type: 'MsgAppResp', to: m.from, index }));
  }

  /** Installs a snapshot from the leader. Returns false when it brings nothing new. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.role !== 'follower') {
      // Only a follower receives snapshots; become one rather than corrupt state.
      this.becomeFollower(this.term + 1, NO_NODE);
      return false;
    }
    const member = confState.voters.includes(this.id) || confState.learners.includes(this.id);
    if (!member) return false; // a snapshot that does not include us is from a configuration we are not in
    if (this.log.matchTerm(index, term)) {
      // We already have the entry: just commit up to it (fast-forward) and keep the log.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.progress.clear();
    this.applyConfState(confState);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals and membership

  /** Appends entries to the leader's log. Returns false when the uncommitted-size limit refuses them. */
  private appendEntries(entries: Entry[]): boolean {
    const lastIndex = this.log.lastIndex();
    const stamped = entries.map((entry, i) => ({ ...entry, term: this.term, index: lastIndex + 1 + i }));
    const sizeBytes = entriesSizeBytes(stamped.filter((entry) => entry.data.byteLength > 0));
    // An empty no-op always passes, so a new leader can always commit its first entry.
    if (this.uncommittedSizeBytes > 0 && sizeBytes > 0 &&
        this.uncommittedSizeBytes + sizeBytes > this.maxUncommittedEntriesBytes) {
      return false;
    }
    this.uncommittedSizeBytes += sizeBytes;
    const newLastIndex = this.log.append(stamped);
    // The leader's own copy counts toward the quorum only once it is persisted (onEntriesPersisted),
    // so an entry is never committed while fewer than a majority hold it on disk, even though the
    // leader sends its appends before its own write completes (thesis §10.2.1).
    if (this.bugs.has('leader-self-ack-before-persist')) {
      this.progress.get(this.id)?.maybeUpdate(newLastIndex);
      this.maybeCommit();
    }
    return true;
  }

  /**
   * The application persisted the log up to lastStableIndex(): a leader now counts those entries
   * as its own acknowledgement, which may commit them.
   */
  onEntriesPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.progress.get(this.id);
    if (!self || !self.maybeUpdate(this.log.lastStableIndex())) return;
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  /** Accounts for committed entries leaving the uncommitted window (called as they are applied). */
  reduceUncommittedSize(entries: readonly Entry[]): void {
    if (this.uncommittedSizeBytes === 0) return;
    const sizeBytes = entriesSizeBytes(entries.filter((entry) => entry.data.byteLength > 0));
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - sizeBytes);
  }

  /** Proposes entries; the outcome says whether this node accepted (or forwarded) them. */
  propose(entries: Entry[]): ProposalOutcome {
    if (this.role === 'leader') {
      if (!this.progress.has(this.id)) return { accepted: false, reason: 'this node was removed from the cluster' };
      if (this.leadTransferee !== NO_NODE) return { accepted: false, reason: 'leadership transfer in progress' };
      const before = this.log.lastIndex();
      this.step(message({ type: 'MsgProp', from: this.id, entries }));
      return this.log.lastIndex() > before ? { accepted: true } : { accepted: false, reason: 'too many uncommitted entries' };
    }
    if (this.role !== 'follower') return { accepted: false, reason: 'no leader (election in progress)' };
    if (this.leader === NO_NODE) return { accepted: false, reason: 'no leader known' };
    if (this.disableProposalForwarding) return { accepted: false, reason: 'proposal forwarding is disabled' };
    this.step(message({ type: 'MsgProp', from: this.id, entries }));
    return { accepted: true };
  }

  private applyConfState(confState: ConfState): void {
    this.voters = new Set(confState.voters);
    this.learners = new Set(confState.learners);
    const next = this.log.lastIndex() + 1;
    for (const id of [...confState.voters, ...confState.learners]) {
      if (!this.progress.has(id)) {
        const progress = new Progress(next, this.maxInflightMsgs, this.maxInflightBytes, this.learners.has(id));
        if (id === this.id) progress.match = next - 1;
        this.progress.set(id, progress);
      }
    }
  }

  /**
   * Applies a committed membership change (the application calls this when it applies the entry).
   * Returns the resulting membership, which the application stores with its next snapshot.
   */
  applyConfChange(change: ConfChange): ConfState {
    const { nodeId } = change;
    switch (change.type) {
      case 'addNode':
        this.learners.delete(nodeId);
        this.voters.add(nodeId);
        this.ensureProgress(nodeId, false);
        break;
      case 'addLearner':
        // Demoting a voter in one step is not a single-server change; the caller refuses it.
        if (this.voters.has(nodeId)) break;
        this.learners.add(nodeId);
        this.ensureProgress(nodeId, true);
        break;
      case 'removeNode':
        this.voters.delete(nodeId);
        this.learners.delete(nodeId);
        this.progress.delete(nodeId);
        break;
    }
    this.pendingConfIndex = Math.min(this.pendingConfIndex, this.log.lastIndex());
    this.afterConfChange(nodeId);
    return this.confState();
  }

  private ensureProgress(id: NodeId, isLearner: boolean): void {
    const existing = this.progress.get(id);
    if (existing) {
      existing.isLearner = isLearner;
      return;
    }
    const progress = new Progress(this.log.lastIndex() + 1, this.maxInflightMsgs, this.maxInflightBytes, isLearner);
    if (id === this.id) progress.match = this.log.lastIndex();
    // A new member is assumed active, so it is sent a snapshot if it needs one.
    progress.recentActive = true;
    this.progress.set(id, progress);
  }

  private afterConfChange(changed: NodeId): void {
    if (this.role !== 'leader') return;
    if (!this.voters.has(this.id)) {
      // The leader removed itself (or was made a learner): it steps down once the change is applied.
      this.becomeFollower(this.term, NO_NODE);
      return;
    }
    if (this.leadTransferee === changed && !this.voters.has(changed)) this.abortLeaderTransfer();
    // The quorum may have shrunk, so entries waiting for it may now be committed.
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else {
      this.forEachPeer((id) => this.maybeSendAppend(id, false));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Introspection for the application, the simulator and tests

  /** On the leader: a membership change is proposed but not yet applied (another must wait). */
  hasPendingConfChange(): boolean {
    return this.role === 'leader' && this.pendingConfIndex > this.log.applied;
  }

  voterIds(): NodeId[] {
    return [...this.voters].sort(compareIds);
  }

  learnerIds(): NodeId[] {
    return [...this.learners].sort(compareIds);
  }
}

export function compareIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

