// One member's Raft run loop: it drives the pure RaftNode with a timer, makes each Ready durable
// before sending its messages, applies committed entries to the state machine, answers the
// proposals and reads waiting on them, and takes snapshots. It is the shell around the core: all
// I/O goes through the interfaces below, so tests can run it on in-memory fakes.

import type { RaftConfig } from '../consensus/raft.ts';
import { RaftNode } from '../consensus/raft-node.ts';
import type { MemoryStorage } from '../consensus/storage.ts';
import type { ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot } from '../consensus/types.ts';
import { NO_NODE } from '../consensus/types.ts';
import { decodeConfChange } from '../consensus/conf-change-codec.ts';
import type { Random } from '../random/seeded-random.ts';
import { AppliedRequests, decodeEnvelope, encodeEnvelope } from './proposal-envelope.ts';
import { decodeMemberSnapshot, encodeMemberSnapshot } from './member-snapshot.ts';

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
  restore(data: Uint8Array): void;
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
  /** Snapshot the state machine after this many applied entries (etcd's --snapshot-count). */
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
  onFatal?: (error: Error) => void;
}

export type MemberErrorCode =
  | 'CONCORD_E_TIMEOUT'
  | 'CONCORD_E_NO_LEADER'
  | 'CONCORD_E_TOO_MANY_PENDING'
  | 'CONCORD_E_STOPPED'
  | 'CONCORD_E_WRITES_DISABLED';

