// Concurrency-limited admission with priorities and a bounded queue: the decision core of load
// shedding. A request starts at once when its class may take a slot under the limit (see
// priority-shares.ts); otherwise it waits in the queue (admission-queue.ts) for a slot until its
// deadline; when the queue is full it displaces a less important waiting request or is refused.
// Finished requests are samples for the limit algorithm, which moves the limit.
//
// Invariant, after every call: no queued request could start (each free slot that a queued
// request may take has been handed to one). So an arriving request that may start does not jump
// ahead of a waiting request that could have had the slot.
//
// An operator override replaces the algorithm's limit at runtime: 'off' admits everything (no
// limit, no queue), 'fixed' pins the limit. Samples keep flowing to the algorithm either way, so
// it is current when the override is lifted.

import { AdmissionQueue, type QueueEntry, type QueueSettings } from './admission-queue.ts';
import type { Limiter, Sample } from './limiter.ts';
import { assertReservedShares, mayStart, type ReservedShares } from './priority-shares.ts';
import { perPriority, type PerPriority, type Priority } from './priority.ts';
import type { ShedReason } from './shed-reason.ts';

export type Override = { readonly mode: 'configured' } | { readonly mode: 'off' } | { readonly mode: 'fixed'; readonly limit: number };

export interface ControllerSettings {
  readonly queue: QueueSettings;
  readonly reservedShares: ReservedShares;
  /** A request slower than this counts as dropped even if it succeeded (Infinity: never). */
  readonly dropLatencyMs: number;
}

/** One request known to the controller, from arrival to release. */
export interface Ticket {
  readonly id: number;
  readonly priority: Priority;
  readonly arrivedMs: number;
  /** When it got its slot; NaN while queued. */
  readonly startedMs: number;
  readonly state: 'queued' | 'running' | 'finished';
}

interface MutableTicket {
  id: number;
  priority: Priority;
  arrivedMs: number;
  startedMs: number;
  state: 'queued' | 'running' | 'finished';
  inflightAtStart: number;
  queueEntry: QueueEntry<MutableTicket> | undefined;
}

/** How a request ended: measured (rttMs from its start, or measured by the caller) or ignored. */
export type ReleaseOutcome = { readonly rttMs?: number; readonly dropped: boolean } | { readonly ignored: true };

/** What a call changed besides its own request: queued requests that got a slot or were refused. */
export interface Effects {
  readonly started: Ticket[];
  readonly rejected: { readonly ticket: Ticket; readonly reason: ShedReason }[];
}

export type AdmitResult =
  | { readonly outcome: 'started'; readonly ticket: Ticket; readonly effects: Effects }
  | { readonly outcome: 'queued'; readonly ticket: Ticket; readonly effects: Effects }
  | { readonly outcome: 'rejected'; readonly reason: ShedReason; readonly effects: Effects };

export class AdmissionController {
  readonly limiter: Limiter;
  private readonly settings: ControllerSettings;
  private readonly queue: AdmissionQueue<MutableTicket>;
  private readonly running: PerPriority<number> = perPriority(() => 0);
  private nextTicketId = 1;
  private currentOverride: Override = { mode: 'configured' };

  constructor(limiter: Limiter, settings: ControllerSettings) {
    assertReservedShares(settings.reservedShares);
    if (!(settings.dropLatencyMs > 0)) throw new RangeError(`bug: dropLatencyMs ${settings.dropLatencyMs} must be > 0`);
    this.limiter = limiter;
    this.settings = settings;
    this.queue = new AdmissionQueue(settings.queue);
  }

  /** The limit in force: the algorithm's, unless an override replaces it. */
  get limit(): number {
    switch (this.currentOverride.mode) {
      case 'off':
        return Number.POSITIVE_INFINITY;
      case 'fixed':
        return this.currentOverride.limit;
      case 'configured':
        return this.limiter.limit;
    }
  }

  get override(): Override {
    return this.currentOverride;
  }

  get inflight(): number {
    return this.running.critical + this.running.default + this.running.sheddable;
  }

  inflightOf(priority: Priority): number {
    return this.running[priority];
  }

  get queueLength(): number {
    return this.queue.length;
  }

  queueLengthOf(priority: Priority): number {
    return this.queue.lengthOf(priority);
  }

  nextDeadlineMs(): number {
    return this.queue.nextDeadlineMs();
  }

