// The bounded wait in front of the concurrency limit. A request that finds the limit reached waits
// here for a slot, but never longer than its deadline: one that would time out anyway is better
// rejected early, while its client can still go elsewhere.
//
// Deadlines follow the controlled-delay rule Facebook describes in "Fail at Scale" (CoDel applied
// to request queues): while the queue has been empty at some point in the last overloadIntervalMs,
// a request may wait maxWaitMs; once the queue has stayed non-empty for longer than that, it is a
// standing queue, not a burst, and new requests may wait only overloadedWaitMs. Under that same
// standing queue the order turns to LIFO ("adaptive LIFO"), so the freshest requests, whose
// clients are most likely still waiting, are served first, and the oldest ones expire.
//
// Entries are kept per priority class; a free slot goes to the highest class that may take it.

import { PRIORITIES, priorityRank, type PerPriority, type Priority, perPriority } from './priority.ts';

export type QueueOrder = 'adaptive-lifo' | 'fifo';

export interface QueueSettings {
  /** Most requests waiting at once; 0 disables the queue (requests over the limit are rejected at once). */
  readonly maxLength: number;
  /** Longest wait while the queue is not standing. */
  readonly maxWaitMs: number;
  readonly order: QueueOrder;
  /** Longest wait for a request that arrives while the queue is standing (CoDel's target). */
  readonly overloadedWaitMs: number;
  /** A queue non-empty for this long is standing (CoDel's interval). */
  readonly overloadIntervalMs: number;
}

export interface QueueEntry<T> {
  readonly priority: Priority;
  readonly enqueuedMs: number;
  readonly deadlineMs: number;
  readonly payload: T;
}

export class AdmissionQueue<T> {
  private readonly settings: QueueSettings;
  private readonly byPriority: PerPriority<QueueEntry<T>[]> = perPriority(() => []);
  private size = 0;
  /** When the queue was last empty; meaningful only while it is not. */
  private lastEmptyMs = 0;

  constructor(settings: QueueSettings) {
    const { maxLength, maxWaitMs, overloadedWaitMs, overloadIntervalMs } = settings;
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) throw new RangeError(`bug: queue maxLength ${maxLength} must be a whole number >= 0`);
    for (const [name, value] of Object.entries({ maxWaitMs, overloadedWaitMs, overloadIntervalMs })) {
      if (!(value > 0)) throw new RangeError(`bug: queue ${name} ${value} must be > 0`);
    }
    this.settings = settings;
  }

  get length(): number {
    return this.size;
  }

  get isFull(): boolean {
    return this.size >= this.settings.maxLength;
  }

  lengthOf(priority: Priority): number {
    return this.byPriority[priority].length;
  }

  /** True while the queue has not been empty for overloadIntervalMs: a standing queue. */
  isStanding(nowMs: number): boolean {
    return this.size > 0 && nowMs - this.lastEmptyMs >= this.settings.overloadIntervalMs;
  }

  /** Adds a request; the caller has checked that the queue is not full. */
  enqueue(priority: Priority, payload: T, nowMs: number): QueueEntry<T> {
    if (this.isFull) throw new Error('bug: enqueue into a full admission queue');
    const waitMs = this.isStanding(nowMs) ? Math.min(this.settings.overloadedWaitMs, this.settings.maxWaitMs) : this.settings.maxWaitMs;
    if (this.size === 0) this.lastEmptyMs = nowMs;
    const entry: QueueEntry<T> = { priority, enqueuedMs: nowMs, deadlineMs: nowMs + waitMs, payload };
    this.byPriority[priority].push(entry);
    this.size += 1;
    return entry;
  }

  /**
   * Takes the next request to serve: from the highest class that `mayStart` allows, the oldest one
   * (FIFO), or the newest one while the queue is standing and the order is adaptive LIFO.
   */
  takeNext(mayStart: (priority: Priority) => boolean, nowMs: number): QueueEntry<T> | undefined {
    const lifo = this.settings.order === 'adaptive-lifo' && this.isStanding(nowMs);
    for (const priority of PRIORITIES) {
      const entries = this.byPriority[priority];
      if (entries.length === 0 || !mayStart(priority)) continue;
      const entry = lifo ? entries.pop()! : entries.shift()!;
      this.size -= 1;
      return entry;
    }
    return undefined;
  }

  /** Removes the oldest request of the lowest class below `priority`, to make room for a more important one. */
  evictBelow(priority: Priority): QueueEntry<T> | undefined {
    for (let rank = PRIORITIES.length - 1; rank > priorityRank(priority); rank--) {
      const entries = this.byPriority[PRIORITIES[rank]!];
      if (entries.length === 0) continue;
      this.size -= 1;
      return entries.shift();
    }
    return undefined;
  }

  /** Removes and returns the requests whose deadline has come (deadline <= now). */
  expire(nowMs: number): QueueEntry<T>[] {
    if (this.size === 0) return [];
    const expired: QueueEntry<T>[] = [];
    for (const priority of PRIORITIES) {
      const entries = this.byPriority[priority];
      if (entries.length === 0) continue;
      const kept = entries.filter((entry) => entry.deadlineMs > nowMs);
      if (kept.length === entries.length) continue;
      for (const entry of entries) if (entry.deadlineMs <= nowMs) expired.push(entry);
      this.byPriority[priority] = kept;
      this.size -= entries.length - kept.length;
    }
    return expired;
  }

  /** Removes one request (its client went away); false if it was no longer queued. */
  remove(entry: QueueEntry<T>): boolean {
    const entries = this.byPriority[entry.priority];
    const index = entries.indexOf(entry);
    if (index < 0) return false;
    entries.splice(index, 1);
    this.size -= 1;
    return true;
  }

  /** Removes every request (on close). */
  drain(): QueueEntry<T>[] {
    const all = PRIORITIES.flatMap((priority) => this.byPriority[priority].splice(0));
    this.size = 0;
    return all;
  }

  /** The earliest deadline of a queued request; Infinity when the queue is empty. */
  nextDeadlineMs(): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const priority of PRIORITIES) for (const entry of this.byPriority[priority]) earliest = Math.min(earliest, entry.deadlineMs);
    return earliest;
  }
}
