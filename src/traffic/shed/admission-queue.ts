// The bounded wait in front of the concurrency limit. A request that finds the limit reached waits
// here for a slot, but never longer than its deadline: one that would time out anyway is better
// rejected early, while its client can still go elsewhere.
//
// Deadlines follow the controlled-delay rule Facebook describes in "Fail at Scale" (CoDel applied
// to request queues): a request that arrives at a queue that has just formed may wait maxWaitMs (a
// burst is worth absorbing); once the queue has been standing for overloadIntervalMs, new requests
// may wait only overloadedWaitMs. While the queue is standing the order also turns to LIFO
// ("adaptive LIFO"), so the freshest requests, whose clients are most likely still waiting, are
// served first, and the oldest ones expire.
//
// "Standing" is measured as occupancy: the share of recent time during which requests waited, a
// time-decayed average whose time constant makes it reach STANDING_ENTER (90 %) after exactly
// overloadIntervalMs of uninterrupted queueing, which is Facebook's rule as long as the queue never
// empties. Unlike a reset on every empty moment, it does not forget a sustained overload just
// because short deadlines emptied the queue for a millisecond: that would hand the next requests
// the long deadline and FIFO order again, and admitted requests would swing between waiting a
// few and maxWaitMs milliseconds. The queue stops standing when occupancy falls below
// STANDING_EXIT (50 %, about 30 % of overloadIntervalMs of emptiness), a hysteresis that keeps it
// from flapping.
//
// Entries are kept per priority class; a free slot goes to the highest class that may take it. So
// a request waits only behind requests of its own class and above, and occupancy is measured per
// class on exactly that part of the queue: a standing queue of sheddable requests shortens the
// deadlines of sheddable requests, not those of a critical request, which will have the next free
// slot anyway; critical requests get short deadlines only if they alone form a standing queue.

import { PRIORITIES, priorityRank, type PerPriority, type Priority, perPriority } from './priority.ts';

/** Occupancy at which a queue counts as standing: reached after overloadIntervalMs of uninterrupted queueing. */
export const STANDING_ENTER = 0.9;
/** Occupancy below which a standing queue no longer counts as standing. */
export const STANDING_EXIT = 0.5;

/** Recent occupancy of the part of the queue at or above one class. */
interface Occupancy {
  value: number;
  updatedMs: number;
  standing: boolean;
}

export type QueueOrder = 'adaptive-lifo' | 'fifo';

export interface QueueSettings {
  /** Most requests waiting at once; 0 disables the queue (requests over the limit are rejected at once). */
  readonly maxLength: number;
  /** Longest wait while the queue is not standing. */
  readonly maxWaitMs: number;
  readonly order: QueueOrder;
  /** Longest wait for a request that arrives while the queue is standing (CoDel's target). */
  readonly overloadedWaitMs: number;
  /** Uninterrupted queueing for this long makes the queue standing (CoDel's interval; see the header). */
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
  private readonly occupancy: PerPriority<Occupancy> = perPriority(() => ({ value: 0, updatedMs: 0, standing: false }));
  /** Time constant of the occupancy average: ln(10) of them make overloadIntervalMs, so 0 → 0.9 takes exactly that. */
  private readonly occupancyTimeConstantMs: number;

  constructor(settings: QueueSettings) {
    const { maxLength, maxWaitMs, overloadedWaitMs, overloadIntervalMs } = settings;
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) throw new RangeError(`bug: queue maxLength ${maxLength} must be a whole number >= 0`);
    for (const [name, value] of Object.entries({ maxWaitMs, overloadedWaitMs, overloadIntervalMs })) {
      if (!(value > 0)) throw new RangeError(`bug: queue ${name} ${value} must be > 0`);
    }
    this.settings = settings;
    this.occupancyTimeConstantMs = overloadIntervalMs / Math.LN10;
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

  /** Requests of this class and of the classes above it: the part of the queue the class waits behind. */
  private lengthAtOrAbove(priority: Priority): number {
    let length = 0;
    for (let rank = 0; rank <= priorityRank(priority); rank++) length += this.byPriority[PRIORITIES[rank]!].length;
    return length;
  }

