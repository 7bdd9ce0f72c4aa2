// The Raft log as the core sees it: the stable prefix in LogStorage, followed by an unstable suffix
// (entries and possibly a snapshot that the application has not persisted yet).
//
// Invariants: storage.firstIndex() - 1 <= applied <= committed <= lastIndex();
//             unstable.offset = index of unstable.entries[0] (= last stable index + 1).

import type { InjectableBug } from './bugs.ts';
import type { LogStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { RaftBugError, RaftError, limitEntriesSize } from './types.ts';

class UnstableLog {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** The application persisted entries up to `index` (whose term was `term`). */
  stableTo(index: number, term: number): void {
    const known = this.maybeTerm(index);
    // A term mismatch means the entry was replaced by a newer leader after the Ready was
    // produced; the newer entries are still unstable and must stay.
    if (known === undefined || known !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const after = entries[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (after <= this.offset) {
      // Replaces the whole unstable suffix (and, once persisted, part of the stable log).
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    if (lo < this.offset || hi > this.offset + this.entries.length) {
      throw new RaftBugError(`unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length})`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: UnstableLog;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index handed to the application for applying. */
  applied: number;
  /** Deliberate defects for the simulator; they also switch off the assertions that would mask them. */
  private readonly bugs: ReadonlySet<InjectableBug>;

  constructor(storage: LogStorage, bugs: ReadonlySet<InjectableBug> = new Set()) {
    this.storage = storage;
    this.bugs = bugs;
    const first = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * The term of the entry at `index`; 0 when the index is beyond the log. Throws CONCORD_E_COMPACTED
   * when the entry was compacted away.
   */
  term(index: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (index < dummyIndex) throw new RaftError('CONCORD_E_COMPACTED', `index ${index} is compacted`);
    if (index > this.lastIndex()) return 0;
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    return this.storage.term(index);
  }

  /** The term at `index`, or undefined when it is compacted: for callers that can recover from that. */
  termOrUndefined(index: number): number | undefined {
    try {
      return this.term(index);
    } catch (error) {
      if (error instanceof RaftError && error.code === 'CONCORD_E_COMPACTED') return undefined;
      throw error;
    }
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrUndefined(index) === term;
  }

  /** Raft §5.4.1: a log is more up-to-date if its last term is later, or equal with a longer log. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourLastTerm = this.lastTerm();
    return lastTerm > ourLastTerm || (lastTerm === ourLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has term `logTerm`, append the new
   * entries (truncating any conflicting suffix) and advance commit. Returns the last index now known
   * to match the leader, or undefined when the consistency check fails.
   */
  maybeAppend(index: number, logTerm: number, leaderCommit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) {
      if (conflictIndex <= this.committed && !this.bugs.has('accept-stale-term-append')) {
        throw new RaftBugError(`entry ${conflictIndex} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(entries.slice(conflictIndex - (index + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    if (after < this.committed && !this.bugs.has('accept-stale-term-append')) {
      throw new RaftBugError(`appending after ${after} would overwrite committed entries (committed ${this.committed})`);
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * The index of the first entry that is new or conflicts with an existing one (same index,
   * different term), or 0 when every given entry is already in the log.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: the fast backtracking
   * step (thesis §5.3 "the follower can include the term of the conflicting entry ...").
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let candidate = Math.min(index, this.lastIndex());
    while (candidate > 0) {
      const candidateTerm = this.termOrUndefined(candidate);
      if (candidateTerm === undefined) return { index: candidate, term: 0 };
      if (candidateTerm <= term) return { index: candidate, term: candidateTerm };
      candidate--;
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet handed to the application, at most maxBytes (but at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.applyLimit() + 1;
    if (hi <= lo) return [];
    return this.slice(lo, hi, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    return this.applyLimit() + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  private applyLimit(): number {
    return this.bugs.has('apply-before-commit') ? this.lastIndex() : this.committed;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return; // commit never decreases
    if (toCommit > this.lastIndex()) {
      throw new RaftBugError(`commit ${toCommit} is out of range [last index ${this.lastIndex()}]`);
    }
    this.committed = toCommit;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (index > this.applyLimit() || index < this.applied) {
      throw new RaftBugError(`applied ${index} is out of range [prev applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  /** The last index the application has persisted (entries after it are still unstable). */
  lastStableIndex(): number {
    return Math.min(this.lastIndex(), this.unstable.offset - 1);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** Entries from `index` to the end, at most maxBytes (but at least one). */
  entriesFrom(index: number, maxBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi), at most maxBytes (but at least one). Throws CONCORD_E_COMPACTED below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new RaftBugError(`invalid slice ${lo} > ${hi}`);
    if (lo < this.firstIndex()) throw new RaftError('CONCORD_E_COMPACTED', `index ${lo} is compacted`);
    if (hi > this.lastIndex() + 1) throw new RaftBugError(`slice [${lo}, ${hi}) out of bound ${this.lastIndex()}`);
    if (lo === hi) return [];
    let result: Entry[] = [];
    if (lo < this.unstable.offset) {
      result = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxBytes);
      // Storage stopped early because of the size limit: do not add unstable entries after a gap.
      if (result.length < Math.min(hi, this.unstable.offset) - lo) return result;
    }
    if (hi > this.unstable.offset) {
      const fromUnstable = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      result = result.length > 0 ? result.concat(fromUnstable) : fromUnstable;
    }
    return limitEntriesSize(result, maxBytes);
  }

  /** All entries from `index` on, ignoring size limits: for tests and the simulator's checks. */
  allEntriesFrom(index: number): Entry[] {
    return this.slice(Math.max(index, this.firstIndex()), this.lastIndex() + 1, Number.POSITIVE_INFINITY);
  }
}