export class MemberError extends Error {
  override name = 'MemberError';
  readonly code: MemberErrorCode;
  constructor(code: MemberErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

interface PendingProposal<Result> {
  resolve(result: Result): void;
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
  private readonly pendingProposals = new Map<number, PendingProposal<Result>>();
  /** Reads waiting for a read index to be confirmed, by read context. */
  private readonly readsAwaitingIndex = new Map<string, PendingRead[]>();
  /** Reads whose index is known, waiting for the state machine to catch up. */
  private readsAwaitingApply: { index: number; read: PendingRead }[] = [];
  private nextReadId = 1;
  private ticker: unknown;
  private processing = false;
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
    if (snapshot.metadata.index > 0) this.restoreSnapshotData(snapshot.data);
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
    this.stopped = true;
    this.options.timers.clearInterval(this.ticker);
    this.failAll(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down; retry on another member'));
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

  committedIndex(): number {
    return this.node.raft.log.committed;
  }

  step(message: Message): void {
    if (this.stopped) return;
    this.node.step(message);
    this.scheduleReady();
  }

  /** Proposes a command; resolves with the state machine's result once it is applied here. */
  propose(payload: Uint8Array): Promise<Result> {
    if (this.stopped) return Promise.reject(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    if (this.writesDisabledReason) return Promise.reject(new MemberError('CONCORD_E_WRITES_DISABLED', this.writesDisabledReason));
    if (this.pendingProposals.size >= this.options.maxPendingProposals) {
      return Promise.reject(new MemberError('CONCORD_E_TOO_MANY_PENDING',
        `too many requests in flight (maxPendingProposals ${this.options.maxPendingProposals}); retry with backoff`));
    }
    const requestId = this.nextRequestId++;
    const data = encodeEnvelope({ memberId: this.id, requestId, payload });
    return new Promise<Result>((resolve, reject) => {
      const timer = this.options.timers.setTimeout(() => {
        this.pendingProposals.delete(requestId);
        reject(new MemberError('CONCORD_E_TIMEOUT', 'request timed out'));
      }, this.options.proposalTimeoutMs);
      this.pendingProposals.set(requestId, { resolve, reject, timer, data });
      this.submit(data);
    });
  }

  /** Hands a proposal to Raft; when there is no leader yet, retries on the next tick until its timeout. */
  private submit(data: Uint8Array): void {
    const outcome = this.node.propose(data);
    this.scheduleReady();
    if (outcome.accepted) return;
    this.options.timers.setTimeout(() => {
      const { requestId } = decodeEnvelope(data);
      if (this.pendingProposals.has(requestId) && !this.stopped) this.submit(data);
    }, this.options.tickIntervalMs);
  }

  /**
   * A proposal forwarded to a leader that then lost leadership may have been dropped. Proposing it
   * again to the new leader is safe: AppliedRequests applies a request at most once.
   */
  private reproposeAll(): void {
    for (const pending of this.pendingProposals.values()) this.node.propose(pending.data);
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
    if (this.processing || this.stopped || this.writesDisabledReason) return;
    this.processing = true;
    queueMicrotask(() => {
      this.runReadyLoop().catch((error: unknown) => this.onLoopFailure(error as Error));
    });
  }

  /**
   * The Ready loop, pipelined: once Ready N is durable, its messages are sent and the core is
   * advanced, then Ready N+1's fsync is started before N's committed entries are applied, so the
   * disk and the CPU work at the same time (as etcd's apply loop runs beside its raft loop). Reads
   * and snapshots follow the state machine's own applied index, not the core's.
   */
  private async runReadyLoop(): Promise<void> {
    try {
      let inFlight = this.startReady();
      while (inFlight) {
        await inFlight.persisted;
        const ready = inFlight.ready;
        this.afterPersist(ready);
        inFlight = this.startReady();
        this.applyReady(ready);
        await this.maybeSnapshot();
        inFlight ??= this.startReady(); // work that arrived while applying
      }
    } finally {
      this.processing = false;
    }
  }

  /** Takes the next Ready, if any, and starts making it durable (step 1 of the Ready contract). */
  private startReady(): { ready: Ready; persisted: Promise<void> } | undefined {
    if (this.stopped || this.writesDisabledReason || !this.node.hasReady()) return undefined;
    const ready = this.node.ready();
    if (ready.softState && ready.softState.leader !== this.leader) {
      this.leader = ready.softState.leader;
      this.options.onLeaderChange?.(this.leader, this.node.raft.term);
      if (this.leader !== NO_NODE) this.reproposeAll();
    }
    this.recordReadStates(ready);
    const persisted = this.persist(ready);
    persisted.catch(() => {}); // awaited by the loop; this only keeps an early failure from being "unhandled"
    return { ready, persisted };
  }

  private async persist(ready: Ready): Promise<void> {
    if (ready.snapshot) await this.options.durableLog.saveSnapshot(ready.snapshot);
    if (ready.entries.length > 0 || ready.hardState) {
      await this.options.durableLog.save(ready.hardState, ready.entries, ready.mustSync);
    }
  }

  /** Steps 2 and 4 once the Ready is durable: the stable log learns it, messages go out, the core advances. */
  private afterPersist(ready: Ready): void {
    const storage = this.options.storage;
    if (ready.snapshot) storage.applySnapshot(ready.snapshot);
    storage.append(ready.entries);
    if (ready.hardState) storage.setHardState(ready.hardState);
    if (ready.messages.length > 0) this.options.transport.send(ready.messages);
    this.node.advance();
  }

  /** Step 3: the state machine applies the snapshot and committed entries, in log order. */
  private applyReady(ready: Ready): void {
    if (ready.snapshot) {
      this.restoreSnapshotData(ready.snapshot.data);
      this.confState = ready.snapshot.metadata.confState;
      this.stateMachineApplied = ready.snapshot.metadata.index;
    }
    for (const entry of ready.committedEntries) {
      this.applyEntry(entry);
      this.stateMachineApplied = entry.index;
    }
    this.serveReads();
  }

  private applyEntry(entry: Entry): void {
    if (entry.type === 'confChange') {
      this.confState = this.node.applyConfChange(decodeConfChange(entry.data));
      return;
    }
    if (entry.data.byteLength === 0) return; // a leader's no-op
    const envelope = decodeEnvelope(entry.data);
    if (!this.appliedRequests.firstTime(envelope.memberId, envelope.requestId)) return; // a re-proposal
    const result = this.options.stateMachine.apply(envelope.payload, entry.index);
    if (envelope.memberId !== this.id) return;
    const pending = this.pendingProposals.get(envelope.requestId);
    if (!pending) return;
    this.pendingProposals.delete(envelope.requestId);
    this.options.timers.clearTimeout(pending.timer);
    pending.resolve(result);
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

  private async maybeSnapshot(): Promise<void> {
    const storage = this.options.storage;
    const applied = this.stateMachineApplied;
    if (applied - storage.snapshot().metadata.index < this.options.snapshotEveryEntries) return;
    const snapshot = storage.createSnapshot(applied, this.confState, this.snapshotData());
    await this.options.durableLog.saveSnapshot(snapshot);
    const compactIndex = applied - this.options.keptEntriesAfterSnapshot;
    if (compactIndex >= storage.firstIndex()) {
      storage.compact(compactIndex);
      await this.options.durableLog.releaseBefore(compactIndex);
    }
  }

  private snapshotData(): Uint8Array {
    return encodeMemberSnapshot(this.appliedRequests, this.options.stateMachine.snapshot());
  }

  private restoreSnapshotData(data: Uint8Array): void {
    const decoded = decodeMemberSnapshot(data);
    this.appliedRequests = decoded.appliedRequests;
    this.options.stateMachine.restore(decoded.stateMachine);
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
    for (const [id, pending] of this.pendingProposals) {
      this.options.timers.clearTimeout(pending.timer);
      pending.reject(error);
      this.pendingProposals.delete(id);
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
