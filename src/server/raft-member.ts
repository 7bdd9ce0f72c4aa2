// One member's Raft run loop: it drives the pure RaftNode with a timer, makes each Ready durable
// before sending its messages, applies committed entries to the state machine, answers the
// proposals and reads waiting on them, and takes snapshots. It is the shell around the core: all
// I/O goes through the interfaces below, so tests can run it on in-memory fakes.

import type { RaftConfig } from '../consensus/raft.ts';
import { RaftNode } from '../consensus/raft-node.ts';
import type { MemoryStorage } from '../consensus/storage.ts';
import type { ConfChange, ConfChangeType, ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot } from '../consensus/types.ts';
import { NO_NODE } from '../consensus/types.ts';
import { decodeConfChange } from '../consensus/conf-change-codec.ts';
import type { Random } from '../random/seeded-random.ts';
import { AppliedRequests, decodeEnvelope, encodeEnvelope } from './proposal-envelope.ts';
import type { ProposalKind } from './proposal-envelope.ts';
import { decodeMemberSnapshot, encodeMemberSnapshotEnvelope } from './member-snapshot.ts';
import { MemberRegistry, decodeConfChangeContext, encodeConfChangeContext } from './member-registry.ts';
import type { MemberAttributesUpdate, MemberInfo } from './member-registry.ts';
import { nextSnapshotIndex, snapshotInterval, snapshotPhase } from '../consensus/snapshot-schedule.ts';

/** Where a Ready's entries and hard state become durable (the WAL in production). */
export interface DurableLog {
  /** Resolves once the hard state and entries are on stable storage (fsynced when mustSync). */
  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void>;
  /** Makes a snapshot durable and records it in the log. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** The log before `index` is covered by a durable snapshot and may be discarded. */
  releaseBefore(index: number): Promise<void>;
}

/** The replicated state machine (the key-value store in production). */
export interface StateMachine<Result> {
  apply(payload: Uint8Array, index: number): Result;
  snapshot(): Uint8Array;
  /**
   * Optional: captures the state now, cheaply, and returns an encoder that writes it out in slices
   * (each step encodes up to maxKeys keys), so a large state is snapshotted without stalling the
   * member. The last step returns `prefixBytes` bytes for the member to fill, followed by the bytes
   * snapshot() would have returned at the capture: the member's snapshot is then one buffer that
   * was never copied.
   */
  captureSnapshot?(prefixBytes: number): SnapshotEncoder;
  restore(data: Uint8Array): void;
}

/** Encodes a captured snapshot a slice at a time; the last step returns it (see captureSnapshot). */
export interface SnapshotEncoder {
  step(maxKeys: number): Uint8Array | undefined;
}

/** For a state machine without captureSnapshot: its whole snapshot at once, after the room asked for. */
function wholeSnapshotEncoder(state: Uint8Array, prefixBytes: number): SnapshotEncoder {
  const bytes = new Uint8Array(prefixBytes + state.byteLength);
  bytes.set(state, prefixBytes);
  return { step: () => bytes };
}

export interface PeerSender {
  send(messages: readonly Message[]): void;
}

