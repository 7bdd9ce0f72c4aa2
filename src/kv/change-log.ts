// Which keys each revision changed, for watchers and lease tracking (MvccStore.eventsAt).
//
// Why it holds key histories rather than events: the key's history already keeps every retained
// change, and the change just before it is the previous key-value an event reports. Keeping only a
// reference per revision (the one key a revision changed, or the keys in sub-revision order) costs
// one array slot per revision, where an event object plus its array cost several objects that the
// garbage collector would trace for as long as the history is retained.
//
// The previous key-value follows compaction by itself: KeyHistory.compact keeps the change before a
// retained one only while that change is still visible at the compact revision, so an event at the
// compact revision loses what it replaced, exactly as a store rebuilt from a snapshot would.

import type { KeyValue, KvEvent } from './types.ts';
import { KeyHistory } from './key-index.ts';
import { KvBugError } from './errors.ts';

/** The keys one revision changed: one history, or several in sub-revision order. */
export type RevisionChanges = KeyHistory | readonly KeyHistory[];

/** An event with the key's previous state, when there was one. */
export function withPrevious(event: KvEvent, previous: KeyValue | undefined): KvEvent {
  return previous === undefined ? event : { ...event, prevKv: previous };
}

/** The event for the change `history` has at exactly `revision`. */
export function eventOf(history: KeyHistory, revision: number): KvEvent {
  const position = history.positionAt(revision);
  const change = history.revisions[position];
  if (change?.main !== revision) throw new KvBugError(`key history has no change at revision ${revision}`);
  const previous = history.revisions[position - 1];
  const previousKv = previous === undefined || previous.tombstone ? undefined : previous.kv;
  return withPrevious({ type: change.tombstone ? 'delete' : 'put', kv: change.kv }, previousKv);
}

export class ChangeLog {
  /** changes[i] is what revision `start + i` changed. */
  private changes: RevisionChanges[];
  private startRevision: number;

  constructor(start: number, changes: RevisionChanges[] = []) {
    this.startRevision = start;
    this.changes = changes;
  }

  /** The first revision still logged. */
  get start(): number {
    return this.startRevision;
  }

  /** Logs the next revision's changes; `histories` in sub-revision order, at least one. */
  append(histories: readonly KeyHistory[]): void {
    if (histories.length === 0) throw new KvBugError('a logged revision must change at least one key');
    this.changes.push(histories.length === 1 ? histories[0]! : histories.slice());
  }

  /** The events of a logged revision, in sub-revision order; undefined when it is not logged. */
  eventsAt(revision: number): KvEvent[] | undefined {
    const changed = this.changes[revision - this.startRevision];
    if (changed === undefined) return undefined;
    if (changed instanceof KeyHistory) return [eventOf(changed, revision)];
    return changed.map((history) => eventOf(history, revision));
  }

  /** Forgets the revisions before `revision`. */
  dropBefore(revision: number): void {
    const drop = Math.max(0, revision - this.startRevision);
    if (drop === 0) return;
    this.changes.splice(0, drop);
    this.startRevision += drop;
  }
}