  /** True while the part of the queue at or above this class is standing (see the header). */
  isStanding(priority: Priority, nowMs: number): boolean {
    this.advance(nowMs);
    return this.occupancy[priority].standing;
  }

  /** Brings every class's occupancy up to `nowMs`, under the lengths of the queue since its last change. */
  private advance(nowMs: number): void {
    for (const priority of PRIORITIES) {
      const occupancy = this.occupancy[priority];
      const elapsedMs = nowMs - occupancy.updatedMs;
      if (elapsedMs <= 0) continue;
      const target = this.lengthAtOrAbove(priority) > 0 ? 1 : 0;
      occupancy.value = target + (occupancy.value - target) * Math.exp(-elapsedMs / this.occupancyTimeConstantMs);
      occupancy.updatedMs = nowMs;
      // The average moves monotonically between updates, so checking the thresholds here sees every crossing.
      if (!occupancy.standing && occupancy.value >= STANDING_ENTER - 1e-9) occupancy.standing = true;
      else if (occupancy.standing && occupancy.value < STANDING_EXIT) occupancy.standing = false;
    }
  }

  /** Adds a request; the caller has checked that the queue is not full. */
  enqueue(priority: Priority, payload: T, nowMs: number): QueueEntry<T> {
    if (this.isFull) throw new Error('bug: enqueue into a full admission queue');
    const waitMs = this.isStanding(priority, nowMs) ? Math.min(this.settings.overloadedWaitMs, this.settings.maxWaitMs) : this.settings.maxWaitMs;
    const entry: QueueEntry<T> = { priority, enqueuedMs: nowMs, deadlineMs: nowMs + waitMs, payload };
    this.byPriority[priority].push(entry);
    this.size += 1;
    return entry;
  }

  /**
   * Takes the next request to serve: from the highest class that `mayStart` allows, the oldest one
   * (FIFO), or the newest one while that class's queue is standing and the order is adaptive LIFO.
   */
  takeNext(mayStart: (priority: Priority) => boolean, nowMs: number): QueueEntry<T> | undefined {
    this.advance(nowMs);
    for (const priority of PRIORITIES) {
      const entries = this.byPriority[priority];
      if (entries.length === 0 || !mayStart(priority)) continue;
      const lifo = this.settings.order === 'adaptive-lifo' && this.isStanding(priority, nowMs);
      const entry = lifo ? entries.pop()! : entries.shift()!;
      this.size -= 1;
      return entry;
    }
    return undefined;
  }

  /** Removes the oldest request of the lowest class below `priority`, to make room for a more important one. */
  evictBelow(priority: Priority, nowMs: number): QueueEntry<T> | undefined {
    for (let rank = PRIORITIES.length - 1; rank > priorityRank(priority); rank--) {
      const entries = this.byPriority[PRIORITIES[rank]!];
      if (entries.length === 0) continue;
      this.advance(nowMs);
      this.size -= 1;
      return entries.shift();
    }
    return undefined;
  }

  /** Removes and returns the requests whose deadline has come (deadline <= now). */
  expire(nowMs: number): QueueEntry<T>[] {
    if (this.nextDeadlineMs() > nowMs) return []; // the common case: one scan, no allocation
    this.advance(nowMs);
    const expired: QueueEntry<T>[] = [];
    for (const priority of PRIORITIES) {
      const entries = this.byPriority[priority];
      const kept = entries.filter((entry) => entry.deadlineMs > nowMs);
      if (kept.length === entries.length) continue;
      for (const entry of entries) if (entry.deadlineMs <= nowMs) expired.push(entry);
      this.byPriority[priority] = kept;
      this.size -= entries.length - kept.length;
    }
    return expired;
  }

  /** Removes one request (its client went away); false if it was no longer queued. */
  remove(entry: QueueEntry<T>, nowMs: number): boolean {
    const entries = this.byPriority[entry.priority];
    const index = entries.indexOf(entry);
    if (index < 0) return false;
    this.advance(nowMs);
    entries.splice(index, 1);
    this.size -= 1;
    return true;
  }

  /** Removes every request (on close). */
  drain(nowMs: number): QueueEntry<T>[] {
    this.advance(nowMs);
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
