// Rebuilds the log from WAL records in the order they were written. No I/O: the WAL reads the
// segments and feeds the decoded records in; tests feed records directly.
//
// The rules mirror what Raft asks of stable storage:
// * entries overwrite: a batch starting at index f replaces every entry from f on (Raft truncates
//   a conflicting suffix, then appends), so the last writer wins;
// * a batch may start beyond the last entry only when a snapshot marker covers the gap (a follower
//   that installed a snapshot from the leader continues after it);
// * a snapshot marker whose (index, term) does not match the log discards the entries after it,
//   as Raft discards its log when it installs a snapshot that does not match.

import type { Entry, HardState } from '../consensus/types.ts';
import type { SnapshotMarker } from './wal-record.ts';

export const ZERO_MARKER: SnapshotMarker = { index: 0, term: 0 };

export type EntriesAfterResult = { kind: 'entries'; entries: Entry[] } | { kind: 'missing'; firstIndex: number };

export class WalReplay {
  hardState: HardState = { term: 0, vote: 0n, commit: 0 };
  hasHardState = false;
  latestMarker: SnapshotMarker = ZERO_MARKER;
  /** Every distinct marker seen, oldest first. */
  readonly markers: SnapshotMarker[] = [];
  /** Consecutive entries: log[i].index === log[0].index + i. */
  private log: Entry[] = [];

  firstIndex(): number | undefined {
    return this.log[0]?.index;
  }

  lastEntryIndex(): number | undefined {
    const last = this.log[this.log.length - 1];
    return last?.index;
  }

  /** The index a writer continues after: the last entry, or the latest marker if it is beyond. */
  lastIndex(): number {
    return Math.max(this.lastEntryIndex() ?? 0, this.latestMarker.index);
  }

  applyHardState(hardState: HardState): void {
    this.hardState = hardState;
    this.hasHardState = true;
  }

  /** Applies a batch of consecutive entries; returns a description of the problem if it is impossible. */
  applyEntries(entries: readonly Entry[]): string | undefined {
    const first = entries[0];
    if (first === undefined) return undefined;
    const logFirst = this.firstIndex();
    const logLast = this.lastEntryIndex();
    if (logFirst === undefined || logLast === undefined || first.index < logFirst) {
      this.log = entries.slice();
      return undefined;
    }
    if (first.index <= logLast + 1) {
      this.log.length = first.index - logFirst;
      for (const entry of entries) this.log.push(entry);
      return undefined;
    }
    if (first.index <= this.latestMarker.index + 1) {
      this.log = entries.slice();
      return undefined;
    }
    return `entries jump from index ${logLast} to ${first.index} with no snapshot marker covering the gap`;
  }

  /** Applies a snapshot marker; returns a description of the problem if it goes backwards. */
  applyMarker(marker: SnapshotMarker): string | undefined {
    if (marker.index < this.latestMarker.index) {
      return `snapshot marker at index ${marker.index} follows one at ${this.latestMarker.index}`;
    }
    if (marker.index !== this.latestMarker.index || marker.term !== this.latestMarker.term) this.markers.push(marker);
    this.latestMarker = marker;
    const logFirst = this.firstIndex();
    const at = this.log[marker.index - (logFirst ?? 0)];
    if (logFirst !== undefined && at !== undefined && at.term !== marker.term) {
      this.log.length = marker.index - logFirst; // the log conflicts with the snapshot: drop it from there
    }
    return undefined;
  }

  /** The entries that follow a snapshot at `marker`, if the log still holds all of them. */
  entriesAfter(marker: SnapshotMarker): EntriesAfterResult {
    const logFirst = this.firstIndex();
    const logLast = this.lastEntryIndex();
    if (logFirst === undefined || logLast === undefined || logLast <= marker.index) return { kind: 'entries', entries: [] };
    if (logFirst > marker.index + 1) return { kind: 'missing', firstIndex: logFirst };
    return { kind: 'entries', entries: this.log.slice(marker.index + 1 - logFirst) };
  }

  hasMarker(marker: SnapshotMarker): boolean {
    return this.markers.some((m) => m.index === marker.index && m.term === marker.term);
  }
}