  admit(priority: Priority, nowMs: number): AdmitResult {
    const effects = this.pump(nowMs);
    this.queue.noteArrival(priority, nowMs);
    const ticket: MutableTicket = {
      id: this.nextTicketId++, priority, arrivedMs: nowMs, startedMs: Number.NaN, state: 'queued', inflightAtStart: 0, queueEntry: undefined,
    };
    if (this.mayStart(priority)) {
      this.start(ticket, nowMs);
      return { outcome: 'started', ticket, effects };
    }
    if (this.settings.queue.maxLength === 0) return { outcome: 'rejected', reason: 'concurrency-limit', effects };
    if (this.queue.isFull) {
      const displaced = this.queue.evictBelow(priority, nowMs);
      if (displaced === undefined) return { outcome: 'rejected', reason: 'queue-full', effects };
      displaced.payload.state = 'finished';
      effects.rejected.push({ ticket: displaced.payload, reason: 'displaced' });
    }
    ticket.queueEntry = this.queue.enqueue(priority, ticket, nowMs);
    return { outcome: 'queued', ticket, effects };
  }

  /** Ends a started request (idempotent: a second release of the same ticket changes nothing). */
  release(ticket: Ticket, outcome: ReleaseOutcome, nowMs: number): Effects {
    const mutable = ticket as MutableTicket;
    if (mutable.state !== 'running') return this.pump(nowMs);
    mutable.state = 'finished';
    this.running[mutable.priority] -= 1;
    if (!('ignored' in outcome)) this.limiter.onSample(this.sampleOf(mutable, outcome, nowMs));
    return this.pump(nowMs);
  }

  /** Takes a queued request out (its client went away); false if it was not waiting. */
  cancel(ticket: Ticket, nowMs: number): boolean {
    const mutable = ticket as MutableTicket;
    if (mutable.state !== 'queued' || mutable.queueEntry === undefined) return false;
    mutable.state = 'finished';
    return this.queue.remove(mutable.queueEntry, nowMs);
  }

  /** Refuses queued requests whose deadline has come, and hands out any free slot. */
  expire(nowMs: number): Effects {
    return this.pump(nowMs);
  }

  setOverride(override: Override, nowMs: number): Effects {
    if (override.mode === 'fixed' && !(Number.isSafeInteger(override.limit) && override.limit >= 1)) {
      throw new RangeError(`bug: a fixed override limit must be a whole number >= 1, got ${override.limit}`);
    }
    this.currentOverride = override;
    return this.pump(nowMs);
  }

  /** Refuses every queued request with the given reason (on close). */
  drain(reason: ShedReason, nowMs: number): Effects {
    const effects: Effects = { started: [], rejected: [] };
    for (const entry of this.queue.drain(nowMs)) {
      entry.payload.state = 'finished';
      effects.rejected.push({ ticket: entry.payload, reason });
    }
    return effects;
  }

  private sampleOf(ticket: MutableTicket, outcome: { rttMs?: number; dropped: boolean }, nowMs: number): Sample {
    const rttMs = Math.max(0, outcome.rttMs ?? nowMs - ticket.startedMs);
    return { startMs: ticket.startedMs, rttMs, inflight: ticket.inflightAtStart, dropped: outcome.dropped || rttMs >= this.settings.dropLatencyMs };
  }

  private mayStart(priority: Priority): boolean {
    return mayStart(priority, this.running, this.limit, this.settings.reservedShares);
  }

  private start(ticket: MutableTicket, nowMs: number): void {
    this.queue.noteStart(nowMs);
    this.running[ticket.priority] += 1;
    ticket.state = 'running';
    ticket.startedMs = nowMs;
    ticket.inflightAtStart = this.inflight;
    ticket.queueEntry = undefined;
  }

  /** Expires overdue waiters, then gives free slots to waiting requests, most important first. */
  private pump(nowMs: number): Effects {
    const effects: Effects = { started: [], rejected: [] };
    for (const entry of this.queue.expire(nowMs)) {
      entry.payload.state = 'finished';
      effects.rejected.push({ ticket: entry.payload, reason: 'queue-timeout' });
    }
    for (;;) {
      const entry = this.queue.takeNext((priority) => this.mayStart(priority), nowMs);
      if (entry === undefined) break;
      this.start(entry.payload, nowMs);
      effects.started.push(entry.payload);
    }
    return effects;
  }
}
