// The bounded wait in front of the concurrency limit. A request that finds the limit reached waits
// here for a slot, but never longer than its deadline: one that would time out anyway is better
// rejected early, while its client can still go elsewhere.
//
// Deadlines follow Facebook's controlled delay ("Fail at Scale": CoDel applied to request queues):
// a queue that absorbs a burst is good, and a request may wait maxWaitMs in it; a queue that stands
// because demand exceeds capacity only adds latency, and there a request may wait only
// overloadedWaitMs before it is refused. While overloaded the order also turns to LIFO ("adaptive
// LIFO"), so the freshest requests, whose clients are most likely still waiting, are served first,
// and the oldest ones expire.
//
// A class is overloaded when both hold, judged on the requests of the class and of the classes
// above it (the only ones it waits behind, since a free slot goes to the highest class that may
// take it):
// * its queue is standing, not a burst: requests waited during most of the recent past
//   (occupancy, a time-decayed average that reaches 90 % after exactly overloadIntervalMs of
//   uninterrupted waiting, which is Facebook's "not empty for the last interval");
// * it will not drain by itself: its requests arrive faster than requests of any class get a slot
//   (by 10 %, time-decayed counts with time constant overloadIntervalMs).
// It stops being overloaded when its requests arrive no faster than requests get a slot, or when
// its requests have hardly waited lately (occupancy below 10 %: an idle class, whose decayed counts
// would otherwise stay frozen at their overload ratio). Occupancy alone does not end it at a higher
// level: short deadlines empty the queue now and then, so occupancy falls under overload too.
//
// Each condition alone was wrong here, as the benchmark and the simulation showed. Standing alone:
// the part of the queue in front of critical requests at 10× is seldom empty although each of
// them gets a slot within milliseconds, so they got 5 ms deadlines and 8 % were refused. Demand
// alone: a burst of 20 requests at a limit of 10 looks like overload at once and loses the long
// deadline it should be absorbed with. And Facebook's rule as written (reset on any empty moment)
// kept forgetting a real overload, because short deadlines empty the queue for a moment now and
// then: the next requests got the long deadline and FIFO order again, and a third of the admitted
// requests at 3× waited 16–50 ms. (A share-of-refusals signal fed on itself: short deadlines
// refuse some requests even of a class whose demand fits, which kept them short.)

import { PRIORITIES, priorityRank, type PerPriority, type Priority, perPriority } from './priority.ts';

/** Occupancy at which a queue is standing: reached after overloadIntervalMs of uninterrupted waiting. */
export const STANDING_ENTER = 0.9;
/** Occupancy below which an overloaded class is no longer overloaded: its requests hardly wait. */
export const STANDING_EXIT = 0.1;
/** Arrivals over starts at which the queue will not drain by itself. */
export const DEMAND_ENTER_RATIO = 1.1;
/** Arrivals over starts at or below which an overloaded class is no longer overloaded. */
export const DEMAND_EXIT_RATIO = 1;

/** The recent past of the requests of one class and above (time-decayed, time constant τ). */
interface ClassHistory {
  /** Share of recent time during which such requests waited. */
  occupancy: number;
  /** Such requests that arrived (started at once or not). */
  arrived: number;
  /** Requests of any class that got a slot. */
  started: number;
  updatedMs: number;
  overloaded: boolean;
}

export type QueueOrder = 'adaptive-lifo' | 'fifo';

export interface QueueSettings {
  /** Most requests waiting at once; 0 disables the queue (requests over the limit are rejected at once). */
  readonly maxLength: number;
  /** Longest wait while the request's class is not overloaded. */
  readonly maxWaitMs: number;
  readonly order: QueueOrder;
  /** Longest wait for a request that arrives while its class is overloaded (CoDel's target). */
  readonly overloadedWaitMs: number;
  /** The recent past over which the refused share is measured (time constant of its decay). */
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
  private readonly history: PerPriority<ClassHistory> = perPriority(() => ({ occupancy: 0, arrived: 0, started: 0, updatedMs: 0, overloaded: false }));
  /** The occupancy's time constant: overloadIntervalMs / ln 10, so 0 → 90 % takes exactly overloadIntervalMs. */
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

