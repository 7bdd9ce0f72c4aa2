// The leader's view of each follower, and the flow control that keeps it from flooding one.
//
// Invariants on Progress: 0 <= match < next; in 'replicate' state the inflight window holds the
// last index of every unacknowledged MsgApp, in increasing order.

import { RaftBugError } from './types.ts';

/**
 * A bounded window of in-flight MsgApp messages: at most maxCount messages and maxBytes of entries.
 * When either limit is reached the leader stops sending to that follower until acknowledgements
 * free space (the backpressure of etcd's "MaxInflightMsgs" and "MaxInflightBytes").
 */
export class Inflights {
  private readonly maxCount: number;
  private readonly maxBytes: number;
  private indexes: number[] = [];
  private sizes: number[] = [];
  private totalBytes = 0;

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  add(lastIndex: number, sizeBytes: number): void {
    if (this.full()) throw new RaftBugError('cannot add to a full inflight window');
    const previous = this.indexes[this.indexes.length - 1];
    if (previous !== undefined && lastIndex <= previous) {
      throw new RaftBugError(`inflight index ${lastIndex} is not above the previous ${previous}`);
    }
    this.indexes.push(lastIndex);
    this.sizes.push(sizeBytes);
    this.totalBytes += sizeBytes;
  }

  /** Frees every message whose last index is <= index (they are all acknowledged). */
  freeLE(index: number): void {
    let freed = 0;
    while (freed < this.indexes.length && this.indexes[freed]! <= index) {
      this.totalBytes -= this.sizes[freed]!;
      freed++;
    }
    if (freed > 0) {
      this.indexes = this.indexes.slice(freed);
      this.sizes = this.sizes.slice(freed);
    }
  }

  full(): boolean {
    return this.indexes.length >= this.maxCount || this.totalBytes >= this.maxBytes;
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes = [];
    this.sizes = [];
    this.totalBytes = 0;
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on this follower. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In 'snapshot' state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** In 'probe' state: one MsgApp is out, wait for its answer (or a heartbeat) before sending another. */
  msgAppFlowPaused = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightCount: number, maxInflightBytes: number, isLearner: boolean) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightCount, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, continue from just past it: the follower has at least that much.
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records what the leader just sent: advances next optimistically in 'replicate' state. */
  sentEntries(count: number, sizeBytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next += count;
        this.inflights.add(this.next - 1, sizeBytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      if (count > 0) this.msgAppFlowPaused = true;
    } else {
      throw new RaftBugError(`sending entries in state ${this.state}`);
    }
  }

  /** An acknowledgement up to `index` arrived. Returns false when it is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the MsgApp sent at `rejected`. `matchHint` is the follower's hint of the last
   * index that may match. Returns false when the rejection is stale (an older message's answer).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }

  describe(): string {
    return `match=${this.match} next=${this.next} state=${this.state}` +
      (this.isLearner ? ' learner' : '') +
      (this.pendingSnapshot ? ` pendingSnapshot=${this.pendingSnapshot}` : '') +
      (this.msgAppFlowPaused ? ' paused' : '') +
      (this.inflights.count() ? ` inflight=${this.inflights.count()}` : '');
  }
}

/** The index that a majority of `matches` has reached: the largest committable index. */
export function majorityCommittedIndex(matches: readonly number[]): number {
  if (matches.length === 0) return Number.MAX_SAFE_INTEGER; // no voters: nothing constrains commit
  const sorted = matches.slice().sort((a, b) => b - a);
  return sorted[Math.floor(matches.length / 2)]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The outcome of an election given the votes received so far (true granted, false rejected). */
export function voteResult(voters: readonly bigint[], votes: ReadonlyMap<bigint, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const quorum = Math.floor(voters.length / 2) + 1;
  if (granted >= quorum) return 'won';
  if (voters.length - rejected < quorum) return 'lost';
  return 'pending';
}
