// The multi-version index: for every key, the list of its retained revisions in order. As in etcd's
// keyIndex, a key lives through generations: a put of an absent key starts a generation (version 1,
// createRevision = that revision), every further put adds a version, and a delete writes a
// tombstone that ends the generation. A re-created key starts a new generation from version 1.
// Keys are kept sorted (as byte strings, see key-range.ts) so ranges scan in etcd's key order.

import type { KeyRange } from './key-range.ts';
import { rangeEndsBefore, rangeStart } from './key-range.ts';
import type { KeyValue } from './types.ts';
import { KvBugError } from './errors.ts';

export interface KeyRevision {
  /** The main revision: one per write transaction. */
  main: number;
  /** The change's position inside its transaction. */
  sub: number;
  /** The key after the change; for a tombstone only key and modRevision are set. */
  kv: KeyValue;
  tombstone: boolean;
}

export class KeyHistory {
  readonly key: Uint8Array;
  readonly keyString: string;
  /** Invariant: ordered by (main, sub); at most one change per main revision. */
  revisions: KeyRevision[] = [];

  constructor(key: Uint8Array, keyString: string) {
    this.key = key;
    this.keyString = keyString;
  }

  /** Position of the last change at or before `revision`, or -1. */
  positionAt(revision: number): number {
    // Most reads and every write look at the newest change: no search for it.
    const last = this.revisions.length - 1;
    if (last >= 0 && this.revisions[last]!.main <= revision) return last;
    let low = 0;
    let high = this.revisions.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.revisions[middle]!.main <= revision) low = middle + 1;
      else high = middle;
    }
    return low - 1;
  }

  /** The key as a reader at `revision` sees it; undefined when absent (never written or deleted). */
  visibleAt(revision: number): KeyValue | undefined {
    const position = this.positionAt(revision);
    if (position < 0) return undefined;
    const change = this.revisions[position]!;
    return change.tombstone ? undefined : change.kv;
  }

  append(change: KeyRevision): void {
    const last = this.revisions[this.revisions.length - 1];
    if (last !== undefined && last.main >= change.main) {
      throw new KvBugError(`key written twice in revision ${change.main} or out of order (last ${last.main})`);
    }
    this.revisions.push(change);
  }

  /**
   * Drops what no read at or after `revision` can see and returns the dropped changes: every change
   * before `revision` except the one still visible at `revision`. A change made exactly at
   * `revision` (a tombstone too) is kept, so that watchers may still start at the compact revision.
   */
  compact(revision: number): KeyRevision[] {
    const firstKept = this.positionAt(revision - 1) + 1;
    const previous = this.revisions[firstKept - 1];
    const writtenAtRevision = this.revisions[firstKept]?.main === revision;
    const keepPrevious = previous !== undefined && !previous.tombstone && !writtenAtRevision;
    const cut = keepPrevious ? firstKept - 1 : firstKept;
    const dropped = this.revisions.slice(0, cut);
    this.revisions = this.revisions.slice(cut);
    return dropped;
  }
}

export class KeyIndex {
  private readonly histories = new Map<string, KeyHistory>();
  /**
   * Invariant: sortedKeys (ascending) and newKeys (unordered) together hold exactly the keys of
   * `histories`. New keys wait in newKeys and are merged in when something needs key order, so a
   * write-heavy load that creates many keys pays O(1) per key instead of an O(n) array insert.
   */
  private sortedKeys: string[] = [];
  private newKeys: string[] = [];

  get keyCount(): number {
    return this.histories.size;
  }

  get(keyString: string): KeyHistory | undefined {
    return this.histories.get(keyString);
  }

  getOrCreate(key: Uint8Array, keyString: string): KeyHistory {
    const existing = this.histories.get(keyString);
    if (existing !== undefined) return existing;
    const history = new KeyHistory(key, keyString);
    this.histories.set(keyString, history);
    this.newKeys.push(keyString);
    return history;
  }

  /** Merges the keys created since the last ordered read into sortedKeys: O(k log k + n). */
  private settle(): void {
    if (this.newKeys.length === 0) return;
    // Plain string order is byte order here: key strings hold one char per byte (toByteString).
    const fresh = this.newKeys.sort();
    this.newKeys = [];
    const merged: string[] = new Array(this.sortedKeys.length + fresh.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.sortedKeys.length && j < fresh.length) {
      merged[k++] = this.sortedKeys[i]! < fresh[j]! ? this.sortedKeys[i++]! : fresh[j++]!;
    }
    while (i < this.sortedKeys.length) merged[k++] = this.sortedKeys[i++]!;
    while (j < fresh.length) merged[k++] = fresh[j++]!;
    this.sortedKeys = merged;
  }

  /** Histories of the keys in the range, ascending by key. */
  *inRange(range: KeyRange): Generator<KeyHistory> {
    if (range.kind === 'single') {
      const history = this.histories.get(range.key);
      if (history !== undefined) yield history;
      return;
    }
    this.settle();
    for (let i = this.lowerBound(rangeStart(range)); i < this.sortedKeys.length; i++) {
      const key = this.sortedKeys[i]!;
      if (rangeEndsBefore(range, key)) return;
      yield this.histories.get(key)!;
    }
  }

  *all(): Generator<KeyHistory> {
    this.settle();
    for (const key of this.sortedKeys) yield this.histories.get(key)!;
  }

  /** Compacts every key (see KeyHistory.compact) and forgets keys with nothing left. */
  compact(revision: number): KeyRevision[] {
    const dropped: KeyRevision[] = [];
    let emptied = false;
    for (const history of this.histories.values()) {
      for (const change of history.compact(revision)) dropped.push(change);
      if (history.revisions.length === 0) {
        this.histories.delete(history.keyString);
        emptied = true;
      }
    }
    this.settle();
    if (emptied) this.sortedKeys = this.sortedKeys.filter((key) => this.histories.has(key));
    return dropped;
  }

  /** Removes a key whose last change was undone (a failed transaction being rolled back). */
  removeIfEmpty(history: KeyHistory): void {
    if (history.revisions.length > 0) return;
    this.histories.delete(history.keyString);
    this.settle();
    this.sortedKeys.splice(this.lowerBound(history.keyString), 1);
  }

  private lowerBound(key: string): number {
    let low = 0;
    let high = this.sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.sortedKeys[middle]! < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