  /** True while this class is overloaded: a standing queue that will not drain by itself (see the header). */
  isOverloaded(priority: Priority, nowMs: number): boolean {
    this.advance(nowMs);
    return this.history[priority].overloaded;
  }

  /** Counts an arriving request (started at once or not) in its class and every class below. */
  noteArrival(priority: Priority, nowMs: number): void {
    this.advance(nowMs);
    for (let rank = priorityRank(priority); rank < PRIORITIES.length; rank++) this.history[PRIORITIES[rank]!].arrived += 1;
    this.judge();
  }

  /** Counts a request that got a slot, in every class: a free slot may go to any class. */
  noteStart(nowMs: number): void {
    this.advance(nowMs);
    for (const priority of PRIORITIES) this.history[priority].started += 1;
    this.judge();
  }

  /**
   * Brings every class's history up to `nowMs`. Call before the queue's lengths change: the
   * occupancy integrates them. Decay alone does not change arrivals over starts.
   */
  private advance(nowMs: number): void {
    for (const priority of PRIORITIES) {
      const history = this.history[priority];
      const elapsedMs = nowMs - history.updatedMs;
      if (elapsedMs <= 0) continue;
      const waiting = this.lengthAtOrAbove(priority) > 0 ? 1 : 0;
      history.occupancy = waiting + (history.occupancy - waiting) * Math.exp(-elapsedMs / this.occupancyTimeConstantMs);
      const countDecay = Math.exp(-elapsedMs / this.settings.overloadIntervalMs);
      history.arrived *= countDecay;
      history.started *= countDecay;
      history.updatedMs = nowMs;
    }
    this.judge();
  }

  /** Applies the thresholds (with hysteresis). Each input moves monotonically between calls, so no crossing is missed. */
  private judge(): void {
    for (const priority of PRIORITIES) {
      const history = this.history[priority];
      if (!history.overloaded) {
        history.overloaded = history.occupancy >= STANDING_ENTER - 1e-9 && history.arrived >= DEMAND_ENTER_RATIO * history.started;
      } else if (history.arrived <= DEMAND_EXIT_RATIO * history.started || history.occupancy < STANDING_EXIT) {
        history.overloaded = false;
      }
    }
  }

  /** Adds a request; the caller has checked that the queue is not full. */
  enqueue(priority: Priority, payload: T, nowMs: number): QueueEntry<T> {
    if (this.isFull) throw new Error('bug: enqueue into a full admission queue');
    const waitMs = this.isOverloaded(priority, nowMs) ? Math.min(this.settings.overloadedWaitMs, this.settings.maxWaitMs) : this.settings.maxWaitMs;
    const entry: QueueEntry<T> = { priority, enqueuedMs: nowMs, deadlineMs: nowMs + waitMs, payload };
    this.byPriority[priority].push(entry);
    this.size += 1;
    return entry;
  }

  /**
   * Takes the next request to serve: from the highest class that `mayStart` allows, the oldest one
   * (FIFO), or the newest one while that class is overloaded and the order is adaptive LIFO.
   */
  takeNext(mayStart: (priority: Priority) => boolean, nowMs: number): QueueEntry<T> | undefined {
    this.advance(nowMs);
    for (const priority of PRIORITIES) {
      const entries = this.byPriority[priority];
      if (entries.length === 0 || !mayStart(priority)) continue;
      const lifo = this.settings.order === 'adaptive-lifo' && this.isOverloaded(priority, nowMs);
      const entry = lifo ? entries.pop()! : entries.shift()!;
      this.size -= 1;
      return entry;
    }
    return undefined;
  }

  /** Removes the oldest request of the lowest class below `priority`, to make room for a more important one. */
  evictBelow(priority: Priority, nowMs: number): QueueEntry<T> | undefined {
    this.advance(nowMs);
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
