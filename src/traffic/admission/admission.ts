// Admission control for one pool of the proxy: the pure core (src/traffic/shed/admission-core.ts)
// with a real clock, one timer for queue deadlines and quiet periods, metrics, events and the HTTP
// answers to refused requests.
//
// The proxy calls admit() for every request before it picks a backend:
//
//   const decision = await admission.admit({ method, path, headers, clientKey: socket.remoteAddress }, { signal });
//   if (!decision.admitted) { res.writeHead(decision.status, decision.headers).end(); return; }
//   ... forward ...; decision.release({ rttMs, dropped: timedOut || status === 503 });
//
// admit() settles at once unless the request has to wait in the queue. release() must be called
// exactly once per admitted request (a second call is ignored, so 'close' and 'error' handlers may
// both call it); use { ignored: true } for a request that never reached a backend (the client went
// away first, a circuit breaker refused it), so it is no sample. Requests that an `exempt` rule
// matches are admitted without being counted.

import { randomInt } from 'node:crypto';
import { SeededRandom, type Random } from '../../random/seeded-random.ts';
import { AdmissionCore, type AdmissionRequestInfo, type AdmissionSnapshot } from '../shed/admission-core.ts';
import type { Effects, Override, ReleaseOutcome, Ticket } from '../shed/admission-controller.ts';
import type { CircuitBreakers } from '../shed/circuit-breakers.ts';
import type { Priority } from '../shed/priority.ts';
import type { ShedReason } from '../shed/shed-reason.ts';
import type { ShedSettings } from '../shed/shed-settings.ts';
import type { ShedEvent } from '../shed/shedding-episodes.ts';
import { rejectionOf, type RejectedRequest } from './rejection.ts';
import type { ShedMetrics } from './shed-metrics.ts';

export type { AdmissionRequestInfo as AdmissionRequest } from '../shed/admission-core.ts';
export type { ReleaseOutcome } from '../shed/admission-controller.ts';
export type { RejectedRequest } from './rejection.ts';

export interface AdmittedRequest {
  readonly admitted: true;
  /** The class the request ran in; 'exempt' for requests never counted. */
  readonly priority: Priority | 'exempt';
  /** Time spent waiting in the queue, in milliseconds (0 when it started at once). */
  readonly queuedMs: number;
  release(outcome: ReleaseOutcome): void;
}

export type AdmissionDecision = AdmittedRequest | RejectedRequest;

/** What the proxy needs from admission control. */
export interface Admission {
  admit(request: AdmissionRequestInfo, options?: { signal?: AbortSignal }): Promise<AdmissionDecision>;
}

/** A shedding event of a pool, with its wall-clock time. */
export type AdmissionEvent = ShedEvent & { readonly pool: string; readonly at: string };

export interface AdmissionOptions {
  pool: string;
  settings: ShedSettings;
  metrics?: ShedMetrics;
  /** Milliseconds, monotonic; also the events' timestamps (default: performance's, which is Unix time). */
  clock?: () => number;
  random?: Random;
  onEvent?: (event: AdmissionEvent) => void;
  /** Events kept for the admin endpoint. */
  maxRecentEvents?: number;
}

export const DEFAULT_MAX_RECENT_EVENTS = 100;

/** performance.now() is monotonic; anchored at timeOrigin it also reads as Unix milliseconds. */
export function monotonicUnixMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Waiter {
  resolve(decision: AdmissionDecision): void;
  abort: (() => void) | undefined;
  signal: AbortSignal | undefined;
}

const EXEMPT: AdmittedRequest = Object.freeze({ admitted: true as const, priority: 'exempt' as const, queuedMs: 0, release() {} });

export class PoolAdmission implements Admission {
  readonly pool: string;
  private readonly core: AdmissionCore;
  private readonly clock: () => number;
  private readonly metrics: ShedMetrics | undefined;
  private readonly onEvent: ((event: AdmissionEvent) => void) | undefined;
  private readonly maxRecentEvents: number;
  private readonly recent: AdmissionEvent[] = [];
  private readonly waiters = new Map<number, Waiter>();
  private readonly unregisterMetrics: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(options: AdmissionOptions) {
    this.pool = options.pool;
    this.clock = options.clock ?? monotonicUnixMs;
    this.core = new AdmissionCore(options.settings, options.random ?? new SeededRandom(randomInt(2 ** 47)), this.clock());
    this.metrics = options.metrics;
    this.onEvent = options.onEvent;
    this.maxRecentEvents = options.maxRecentEvents ?? DEFAULT_MAX_RECENT_EVENTS;
    this.unregisterMetrics = options.metrics?.register(options.pool, () => this.snapshot());
  }

  /** Per-backend counters for the proxy; refuse with rejection('circuit-breaker', priority). */
  get circuitBreakers(): CircuitBreakers {
    return this.core.circuitBreakers;
  }

