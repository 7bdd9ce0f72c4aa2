// Admission control of one pool, decided without I/O: classification, exemption, the client's rate
// limit, then the concurrency limit with its priority queue; and the shedding episodes that come
// of the refusals. The shell (src/traffic/admission) adds the clock, the timers, the metrics and the
// HTTP responses.

import type { Random } from '../../random/seeded-random.ts';
import { AdmissionController, type Effects, type Override, type ReleaseOutcome, type Ticket } from './admission-controller.ts';
import { CircuitBreakers } from './circuit-breakers.ts';
import { classify, headerValue, type ClassifiableRequest } from './classifier.ts';
import { ClientRateLimiter } from './client-rate-limiter.ts';
import { createLimiter } from './limiter-factory.ts';
import { perPriority, type PerPriority, type Priority } from './priority.ts';
import type { ShedReason } from './shed-reason.ts';
import type { ShedSettings } from './shed-settings.ts';
import { SheddingEpisodes, type ShedEvent } from './shedding-episodes.ts';

/** Client keys are cut to this many characters, so a huge header cannot make the bucket table huge. */
export const MAX_CLIENT_KEY_LENGTH = 128;

export interface AdmissionRequestInfo extends ClassifiableRequest {
  /** A class the caller already decided; otherwise the request is classified here. */
  readonly priority?: Priority;
  /** Who the client is when no key header applies: its IP address. */
  readonly clientKey: string;
}

export type CoreDecision =
  | { readonly kind: 'exempt' }
  | { readonly kind: 'started'; readonly ticket: Ticket }
  | { readonly kind: 'queued'; readonly ticket: Ticket }
  | { readonly kind: 'rejected'; readonly priority: Priority; readonly reason: ShedReason; readonly retryAfterMs: number };

export interface AdmissionSnapshot {
  readonly algorithm: ShedSettings['algorithm'];
  readonly override: Override;
  readonly limit: number;
  readonly inflight: number;
  readonly inflightByPriority: PerPriority<number>;
  readonly queueLength: number;
  readonly queueLengthByPriority: PerPriority<number>;
  readonly minRttMs: number;
  readonly sampledRttMs: number;
  readonly shedding: boolean;
  readonly clients: number;
}

export class AdmissionCore {
  readonly settings: ShedSettings;
  readonly controller: AdmissionController;
  readonly circuitBreakers: CircuitBreakers;
  private readonly clientRates: ClientRateLimiter | undefined;
  private readonly episodes: SheddingEpisodes;

  constructor(settings: ShedSettings, random: Random, nowMs: number) {
    this.settings = settings;
    this.controller = new AdmissionController(createLimiter(settings, random, nowMs), {
      queue: settings.queue, reservedShares: settings.priority.reservedShare, dropLatencyMs: settings.dropLatencyMs,
    });
    this.circuitBreakers = new CircuitBreakers(settings.circuitBreaker);
    this.clientRates = settings.clientRateLimit === undefined ? undefined : new ClientRateLimiter(settings.clientRateLimit);
    this.episodes = new SheddingEpisodes(settings.quietPeriodMs);
  }

  admit(request: AdmissionRequestInfo, nowMs: number): { decision: CoreDecision; effects: Effects } {
    const classified = classify(request, { ...this.settings.priority, exempt: this.settings.exempt });
    if (classified === 'exempt') return { decision: { kind: 'exempt' }, effects: { started: [], rejected: [] } };
    const priority = request.priority ?? classified;
    const quota = this.checkClientRate(request, nowMs);
    if (quota !== undefined) {
      this.recordRejection('client-rate-limit', priority, nowMs);
      return { decision: { kind: 'rejected', priority, reason: 'client-rate-limit', retryAfterMs: quota }, effects: { started: [], rejected: [] } };
    }
    const result = this.controller.admit(priority, nowMs);
    this.recordEffects(result.effects, nowMs);
    if (result.outcome === 'rejected') {
      this.recordRejection(result.reason, priority, nowMs);
      return { decision: { kind: 'rejected', priority, reason: result.reason, retryAfterMs: this.settings.retryAfterSeconds * 1000 }, effects: result.effects };
    }
    return { decision: { kind: result.outcome, ticket: result.ticket }, effects: result.effects };
  }

  release(ticket: Ticket, outcome: ReleaseOutcome, nowMs: number): Effects {
    return this.recordEffects(this.controller.release(ticket, outcome, nowMs), nowMs);
  }

  cancel(ticket: Ticket, nowMs: number): boolean {
    return this.controller.cancel(ticket, nowMs);
  }

  /** Refuses overdue waiters, hands out free slots and ends a quiet shedding episode. */
  expire(nowMs: number): Effects {
    this.episodes.tick(nowMs);
    return this.recordEffects(this.controller.expire(nowMs), nowMs);
  }

  setOverride(override: Override, nowMs: number): Effects {
    const previous = this.controller.override;
    const effects = this.controller.setOverride(override, nowMs);
    this.episodes.onOverride(override, previous, nowMs);
    return this.recordEffects(effects, nowMs);
  }

  /** Refuses every waiting request (on close). */
  drain(nowMs: number): Effects {
    return this.recordEffects(this.controller.drain('closing', nowMs), nowMs);
  }

  /** Counts a refusal decided outside the core (a circuit breaker in the proxy) toward the episodes. */
  recordRejection(reason: ShedReason, priority: Priority, nowMs: number): void {
    this.episodes.onRejected(reason, priority, nowMs, {
      limit: this.controller.limit, inflight: this.controller.inflight, queueLength: this.controller.queueLength,
    });
  }

  takeEvents(): ShedEvent[] {
    return this.episodes.takeEvents();
  }

  /** When the shell should call expire() next: a queue deadline or the end of a quiet period. */
  nextWakeMs(): number {
    return Math.min(this.controller.nextDeadlineMs(), this.episodes.quietDeadlineMs);
  }

  snapshot(): AdmissionSnapshot {
    const controller = this.controller;
    return {
      algorithm: this.settings.algorithm,
      override: controller.override,
      limit: controller.limit,
      inflight: controller.inflight,
      inflightByPriority: perPriority((priority) => controller.inflightOf(priority)),
      queueLength: controller.queueLength,
      queueLengthByPriority: perPriority((priority) => controller.queueLengthOf(priority)),
      minRttMs: controller.limiter.minRttMs,
      sampledRttMs: controller.limiter.sampledRttMs,
      shedding: this.episodes.shedding,
      clients: this.clientRates?.clientCount ?? 0,
    };
  }

  /** Milliseconds until the client may retry, or undefined when its bucket allows the request. */
  private checkClientRate(request: AdmissionRequestInfo, nowMs: number): number | undefined {
    const limits = this.settings.clientRateLimit;
    if (this.clientRates === undefined || limits === undefined || this.controller.override.mode === 'off') return undefined;
    const fromHeader = limits.keyHeader === undefined ? undefined : headerValue(request.headers, limits.keyHeader);
    const key = (fromHeader ?? request.clientKey).slice(0, MAX_CLIENT_KEY_LENGTH);
    const decision = this.clientRates.take(key, nowMs);
    return decision.allowed ? undefined : decision.retryAfterMs;
  }

  private recordEffects(effects: Effects, nowMs: number): Effects {
    for (const { ticket, reason } of effects.rejected) this.recordRejection(reason, ticket.priority, nowMs);
    return effects;
  }
}
