// The stable part of the log, as the core sees it: what has been persisted, plus the latest snapshot.
// MemoryStorage keeps it in memory; a durable shell (a WAL) fills one on start-up and keeps it in
// step with what it writes to disk. The simulator uses it as the simulated disk's content.

import type { ConfState, Entry, HardState, Snapshot } from './types.ts';
import { RaftBugError, RaftError, limitEntriesSize, EMPTY_BYTES } from './types.ts';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface LogStorage {
  initialState(): InitialState;
  /** Entries in [lo, hi), at most maxBytes in total (but at least one when any exist). */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: EMPTY_BYTES };
}

export class MemoryStorage implements LogStorage {
  hardState: HardState = { term: 0, vote: 0n, commit: 0 };
  private latestSnapshot: Snapshot = emptySnapshot();
  // entries[0] is a placeholder whose index and term are those of the latest snapshot (or 0, 0).
  private log: Entry[] = [{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }];

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.latestSnapshot.metadata.confState };
  }

  /** Gives a brand-new cluster its initial membership (as a snapshot at index 0 would). */
  static bootstrap(confState: ConfState): MemoryStorage {
    const storage = new MemoryStorage();
    storage.latestSnapshot = { metadata: { index: 0, term: 0, confState }, data: EMPTY_BYTES };
    return storage;
  }

  setHardState(hardState: HardState): void {
    this.hardState = { ...hardState };
  }

  private offset(): number {
    return this.log[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.log.length - 1;
  }

  term(index: number): number {
    const offset = this.offset();
    if (index < offset) throw new RaftError('CONCORD_E_COMPACTED', `index ${index} is compacted (first is ${offset + 1})`);
    if (index > this.lastIndex()) {
      throw new RaftError('CONCORD_E_UNAVAILABLE', `index ${index} is beyond the last stored index ${this.lastIndex()}`);
    }
    return this.log[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new RaftError('CONCORD_E_COMPACTED', `index ${lo} is compacted (first is ${offset + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftBugError(`entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    }
    return limitEntriesSize(this.log.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.latestSnapshot;
  }

  /** Replaces the whole content with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.latestSnapshot.metadata.index) {
      throw new RaftError('CONCORD_E_SNAP_OUT_OF_DATE', `snapshot at ${snapshot.metadata.index} is not newer than the stored one`);
    }
    this.latestSnapshot = snapshot;
    this.log = [{ term: snapshot.metadata.term, index: snapshot.metadata.index, type: 'normal', data: EMPTY_BYTES }];
  }

  /** Records a snapshot of the state machine at `index` (which must be applied, hence stored). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.latestSnapshot.metadata.index) {
      throw new RaftError('CONCORD_E_SNAP_OUT_OF_DATE', `snapshot at ${index} is not newer than the stored one`);
    }
    if (index > this.lastIndex()) throw new RaftBugError(`snapshot index ${index} beyond last index ${this.lastIndex()}`);
    const snapshot: Snapshot = { metadata: { index, term: this.term(index), confState }, data };
    this.latestSnapshot = snapshot;
    return snapshot;
  }

  /** Discards entries up to and including `compactIndex`, which a snapshot must already cover. */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new RaftError('CONCORD_E_COMPACTED', `index ${compactIndex} is already compacted`);
    if (compactIndex > this.lastIndex()) throw new RaftBugError(`compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    const kept = this.log.slice(compactIndex - offset);
    kept[0] = { term: kept[0]!.term, index: compactIndex, type: 'normal', data: EMPTY_BYTES };
    this.log = kept;
  }

  /** Appends entries, overwriting any conflicting suffix (the caller persists what Ready asks). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const offset = this.offset();
    if (first + entries.length - 1 <= offset) return; // all already covered by the snapshot
    if (first > this.lastIndex() + 1) {
      throw new RaftBugError(`missing log entries: last ${this.lastIndex()}, appending at ${first}`);
    }
    const skip = Math.max(0, offset + 1 - first);
    const at = entries[skip]!.index - offset;
    // In place: appending is the hot path of every write, and copying the whole log per batch
    // would make it O(log length). Truncation (a conflicting suffix) just shortens the array.
    this.log.length = at;
    for (let i = skip; i < entries.length; i++) this.log.push(entries[i]!);
  }

  /** Every stored entry after the snapshot, in order (for recovery and tests; copies the array). */
  allEntries(): Entry[] {
    return this.log.slice(1);
  }

  /** A copy that shares no mutable state, so a simulated crash can keep exactly what was persisted. */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.hardState = { ...this.hardState };
    copy.latestSnapshot = this.latestSnapshot;
    copy.log = this.log.slice();
    return copy;
  }
}