  admit(request: AdmissionRequestInfo, options: { signal?: AbortSignal } = {}): Promise<AdmissionDecision> {
    if (this.closed) return Promise.resolve(this.rejection('closing', request.priority ?? this.core.settings.priority.default));
    const nowMs = this.clock();
    const { decision, effects } = this.core.admit(request, nowMs);
    this.apply(effects, nowMs);
    let result: Promise<AdmissionDecision>;
    switch (decision.kind) {
      case 'exempt':
        this.metrics?.exempt.inc({ pool: this.pool });
        result = Promise.resolve(EXEMPT);
        break;
      case 'started':
        result = Promise.resolve(this.admitted(decision.ticket, nowMs));
        break;
      case 'queued':
        result = this.wait(decision.ticket, options.signal);
        break;
      case 'rejected':
        this.countRejection(decision.reason, decision.priority);
        result = Promise.resolve(rejectionOf(decision.reason, decision.priority, decision.retryAfterMs));
        break;
    }
    this.afterChange();
    return result;
  }

  /** A refusal decided by the proxy itself (a circuit breaker), counted like the others. */
  rejection(reason: ShedReason, priority: Priority): RejectedRequest {
    this.core.recordRejection(reason, priority, this.clock());
    this.countRejection(reason, priority);
    this.afterChange();
    return rejectionOf(reason, priority, this.core.settings.retryAfterSeconds * 1000);
  }

  /** The operator's runtime override: { mode: 'off' }, { mode: 'fixed', limit }, or back to { mode: 'configured' }. */
  setOverride(override: Override): void {
    const nowMs = this.clock();
    this.apply(this.core.setOverride(override, nowMs), nowMs);
    this.afterChange();
  }

  snapshot(): AdmissionSnapshot {
    return this.core.snapshot();
  }

  recentEvents(): readonly AdmissionEvent[] {
    return this.recent;
  }

  /** Refuses every waiting request ('closing'), stops the timer and the metrics. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const nowMs = this.clock();
    this.apply(this.core.drain(nowMs), nowMs);
    this.flushEvents();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.unregisterMetrics?.();
  }

  private wait(ticket: Ticket, signal: AbortSignal | undefined): Promise<AdmissionDecision> {
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve, abort: undefined, signal };
      if (signal !== undefined) {
        // The client went away while waiting: free its place; nobody is left to answer.
        waiter.abort = () => {
          if (!this.core.cancel(ticket, this.clock())) return;
          this.waiters.delete(ticket.id);
          this.countRejection('cancelled', ticket.priority);
          resolve(rejectionOf('cancelled', ticket.priority, 0));
        };
        if (signal.aborted) queueMicrotask(waiter.abort);
        else signal.addEventListener('abort', waiter.abort, { once: true });
      }
      this.waiters.set(ticket.id, waiter);
    });
  }

  private admitted(ticket: Ticket, nowMs: number): AdmittedRequest {
    const queuedMs = nowMs - ticket.arrivedMs;
    this.metrics?.admitted.inc({ pool: this.pool, priority: ticket.priority });
    this.metrics?.queueWaitSeconds.observe({ pool: this.pool, priority: ticket.priority }, queuedMs / 1000);
    return {
      admitted: true,
      priority: ticket.priority,
      queuedMs,
      release: (outcome: ReleaseOutcome) => {
        if (ticket.state !== 'running') return;
        const releasedMs = this.clock();
        this.apply(this.core.release(ticket, outcome, releasedMs), releasedMs);
        this.afterChange();
      },
    };
  }

  /** Settles the waiters that the core started or refused. */
  private apply(effects: Effects, nowMs: number): void {
    for (const ticket of effects.started) this.settle(ticket, this.admitted(ticket, nowMs));
    for (const { ticket, reason } of effects.rejected) {
      this.countRejection(reason, ticket.priority);
      this.settle(ticket, rejectionOf(reason, ticket.priority, this.core.settings.retryAfterSeconds * 1000));
    }
  }

  private settle(ticket: Ticket, decision: AdmissionDecision): void {
    const waiter = this.waiters.get(ticket.id);
    if (waiter === undefined) throw new Error(`bug: the core settled ticket ${ticket.id}, which nobody waits for`);
    this.waiters.delete(ticket.id);
    if (waiter.abort !== undefined) waiter.signal?.removeEventListener('abort', waiter.abort);
    waiter.resolve(decision);
  }

  private countRejection(reason: ShedReason, priority: Priority): void {
    this.metrics?.rejected.inc({ pool: this.pool, reason, priority });
  }

  private afterChange(): void {
    this.flushEvents();
    this.armTimer();
  }

  private flushEvents(): void {
    for (const event of this.core.takeEvents()) {
      const stamped: AdmissionEvent = { ...event, pool: this.pool, at: new Date(event.atMs).toISOString() };
      this.recent.push(stamped);
      if (this.recent.length > this.maxRecentEvents) this.recent.shift();
      this.onEvent?.(stamped);
    }
  }

  /** One timer, for the earliest of the queue deadlines and the end of a quiet period. */
  private armTimer(): void {
    if (this.closed) return;
    const wakeMs = this.core.nextWakeMs();
    if (wakeMs >= this.timerAtMs || wakeMs === Number.POSITIVE_INFINITY) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAtMs = wakeMs;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, wakeMs - this.clock()));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const nowMs = this.clock();
    this.apply(this.core.expire(nowMs), nowMs);
    this.afterChange();
  }
}

export function createAdmission(options: AdmissionOptions): PoolAdmission {
  return new PoolAdmission(options);
}