/** Timers and the wall clock, injectable so tests can drive time by hand. */
export interface MemberTimers {
  nowMs(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Runs the callback on a later turn of the event loop, once pending I/O has been handled (setImmediate). */
  nextTurn(callback: () => void): void;
}

export interface RaftMemberOptions<Result> {
  id: NodeId;
  /** The recovered stable log: snapshot, entries and hard state already loaded from disk. */
  storage: MemoryStorage;
  durableLog: DurableLog;
  stateMachine: StateMachine<Result>;
  transport: PeerSender;
  timers: MemberTimers;
  random: Random;
  tickIntervalMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /**
   * Snapshot the state machine about every this many applied entries (etcd's --snapshot-count),
   * at this member's own phase of the interval (see consensus/snapshot-schedule.ts).
   */
  snapshotEveryEntries: number;
  /** Entries kept behind a snapshot so that slightly lagging followers need no snapshot. */
  keptEntriesAfterSnapshot: number;
  /** A proposal not applied within this time fails with a timeout error. */
  proposalTimeoutMs: number;
  /** Proposals waiting to be applied at once; beyond this new ones are refused (backpressure). */
  maxPendingProposals: number;
  /** Requests remembered per member for at-most-once re-proposal. */
  appliedRequestsWindow: number;
  raftOverrides?: Partial<RaftConfig>;
  onLeaderChange?: (leader: NodeId, term: number) => void;
  /** The member list or the voters changed (a membership change or attributes applied, a snapshot installed). */
  onMembershipChange?: (members: MemberInfo[], confState: ConfState) => void;
  /** This member applied its own removal from the cluster. */
  onRemoved?: () => void;
  /** A snapshot of this member's own state is durable (for the operator's log and metrics). */
  onSnapshotSaved?: (report: SnapshotSavedReport) => void;
  onFatal?: (error: Error) => void;
}

/** What a snapshot cost, from the capture to the file being durable. */
export interface SnapshotSavedReport {
  index: number;
  /** Bytes of the member's snapshot data (the state machine plus the member's own state). */
  dataBytes: number;
  /** From the capture to the last encoded slice (the member runs on between slices). */
  encodeMs: number;
  /** Writing the file, fsyncing it, and recording it in the WAL. */
  saveMs: number;
}

export type MemberErrorCode =
  | 'CONCORD_E_TIMEOUT'
  | 'CONCORD_E_NO_LEADER'
  | 'CONCORD_E_NOT_LEADER'
  | 'CONCORD_E_TOO_MANY_PENDING'
  | 'CONCORD_E_STOPPED'
  | 'CONCORD_E_WRITES_DISABLED'
  /** The core refused a membership change at once (another is pending, the change makes no sense). */
  | 'CONCORD_E_MEMBERSHIP_CHANGE_REFUSED'
  | 'CONCORD_E_LEADER_TRANSFER_TIMEOUT';

export class MemberError extends Error {
  override name = 'MemberError';
  readonly code: MemberErrorCode;
  constructor(code: MemberErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

interface PendingProposal {
  resolve(result: unknown): void;
  reject(error: Error): void;
  /** When it times out (timers.nowMs); one timer serves all proposals (see armProposalTimeout). */
  deadlineMs: number;
  data: Uint8Array;
}

interface PendingConfChange {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: unknown;
  data: Uint8Array;
}

interface PendingRead {
  resolve(): void;
  reject(error: Error): void;
  timer: unknown;
}

const REQUEST_IDS_PER_MS = 1024;
/**
 * Bytes of proposals handed to Raft as one batch at most: one proposal message stays far below the
 * peer transport's frame limit, and one batch below the leader's limit on uncommitted entries.
 */
const MAX_PROPOSAL_BATCH_BYTES = 1024 * 1024;
/** Keys a background snapshot encodes before it lets the member run again (a few milliseconds' work). */
const SNAPSHOT_KEYS_PER_SLICE = 500;
/**
 * Applied proposals answered per turn of the event loop (see answerApplied). Measured at 64 clients
 * on one member: 16 gave 5-11 % more writes/s than answering a whole batch at once; 8 was slower
 * than 16 (more, smaller fsyncs), 32 within noise of 16. Measured again once fsyncs were shorter
 * (on-thread fsync, a faster disk; 2026-12-03, two runs each): 32 gave 2-5 % more than 16 at 64
 * clients on one member and 6-10 % more on three, the same at 1000; a whole batch (64) 13-18 % less.
 */
export const ANSWERS_PER_TURN = 32;
/**
 * Turns of the event loop between a leader's apply and the commit notices a follower waits for (see
 * holdCommitNotice). Over node:http2 (TLS client connections) an answer leaves in two steps: the
 * response message on the turn after the call ends, and its trailers (which complete the call for
 * the client) on a later turn. Notices sent on the first turn went out between the two and held the
 * trailers back by about 0.15 ms on one client (traced on a 3-member cluster here); from the second
 * turn on, they follow the trailers. The member's own HTTP/2 server (plaintext) writes a whole answer
 * in the turn of the apply, so there the delay is only the notices' wait.
 */
const COMMIT_NOTICE_DELAY_TURNS = 2;
/**
 * How long a leader may hold a commit notice to a follower that has no forwarded proposal waiting
 * for it (see holdCommitNotice). Under a steady load the next append, which carries the commit,
 * goes out well within it (about 0.5 ms apart at one client), so the follower reads one message per
 * write instead of two. Without load it bounds how far such a follower's state (what its watchers
 * and serializable reads see) trails the leader's.
 */
export const COMMIT_NOTICE_HOLD_MS = 5;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class RaftMember<Result> {
  readonly id: NodeId;
  readonly node: RaftNode;
  private readonly options: RaftMemberOptions<Result>;
  private appliedRequests: AppliedRequests;
  /**
   * Request IDs must never repeat across restarts (a repeat inside the AppliedRequests window
   * would be skipped as a duplicate). Like etcd's ID generator, start from the wall clock: a new
   * incarnation starts above every ID the previous one issued unless it made more than
   * REQUEST_IDS_PER_MS proposals per millisecond on average.
   */
  private nextRequestId: number;
  private readonly pendingProposals = new Map<number, PendingProposal>();
  /** Entries applied since the member started, and their bytes: the snapshot interval follows their mean size. */
  private appliedEntries = 0;
  private appliedEntryBytes = 0;
  /** The one timer for the proposals' timeouts (armProposalTimeout). */
  private proposalTimeoutTimer: unknown = undefined;
  /**
   * Applied proposals of this member whose callers have not been answered yet, oldest first, as
   * (resolve, result) pairs: at most maxPendingProposals of them, since each left pendingProposals.
   */
  private appliedAnswers: unknown[] = [];
  /**
   * How far into appliedAnswers the callers are answered (the array is emptied once all are). Above
   * 0 only while the rest waits for the next turn (see answerSome).
   */
  private appliedAnswersDone = 0;
  /** Membership changes proposed here, waiting to be applied, by request id. */
  private readonly pendingConfChanges = new Map<number, PendingConfChange>();
  private members = new MemberRegistry();
  private readonly leaderWaiters = new Set<(leader: NodeId) => void>();
  private removed = false;
  /**
   * A member was added: the next snapshot must include it. A new member's log starts empty, so it
   * needs a snapshot, and Raft refuses one whose membership does not list it (thesis §4.2.1).
   */
  private snapshotWanted = false;
  /** The snapshot being written in the background, if any (one at a time). */
  private snapshotInProgress: Promise<void> | undefined;
  /** Reads waiting for a read index to be confirmed, by read context. */
  private readonly readsAwaitingIndex = new Map<string, PendingRead[]>();
  /** Reads whose index is known, waiting for the state machine to catch up. */
  private readsAwaitingApply: { index: number; read: PendingRead }[] = [];
  private nextReadId = 1;
  private ticker: unknown;
  private processing = false;
  private earlySendScheduled = false;
  /**
   * Commit notices held back (see holdCommitNotice), with when the peer's first untold commit was
   * held. Bounded by the peers: one per peer, the latest.
   */
  private readonly commitNotices = new Map<NodeId, { notice: Message; heldSinceMs: number }>();
  private awaitedNoticesScheduled = false;
  private noticeHoldTimer: unknown;
  /**
   * A leader's followers with a forwarded proposal whose commit they have not yet been told of: the
   * log index that covers their proposals. Their clients wait for it, so their notices are not held.
   */
  private readonly forwardedUpTo = new Map<NodeId, number>();
  /** Proposals waiting for the end of this turn of the event loop, to go to Raft together. */
  private proposalBatch: Uint8Array[] = [];
  private proposalBatchBytes = 0;
  private stopped = false;
  /** Set when the disk refused a write (e.g. it is full): writes fail, reads go on. */
  writesDisabledReason: string | undefined;
  private confState: ConfState;
  private leader: NodeId = NO_NODE;
  /** The last index the state machine has applied (it may trail the core's, see runReadyLoop). */
  private stateMachineApplied: number;

  constructor(options: RaftMemberOptions<Result>) {
    this.options = options;
    this.id = options.id;
    this.appliedRequests = new AppliedRequests(options.appliedRequestsWindow);
    this.nextRequestId = options.timers.nowMs() * REQUEST_IDS_PER_MS;
    const snapshot = options.storage.snapshot();
    if (snapshot.metadata.index > 0) this.restoreSnapshotData(snapshot.data, false);
    this.confState = snapshot.metadata.confState;
    this.stateMachineApplied = snapshot.metadata.index;
    this.node = new RaftNode({
      id: options.id,
      storage: options.storage,
      applied: snapshot.metadata.index,
      electionTick: options.electionTicks,
      heartbeatTick: options.heartbeatTicks,
      random: options.random,
      preVote: true,
      checkQuorum: true,
      ...options.raftOverrides,
    });
  }

  start(): void {
    this.ticker = this.options.timers.setInterval(() => {
      this.node.tick();
      this.scheduleReady();
    }, this.options.tickIntervalMs);
    // A single-member cluster need not wait out an election timeout to start serving.
    if (this.confState.voters.length === 1 && this.confState.voters[0] === this.id) this.node.campaign();
    this.scheduleReady();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.forgetCommitNotices();
    this.options.timers.clearInterval(this.ticker);
    if (this.proposalTimeoutTimer !== undefined) this.options.timers.clearTimeout(this.proposalTimeoutTimer);
    this.proposalTimeoutTimer = undefined;
    this.failAll(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down; retry on another member'));
    for (const wake of [...this.leaderWaiters]) wake(NO_NODE);
  }

  /**
   * Before a planned stop: a leader hands leadership to its most up-to-date voter, so the cluster
   * need not wait out an election timeout (etcd does the same on shutdown). Resolves once another
   * member leads, or after timeoutMs; a member that does not lead has nothing to hand over.
   */
  async handOverLeadership(timeoutMs: number): Promise<NodeId> {
    if (!this.isLeader() || this.stopped) return NO_NODE;
    const target = this.bestTransferTarget();
    if (target === NO_NODE) return NO_NODE;
    try {
      await this.transferLeadership(target, timeoutMs);
      return target;
    } catch {
      return NO_NODE;
    }
  }

  private bestTransferTarget(): NodeId {
    let best = NO_NODE;
    let bestMatch = -1;
    for (const [id, progress] of this.node.status().progress) {
      if (id === this.id || !this.confState.voters.includes(id)) continue;
      if (progress.match > bestMatch) {
        best = id;
        bestMatch = progress.match;
      }
    }
    return best;
  }

  /** Asks the core to hand leadership to `target`; resolves once `target` leads. */
  transferLeadership(target: NodeId, timeoutMs: number): Promise<void> {
    if (!this.isLeader()) return Promise.reject(new MemberError('CONCORD_E_NOT_LEADER', 'only the leader can transfer leadership'));
    if (target === this.id) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const wake = (leader: NodeId) => {
        if (leader !== target && !this.stopped) return;
        this.leaderWaiters.delete(wake);
        this.options.timers.clearTimeout(timer);
        if (leader === target) resolve();
        else reject(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
      };
      const timer = this.options.timers.setTimeout(() => {
        this.leaderWaiters.delete(wake);
        reject(new MemberError('CONCORD_E_LEADER_TRANSFER_TIMEOUT', `leadership did not move to ${target.toString(16)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.leaderWaiters.add(wake);
      this.node.transferLeadership(target);
      this.scheduleReady();
    });
  }

  isLeader(): boolean {
    return this.node.isLeader();
  }

  leaderId(): NodeId {
    return this.leader;
  }

  term(): number {
    return this.node.raft.term;
  }

  appliedIndex(): number {
    return this.stateMachineApplied;
  }

  membership(): { voters: bigint[]; learners: bigint[] } {
    return { voters: [...this.confState.voters], learners: [...this.confState.learners] };
  }

  /** The replicated member list (names and URLs). */
  memberList(): MemberInfo[] {
    return this.members.list();
  }

  isRemovedMember(id: NodeId): boolean {
    return this.members.isRemoved(id);
  }

  /** On the leader: how far each follower's log matches (learner catch-up checks use it). */
  followerMatch(): Map<NodeId, number> {
    const match = new Map<NodeId, number>();
    for (const [id, progress] of this.node.status().progress) match.set(id, progress.match);
    return match;
  }

  /** On the leader: a membership change is proposed and not yet applied (or this new leader has applied nothing yet). */
  membershipChangePending(): boolean {
    return this.node.raft.hasPendingConfChange();
  }

  lastLogIndex(): number {
    return this.node.raft.log.lastIndex();
  }

  /** Whether the leader heard from `peer` within the last election timeout (etcd's "active" peer). */
  isRecentlyActive(peer: NodeId): boolean {
    return this.node.raft.progress.get(peer)?.recentActive ?? false;
  }

  committedIndex(): number {
    return this.node.raft.log.committed;
  }

  step(message: Message): void {
    if (this.stopped) return;
    this.node.step(message);
    if (message.type === 'MsgProp' && message.from !== this.id && this.node.isLeader()) {
      // Appended as it was stepped (or refused, and then this index covers less: harmless).
      this.forwardedUpTo.set(message.from, this.node.raft.log.lastIndex());
    }
    this.scheduleReady();
  }

  /** The transport could not deliver to `peer`: Raft stops pipelining to it and probes again. */
  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.node.reportUnreachable(peer);
    this.scheduleReady();
  }

  reportSnapshot(peer: NodeId, delivered: boolean): void {
    if (this.stopped) return;
    this.node.reportSnapshot(peer, delivered);
    this.scheduleReady();
  }

  /**
   * Proposes a command; resolves with the state machine's result once it is applied here. The
   * payload is copied before this returns (into the proposal's envelope), so the caller may reuse it.
   */
  propose(payload: Uint8Array): Promise<Result> {
    return this.proposeEnvelope('stateMachine', payload) as Promise<Result>;
  }

  /** Proposes a change of a member's attributes (name, client or peer URLs); resolves once applied here. */
  async proposeMemberAttributes(update: MemberAttributesUpdate): Promise<void> {
    await this.proposeEnvelope('members', new TextEncoder().encode(JSON.stringify(update)));
  }

  /**
   * Proposes a single-server membership change carrying the member's attributes; resolves with the
   * member list once the change is applied here. A change the core refuses at once (another one is
   * pending, it makes no sense) fails with CONCORD_E_MEMBERSHIP_CHANGE_REFUSED.
   */
  proposeConfChange(type: ConfChangeType, nodeId: NodeId, member?: { name: string; peerUrls: string[]; clientUrls: string[] }): Promise<MemberInfo[]> {
    if (this.stopped) return Promise.reject(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    if (this.writesDisabledReason) return Promise.reject(new MemberError('CONCORD_E_WRITES_DISABLED', this.writesDisabledReason));
    const requestId = this.nextRequestId++;
    const change: ConfChange = {
      type,
      nodeId,
      context: encodeConfChangeContext({ member, proposal: { memberId: this.id.toString(), requestId } }),
    };
    const outcome = this.node.proposeConfChange(change);
    this.scheduleReady();
    if (!outcome.accepted) {
      return Promise.reject(new MemberError('CONCORD_E_MEMBERSHIP_CHANGE_REFUSED', outcome.reason ?? 'the membership change was refused'));
    }
    return new Promise<MemberInfo[]>((resolve, reject) => {
      const timer = this.options.timers.setTimeout(() => {
        this.pendingConfChanges.delete(requestId);
        reject(new MemberError('CONCORD_E_TIMEOUT', 'request timed out'));
      }, this.options.proposalTimeoutMs);
      this.pendingConfChanges.set(requestId, { resolve: resolve as (value: unknown) => void, reject, timer, data: change.context });
    });
  }

  private proposeEnvelope(kind: ProposalKind, payload: Uint8Array): Promise<unknown> {
    if (this.stopped) return Promise.reject(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    if (this.writesDisabledReason) return Promise.reject(new MemberError('CONCORD_E_WRITES_DISABLED', this.writesDisabledReason));
    if (this.pendingProposals.size >= this.options.maxPendingProposals) {
      return Promise.reject(new MemberError('CONCORD_E_TOO_MANY_PENDING',
        `too many requests in flight (maxPendingProposals ${this.options.maxPendingProposals}); retry with backoff`));
    }
    const requestId = this.nextRequestId++;
    const data = encodeEnvelope({ memberId: this.id, requestId, kind, payload });
    return new Promise<unknown>((resolve, reject) => {
      const deadlineMs = this.options.timers.nowMs() + this.options.proposalTimeoutMs;
      this.pendingProposals.set(requestId, { resolve, reject, deadlineMs, data });
      this.armProposalTimeout();
      this.submit(data);
    });
  }

  /**
   * Proposals time out by one timer, set for the oldest one's deadline: a timer each cost every write
   * a timer object and two timer-list updates. They all wait proposalTimeoutMs, so the map's order
   * (insertion) is their deadlines' order (should the wall clock step back, a later proposal's
   * timeout waits for the earlier ones': late by at most the step).
   */
  private armProposalTimeout(): void {
    if (this.proposalTimeoutTimer !== undefined || this.stopped) return;
    const oldest = this.pendingProposals.values().next();
    if (oldest.done === true) return;
    const delayMs = Math.max(0, oldest.value.deadlineMs - this.options.timers.nowMs());
    this.proposalTimeoutTimer = this.options.timers.setTimeout(() => this.expireProposals(), delayMs);
  }

  private expireProposals(): void {
    this.proposalTimeoutTimer = undefined;
    const nowMs = this.options.timers.nowMs();
    for (const [requestId, pending] of this.pendingProposals) {
      if (pending.deadlineMs > nowMs) break;
      this.pendingProposals.delete(requestId);
      pending.reject(new MemberError('CONCORD_E_TIMEOUT', 'request timed out'));
    }
    this.armProposalTimeout();
  }

  /**
   * Hands a proposal to Raft with the others of this turn of the event loop (see submitBatch); when
   * there is no leader yet, retries on the next tick until its timeout.
   */
  private submit(data: Uint8Array): void {
    if (this.proposalBatch.length > 0 && this.proposalBatchBytes + data.byteLength > MAX_PROPOSAL_BATCH_BYTES) this.submitBatch();
    this.proposalBatch.push(data);
    this.proposalBatchBytes += data.byteLength;
    if (this.proposalBatch.length === 1) this.options.timers.nextTurn(() => this.submitBatch());
  }

  /**
   * Proposes the batch as one: one proposal message to the leader, one append per follower and one
   * acknowledgement back, however many clients wrote at once (per-message costs, not entries,
   * dominated a loaded member's work).
   */
  private submitBatch(): void {
    const batch = this.proposalBatch;
    this.proposalBatch = [];
    this.proposalBatchBytes = 0;
    if (batch.length === 0 || this.stopped) return;
    const outcome = this.node.proposeBatch(batch);
    // Already at the end of the turn: the batch's forward (or appends) need not wait for another.
    if (!this.writesDisabledReason) this.sendEarlyMessages();
    this.scheduleReady();
    if (outcome.accepted) return;
    this.options.timers.setTimeout(() => {
      for (const data of batch) {
        const { requestId } = decodeEnvelope(data);
        if (this.pendingProposals.has(requestId) && !this.stopped) this.submit(data);
      }
    }, this.options.tickIntervalMs);
  }

  /**
   * A proposal forwarded to a leader that then lost leadership may have been dropped. Proposing it
   * again to the new leader is safe: AppliedRequests applies a request at most once.
   */
  private reproposeAll(): void {
    for (const pending of this.pendingProposals.values()) this.submit(pending.data);
  }

  /**
   * Waits until this member's state machine reflects every write committed before the call
   * (ReadIndex, thesis §6.4); concurrent callers share one read index round.
   */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    return new Promise<void>((resolve, reject) => {
      const key = `r${this.id}-${this.nextReadId++}`;
      const timer = this.options.timers.setTimeout(() => {
        this.readsAwaitingIndex.delete(key);
        this.readsAwaitingApply = this.readsAwaitingApply.filter((r) => r.read.timer !== timer);
        reject(new MemberError('CONCORD_E_TIMEOUT', 'request timed out waiting for a read index (is there a leader?)'));
      }, this.options.proposalTimeoutMs);
      this.readsAwaitingIndex.set(key, [{ resolve, reject, timer }]);
      this.node.readIndex(textEncoder.encode(key));
      this.scheduleReady();
    });
  }

  private scheduleReady(): void {
    if (this.stopped || this.writesDisabledReason) return;
    if (this.processing) {
      // A Ready is being persisted: what may go out before it does goes now, not after the fsync.
      this.scheduleEarlySend();
      return;
    }
    this.processing = true;
    queueMicrotask(() => {
      this.runReadyLoop().catch((error: unknown) => this.onLoopFailure(error as Error));
    });
  }

  /**
   * Coalesces the early sends of one turn of the event loop: the requests read from every client
   * connection in one poll phase go out in one write per peer, not one write each.
   */
  private scheduleEarlySend(): void {
    if (this.earlySendScheduled) return;
    this.earlySendScheduled = true;
    this.options.timers.nextTurn(() => {
      this.earlySendScheduled = false;
      if (!this.stopped && !this.writesDisabledReason) this.sendEarlyMessages();
    });
  }

  /**
   * The Ready loop. Each Ready's committed entries are applied as soon as it is taken, while its
   * own new entries are being written: a committed entry is already on disk on a majority (the core
   * counts this member's own copy only once it is persisted, see Raft.onEntriesPersisted), so
   * applying it needs no local fsync, and the disk and the CPU work at the same time (as etcd's apply
   * loop runs beside its raft loop). A Ready that installs a snapshot is applied after it is
   * persisted. Reads and snapshots follow the state machine's own applied index.
   */
  private async runReadyLoop(): Promise<void> {
    try {
      for (let inFlight = this.takeReady(); inFlight; inFlight = this.takeReady()) {
        await inFlight.persisted;
        this.afterPersist(inFlight.ready);
        if (inFlight.ready.snapshot) this.applyReady(inFlight.ready);
        this.maybeStartSnapshot();
      }
    } finally {
      this.processing = false;
    }
  }

  /**
   * Takes the next Ready: starts its write, and applies its committed entries unless it carries a
   * snapshot.
   */
  private takeReady(): { ready: Ready; persisted: Promise<void> } | undefined {
    const inFlight = this.startReady();
    if (inFlight && !inFlight.ready.snapshot) this.applyReady(inFlight.ready);
    return inFlight;
  }

  /**
   * Sends the messages that may go out before this member's write completes (see startReady),
   * except commit notices, which holdCommitNotice holds back.
   */
  private sendEarlyMessages(): void {
    const messages = this.node.takeEarlyMessages();
    if (messages.length === 0) return;
    const now: Message[] = [];
    for (const message of messages) {
      if (isCommitNotice(message)) this.holdCommitNotice(message);
      else now.push(message);
    }
    if (now.length === 0) return;
    for (const message of now) this.noteCommitTold(message);
    this.options.transport.send(now);
  }

  /**
   * Commit notices are appends without entries, which a leader sends when its commit index moves.
   * A notice only lets a follower learn the commit sooner, and it costs: a write to the peer here
   * (30-230 µs on a loaded 2-core machine) and a wake-up and a read there, once per write at one
   * client. So a leader holds them back:
   * - from a follower with a forwarded proposal covered by the commit (its client waits): until
   *   this member has applied the commit and answered its own first clients, COMMIT_NOTICE_DELAY_TURNS
   *   turns (ahead of the apply they were the largest step between a majority's acknowledgement and
   *   the client's answer);
   * - from any other follower: until the next append to it, which carries the commit and makes the
   *   notice unneeded, or at most COMMIT_NOTICE_HOLD_MS.
   * A later notice to a peer replaces the held one. Reads through a follower need no notice: the
   * leader's ReadIndex round is a heartbeat, which carries the commit.
   */
  private holdCommitNotice(notice: Message): void {
    const heldSinceMs = this.commitNotices.get(notice.to)?.heldSinceMs ?? this.options.timers.nowMs();
    this.commitNotices.set(notice.to, { notice, heldSinceMs });
    if (this.isAwaited(notice)) {
      if (this.awaitedNoticesScheduled) return;
      this.awaitedNoticesScheduled = true;
      this.afterTurns(COMMIT_NOTICE_DELAY_TURNS, () => this.sendAwaitedNotices());
    } else if (this.noticeHoldTimer === undefined) {
      this.armNoticeHoldTimer(COMMIT_NOTICE_HOLD_MS);
    }
  }

  private isAwaited(notice: Message): boolean {
    const forwarded = this.forwardedUpTo.get(notice.to);
    return forwarded !== undefined && notice.commit >= forwarded;
  }

  /** A message that tells `message.to` of a commit makes a held notice up to that commit unneeded. */
  private noteCommitTold(message: Message): void {
    if (message.type !== 'MsgApp' && message.type !== 'MsgHeartbeat') return;
    const held = this.commitNotices.get(message.to);
    if (held && message.commit >= held.notice.commit) this.commitNotices.delete(message.to);
    const forwarded = this.forwardedUpTo.get(message.to);
    if (forwarded !== undefined && message.commit >= forwarded) this.forwardedUpTo.delete(message.to);
  }

  /** Runs `callback` after `turns` turns of the event loop (nextTurn, nested). */
  private afterTurns(turns: number, callback: () => void): void {
    if (turns <= 1) this.options.timers.nextTurn(callback);
    else this.options.timers.nextTurn(() => this.afterTurns(turns - 1, callback));
  }

  private sendAwaitedNotices(): void {
    this.awaitedNoticesScheduled = false;
    if (this.stopped) return;
    const notices = [...this.commitNotices.values()].map((held) => held.notice).filter((notice) => this.isAwaited(notice));
    this.sendNotices(notices);
  }

  private armNoticeHoldTimer(delayMs: number): void {
    this.noticeHoldTimer = this.options.timers.setTimeout(() => this.sendOverdueNotices(), delayMs);
  }

  /**
   * Sends the notices held for COMMIT_NOTICE_HOLD_MS, and waits for the next one to be due. Under a
   * steady load an append carries each commit first, so none is sent.
   */
  private sendOverdueNotices(): void {
    this.noticeHoldTimer = undefined;
    if (this.stopped) return;
    const now = this.options.timers.nowMs();
    const overdue: Message[] = [];
    let nextDueMs = Number.POSITIVE_INFINITY;
    for (const { notice, heldSinceMs } of this.commitNotices.values()) {
      const dueMs = heldSinceMs + COMMIT_NOTICE_HOLD_MS;
      if (dueMs <= now) overdue.push(notice);
      else nextDueMs = Math.min(nextDueMs, dueMs);
    }
    this.sendNotices(overdue);
    if (nextDueMs !== Number.POSITIVE_INFINITY) this.armNoticeHoldTimer(nextDueMs - now);
  }

  private sendNotices(notices: Message[]): void {
    if (notices.length === 0) return;
    for (const notice of notices) this.noteCommitTold(notice);
    this.options.transport.send(notices);
  }

  /** Held notices belong to a leadership: they are dropped when it ends (or the member stops). */
  private forgetCommitNotices(): void {
    this.commitNotices.clear();
    this.forwardedUpTo.clear();
    if (this.noticeHoldTimer !== undefined) this.options.timers.clearTimeout(this.noticeHoldTimer);
    this.noticeHoldTimer = undefined;
  }

  /** Takes the next Ready, if any, and starts making it durable (step 1 of the Ready contract). */
  private startReady(): { ready: Ready; persisted: Promise<void> } | undefined {
    if (this.stopped || this.writesDisabledReason) return undefined;
    // Messages that promise nothing durable go first (a leader's appends, Raft thesis §10.2.1, and
    // forwarded proposals, see RaftNode.takeEarlyMessages); the rest (votes, append
    // acknowledgements) only once this Ready is persisted.
    this.sendEarlyMessages();
    if (!this.node.hasReady()) return undefined;
    const ready = this.node.ready();
    if (ready.softState && ready.softState.leader !== this.leader) {
      this.leader = ready.softState.leader;
      if (this.leader !== this.id) this.forgetCommitNotices();
      this.options.onLeaderChange?.(this.leader, this.node.raft.term);
      for (const wake of [...this.leaderWaiters]) wake(this.leader);
      if (this.leader !== NO_NODE) {
        this.reproposeAll();
        this.reissueReads();
      }
    }
    this.recordReadStates(ready);
    const persisted = this.persist(ready);
    persisted.catch(() => {}); // awaited by the loop; this only keeps an early failure from being "unhandled"
    return { ready, persisted };
  }

  /** Read index requests dropped for want of a leader are asked again once there is one. */
  private reissueReads(): void {
    for (const key of this.readsAwaitingIndex.keys()) this.node.readIndex(textEncoder.encode(key));
  }

  private async persist(ready: Ready): Promise<void> {
    if (ready.snapshot) await this.options.durableLog.saveSnapshot(ready.snapshot);
    // A hard state whose only change is the commit index needs no write of its own (Raft can learn
    // the commit again); it goes to disk with the next save, which carries the whole hard state.
    if (ready.entries.length > 0 || ready.mustSync) {
      await this.options.durableLog.save(ready.hardState, ready.entries, ready.mustSync);
    }
  }

  /** Steps 2 and 4 once the Ready is durable: the stable log learns it, messages go out, the core advances. */
  private afterPersist(ready: Ready): void {
    const storage = this.options.storage;
    if (ready.snapshot) storage.applySnapshot(ready.snapshot);
    storage.append(ready.entries);
    if (ready.hardState) storage.setHardState(ready.hardState);
    if (ready.messages.length > 0) {
      for (const message of ready.messages) this.noteCommitTold(message);
      this.options.transport.send(ready.messages);
    }
    this.node.advance();
  }

  /** Step 3: the state machine applies the snapshot and committed entries, in log order. */
  private applyReady(ready: Ready): void {
    if (ready.snapshot) {
      this.confState = ready.snapshot.metadata.confState;
      this.restoreSnapshotData(ready.snapshot.data, true);
      this.stateMachineApplied = ready.snapshot.metadata.index;
    }
    for (const entry of ready.committedEntries) {
      this.applyEntry(entry);
      this.stateMachineApplied = entry.index;
    }
    if (this.appliedAnswers.length > 0 && this.appliedAnswersDone === 0) this.answerSome();
    this.serveReads();
  }

  private applyEntry(entry: Entry): void {
    this.appliedEntries++;
    this.appliedEntryBytes += entry.data.byteLength;
    if (entry.type === 'confChange') {
      this.applyConfChangeEntry(entry);
      return;
    }
    if (entry.data.byteLength === 0) return; // a leader's no-op
    const envelope = decodeEnvelope(entry.data);
    if (!this.appliedRequests.firstTime(envelope.memberId, envelope.requestId)) return; // a re-proposal
    let result: unknown;
    if (envelope.kind === 'members') {
      this.members.applyAttributes(JSON.parse(textDecoder.decode(envelope.payload)) as MemberAttributesUpdate);
      this.options.onMembershipChange?.(this.members.list(), this.confState);
    } else {
      result = this.options.stateMachine.apply(envelope.payload, entry.index);
    }
    if (envelope.memberId === this.id) this.answerApplied(envelope.requestId, result);
  }

  private applyConfChangeEntry(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    this.confState = this.node.applyConfChange(change);
    this.members.applyConfChange(change, this.confState);
    if (change.type !== 'removeNode') this.snapshotWanted = true;
    this.options.onMembershipChange?.(this.members.list(), this.confState);
    const proposal = decodeConfChangeContext(change.context).proposal;
    if (proposal && BigInt(proposal.memberId) === this.id) this.settle(this.pendingConfChanges, proposal.requestId, this.members.list());
    if (change.type === 'removeNode' && change.nodeId === this.id && !this.removed) {
      this.removed = true;
      this.options.onRemoved?.();
    }
  }

  /**
   * Answers a proposal of this member once applied, ANSWERS_PER_TURN per turn of the event loop:
   * the first ones right after the apply (see applyReady), the rest on the following turns.
   * Answering a whole batch at once sends every client its answer in one burst, and their next
   * requests come back in one burst: the member and its clients then take turns, each idle while
   * the other works, and the disk idle while both do. Answering a few per turn lets the first
   * clients' next requests arrive, be proposed and start their fsync while the member is still
   * answering the rest. The write is already applied, so the delay (a few loop turns) changes no
   * outcome, and a read that follows the answer sees it.
   */
  private answerApplied(requestId: number, result: unknown): void {
    const waiting = this.pendingProposals.get(requestId);
    if (!waiting) return;
    this.pendingProposals.delete(requestId);
    this.appliedAnswers.push(waiting.resolve, result);
  }

  private answerSome(): void {
    const answers = this.appliedAnswers;
    const end = Math.min(answers.length, this.appliedAnswersDone + 2 * ANSWERS_PER_TURN);
    for (let i = this.appliedAnswersDone; i < end; i += 2) (answers[i] as (value: unknown) => void)(answers[i + 1]);
    if (end < answers.length) {
      this.appliedAnswersDone = end;
      this.options.timers.nextTurn(() => this.answerSome());
      return;
    }
    // Not sliced per turn: a burst of thousands of answers would be copied once per turn.
    this.appliedAnswers = [];
    this.appliedAnswersDone = 0;
  }

  private settle(pending: Map<number, PendingConfChange>, requestId: number, result: unknown): void {
    const waiting = pending.get(requestId);
    if (!waiting) return;
    pending.delete(requestId);
    this.options.timers.clearTimeout(waiting.timer);
    waiting.resolve(result);
  }

  private recordReadStates(ready: Ready): void {
    for (const readState of ready.readStates) {
      const key = textDecoder.decode(readState.context);
      const reads = this.readsAwaitingIndex.get(key);
      if (!reads) continue;
      this.readsAwaitingIndex.delete(key);
      for (const read of reads) this.readsAwaitingApply.push({ index: readState.index, read });
    }
  }

  private serveReads(): void {
    const applied = this.stateMachineApplied;
    const ready = this.readsAwaitingApply.filter((r) => r.index <= applied);
    if (ready.length === 0) return;
    this.readsAwaitingApply = this.readsAwaitingApply.filter((r) => r.index > applied);
    for (const { read } of ready) {
      this.options.timers.clearTimeout(read.timer);
      read.resolve();
    }
  }

  /**
   * Starts a snapshot when one is due. The state is captured now, at the applied index, and written
   * out in the background in slices, so the member goes on replicating and applying meanwhile (a
   * synchronous snapshot of a large store stalled it for seconds).
   */
  private maybeStartSnapshot(): void {
    if (this.snapshotInProgress || this.stopped) return;
    const storage = this.options.storage;
    const index = this.stateMachineApplied;
    const lastSnapshot = storage.snapshot();
    const lastSnapshotIndex = lastSnapshot.metadata.index;
    const meanEntryBytes = this.appliedEntries === 0 ? 0 : this.appliedEntryBytes / this.appliedEntries;
    const every = snapshotInterval(this.options.snapshotEveryEntries, lastSnapshot.data.byteLength, meanEntryBytes);
    const due = nextSnapshotIndex(lastSnapshotIndex, every, snapshotPhase(this.id, this.confState, every));
    if (index < due && !(this.snapshotWanted && index > lastSnapshotIndex)) return;
    this.snapshotWanted = false;
    const confState: ConfState = { voters: [...this.confState.voters], learners: [...this.confState.learners] };
    const capturedAtMs = this.options.timers.nowMs();
    const envelope = encodeMemberSnapshotEnvelope({ appliedRequests: this.appliedRequests, members: this.members });
    const machine = this.options.stateMachine;
    const encoder = machine.captureSnapshot?.(envelope.byteLength) ?? wholeSnapshotEncoder(machine.snapshot(), envelope.byteLength);
    this.snapshotInProgress = this.writeSnapshot(index, confState, envelope, encoder, capturedAtMs)
      .catch((error: unknown) => this.onLoopFailure(error as Error))
      .finally(() => {
        this.snapshotInProgress = undefined;
      });
  }

  private async writeSnapshot(
    index: number, confState: ConfState, envelope: Uint8Array, encoder: SnapshotEncoder, capturedAtMs: number,
  ): Promise<void> {
    const timers = this.options.timers;
    let data: Uint8Array | undefined;
    while (!(data = encoder.step(SNAPSHOT_KEYS_PER_SLICE))) {
      await new Promise<void>((resolve) => timers.nextTurn(resolve));
      if (this.stopped) return;
    }
    // The state machine left room for the envelope at the front: the snapshot is one buffer, never
    // copied (a copy of a large state stopped the member for a second and more on a virtual machine).
    if (!prefixLeftEmpty(data, envelope.byteLength)) {
      throw new Error(`the state machine's snapshot does not begin with the ${envelope.byteLength} empty bytes asked for the member's envelope`);
    }
    data.set(envelope, 0);
    const storage = this.options.storage;
    // A snapshot from the leader may have replaced the state meanwhile: this one is out of date.
    if (this.stopped || storage.snapshot().metadata.index >= index) return;
    const snapshot = storage.createSnapshot(index, confState, data);
    const encodedAtMs = timers.nowMs();
    await this.options.durableLog.saveSnapshot(snapshot);
    this.options.onSnapshotSaved?.({
      index, dataBytes: snapshot.data.byteLength, encodeMs: encodedAtMs - capturedAtMs, saveMs: timers.nowMs() - encodedAtMs,
    });
    const compactIndex = index - this.options.keptEntriesAfterSnapshot;
    if (compactIndex >= storage.firstIndex()) {
      storage.compact(compactIndex);
      await this.options.durableLog.releaseBefore(compactIndex);
    }
  }

  /** Resolves once no snapshot is being written (the server waits for it before closing the data dir). */
  async snapshotSettled(): Promise<void> {
    while (this.snapshotInProgress) await this.snapshotInProgress;
  }

  private restoreSnapshotData(data: Uint8Array, notify: boolean): void {
    const decoded = decodeMemberSnapshot(data);
    this.appliedRequests = decoded.appliedRequests;
    this.members = decoded.members;
    this.options.stateMachine.restore(decoded.stateMachine);
    if (notify) this.options.onMembershipChange?.(this.members.list(), this.confState);
  }

  private onLoopFailure(error: Error): void {
    const code = (error as { code?: string }).code;
    if (code === 'CONCORD_E_NO_SPACE') {
      // Nothing unacknowledged is lost: the failed Ready was never advanced. Stop writing, keep reading.
      this.writesDisabledReason = `writes are disabled: ${error.message}`;
      this.failProposals(new MemberError('CONCORD_E_WRITES_DISABLED', this.writesDisabledReason));
      return;
    }
    this.stop();
    this.options.onFatal?.(error);
  }

  private failProposals(error: Error): void {
    for (const [id, waiting] of this.pendingProposals) {
      waiting.reject(error);
      this.pendingProposals.delete(id);
    }
    for (const [id, waiting] of this.pendingConfChanges) {
      this.options.timers.clearTimeout(waiting.timer);
      waiting.reject(error);
      this.pendingConfChanges.delete(id);
    }
  }

  private failAll(error: Error): void {
    this.failProposals(error);
    for (const reads of this.readsAwaitingIndex.values()) {
      for (const read of reads) {
        this.options.timers.clearTimeout(read.timer);
        read.reject(error);
      }
    }
    this.readsAwaitingIndex.clear();
    for (const { read } of this.readsAwaitingApply) {
      this.options.timers.clearTimeout(read.timer);
      read.reject(error);
    }
    this.readsAwaitingApply = [];
  }

  pendingProposalCount(): number {
    return this.pendingProposals.size;
  }
}

function prefixLeftEmpty(data: Uint8Array, prefixBytes: number): boolean {
  return data.byteLength >= prefixBytes && data.subarray(0, prefixBytes).every((byte) => byte === 0);
}

/** An append that carries no entries: it tells a follower of a new commit index (or probes it). */
function isCommitNotice(message: Message): boolean {
  return message.type === 'MsgApp' && message.entries.length === 0;
}
