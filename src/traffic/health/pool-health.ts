// The health of every backend of one pool: active-check state, passive outlier ejections and
// draining, and the events they produce. Pure: the shell passes in probe results, request
// outcomes and the time, and applies what comes back (routability changes go to the balancer,
// events to the timeline).
//
// A backend takes new requests when its active checks say healthy (or there are none), it is not
// ejected, and it is not draining. An ejected backend comes back when its ejection time is over
// and, when active checks run, a probe after that passes (re-admission through active checks).

import type { Random } from '../../random/seeded-random.ts';
import { ActiveCheckState, type ActiveCheckOptions, type ProbeResult } from './active-check.ts';
import type { HealthCause, HealthEvent, HealthEventKind } from './events.ts';
import { maxEjectedBackends, OutlierCounters, successRateOutliers, type OutlierOptions, type OutlierTrigger, type TrafficOutcome } from './outlier-detection.ts';

export type CheckKind = 'http' | 'tcp' | 'grpc';

export interface PoolHealthOptions {
  pool: string;
  /** The active check, or undefined when the pool runs none (then only passive detection applies). */
  active: (ActiveCheckOptions & { kind: CheckKind }) | undefined;
  outlier: OutlierOptions;
}

interface Drain {
  readonly startedAtMs: number;
  readonly deadlineMs: number;
}

interface BackendHealth {
  readonly id: string;
  readonly active: ActiveCheckState | undefined;
  readonly outlier: OutlierCounters;
  /** Ejection time is over; waiting for a passing active check to re-admit. */
  awaitingCheck: boolean;
  drain: Drain | undefined;
  drained: boolean;
}

/** What the admin port reports about one backend's health. */
export interface BackendHealthView {
  state: 'healthy' | 'unhealthy' | 'ejected' | 'draining' | 'drained';
  activeHealthy: boolean | undefined;
  ejectedUntilMs: number | undefined;
  ejections: number;
  consecutiveFailures: number;
  lastCheck: ProbeResult | undefined;
}

export class PoolHealth {
  private readonly backends = new Map<string, BackendHealth>();
  private nextOutlierIntervalMs: number | undefined;
  private readonly options: PoolHealthOptions;
  private readonly random: Random;

  constructor(options: PoolHealthOptions, random: Random) {
    this.options = options;
    this.random = random;
  }

  /** `assumeHealthy`: true for backends present at start-up, false for ones added later (they wait for a passing check). */
  addBackend(id: string, assumeHealthy: boolean): void {
    if (this.backends.has(id)) return;
    const active = this.options.active === undefined ? undefined : new ActiveCheckState(this.options.active, assumeHealthy);
    this.backends.set(id, { id, active, outlier: new OutlierCounters(), awaitingCheck: false, drain: undefined, drained: false });
  }

  removeBackend(id: string): void {
    this.backends.delete(id);
  }

  ids(): string[] {
    return [...this.backends.keys()];
  }

  /** True when health (active and passive) allows new requests; draining is separate (isDraining). */
  isHealthy(id: string): boolean {
    const backend = this.backend(id);
    return (backend.active?.isHealthy ?? true) && backend.outlier.ejectedUntilMs === undefined && !backend.awaitingCheck;
  }

  /** True while draining and once drained: no new requests either way. */
  isDraining(id: string): boolean {
    const backend = this.backend(id);
    return backend.drain !== undefined || backend.drained;
  }

  view(id: string): BackendHealthView {
    const backend = this.backend(id);
    const ejected = backend.outlier.ejectedUntilMs !== undefined || backend.awaitingCheck;
    const state = backend.drained ? 'drained' : backend.drain !== undefined ? 'draining' : ejected ? 'ejected' : this.isHealthy(id) ? 'healthy' : 'unhealthy';
    return {
      state, activeHealthy: backend.active?.isHealthy, ejectedUntilMs: backend.outlier.ejectedUntilMs, ejections: backend.outlier.ejections,
      consecutiveFailures: backend.active?.consecutiveFailures ?? 0, lastCheck: backend.active?.lastResult,
    };
  }

  /** Delay from the previous probe's start (or from now, for the first probe) to the next probe of `id`. */
  nextProbeDelayMs(id: string): number {
    const active = this.backend(id).active;
    if (active === undefined) throw new Error(`bug: pool ${this.options.pool} runs no active checks`);
    return active.nextDelayMs(this.random);
  }

  recordProbe(id: string, result: ProbeResult): HealthEvent[] {
    const backend = this.backends.get(id);
    if (backend === undefined || backend.active === undefined) return [];
    const cause = `active:${this.options.active!.kind}` as HealthCause;
    const events: HealthEvent[] = [];
    const verdict = backend.active.record(result);
    if (result.ok && backend.awaitingCheck && backend.active.isHealthy) {
      backend.awaitingCheck = false;
      backend.outlier.resetConsecutive();
      events.push(this.event(result.finishedAtMs, id, 'readmitted', cause, `ejection over and the check passed: ${result.detail}`));
    }
    // Active transitions are reported even while the backend is ejected or draining: they are facts about it.
    if (verdict.changed && !verdict.healthy) {
      events.push({ ...this.event(result.finishedAtMs, id, 'marked-down', cause, result.detail), detectionMs: verdict.detectionMs });
    } else if (verdict.changed && verdict.healthy) {
      events.push(this.event(result.finishedAtMs, id, 'marked-up', cause, result.detail));
    }
    return events;
  }

  /**
   * Applies a verdict reached elsewhere (the control plane checks each backend once for the whole
   * cluster and publishes the result): the same events as a verdict of its own, with the detection
   * time the checker measured. A healthy verdict also re-admits a backend whose ejection is over.
   */
  applyVerdict(id: string, verdict: { healthy: boolean; atMs: number; detail: string; detectionMs?: number; lastProbe?: ProbeResult }): HealthEvent[] {
    const backend = this.backends.get(id);
    if (backend === undefined || backend.active === undefined) return [];
    const cause = `active:${this.options.active!.kind}` as HealthCause;
    const wasHealthy = backend.active.isHealthy;
    const changed = backend.active.adopt(verdict.healthy, verdict.lastProbe) && wasHealthy !== verdict.healthy;
    const events: HealthEvent[] = [];
    if (verdict.healthy && backend.awaitingCheck) {
      backend.awaitingCheck = false;
      backend.outlier.resetConsecutive();
      events.push(this.event(verdict.atMs, id, 'readmitted', cause, `ejection over and the published check passed: ${verdict.detail}`));
    }
    if (changed && !verdict.healthy) {
      const down = this.event(verdict.atMs, id, 'marked-down', cause, verdict.detail);
      events.push(verdict.detectionMs === undefined ? down : { ...down, detectionMs: verdict.detectionMs });
    } else if (changed) {
      events.push(this.event(verdict.atMs, id, 'marked-up', cause, verdict.detail));
    }
    return events;
  }

  /** Counts one request's outcome; may eject the backend. */
  recordOutcome(id: string, outcome: TrafficOutcome, nowMs: number): HealthEvent[] {
    const backend = this.backends.get(id);
    if (backend === undefined || backend.outlier.ejectedUntilMs !== undefined || backend.awaitingCheck) return [];
    const trigger = backend.outlier.record(outcome, this.options.outlier);
    if (trigger === undefined) return [];
    return this.maybeEject(backend, nowMs, triggerCause(trigger), triggerDetail(trigger, this.options.outlier));
  }

  startDrain(id: string, nowMs: number, timeoutMs: number): HealthEvent[] {
    const backend = this.backend(id);
    if (backend.drain !== undefined) return [];
    backend.drained = false;
    backend.drain = { startedAtMs: nowMs, deadlineMs: nowMs + timeoutMs };
    return [this.event(nowMs, id, 'drain-started', 'operator', `in-flight requests get up to ${timeoutMs} ms`)];
  }

  /** Ends draining (or a finished drain): the backend takes traffic again if healthy. */
  cancelDrain(id: string, nowMs: number): HealthEvent[] {
    const backend = this.backend(id);
    if (backend.drain === undefined && !backend.drained) return [];
    backend.drain = undefined;
    backend.drained = false;
    return [this.event(nowMs, id, 'drain-cancelled', 'operator', 'back in rotation')];
  }

  /**
   * Advances time: ends ejections whose time is over, judges success rates once per outlier
   * interval, and finishes drains whose in-flight requests are done (or whose deadline passed).
   */
  tick(nowMs: number, activeRequestsOf: (id: string) => number): HealthEvent[] {
    const events: HealthEvent[] = [];
    for (const backend of this.backends.values()) {
      const until = backend.outlier.ejectedUntilMs;
      if (until !== undefined && nowMs >= until) {
        backend.outlier.ejectedUntilMs = undefined;
        backend.outlier.resetConsecutive();
        if (backend.active === undefined) events.push(this.event(nowMs, backend.id, 'readmitted', 'passive:ejection-expired', 'ejection time is over'));
        else backend.awaitingCheck = true;
      }
      if (backend.drain !== undefined) {
        const active = activeRequestsOf(backend.id);
        if (active === 0 || nowMs >= backend.drain.deadlineMs) {
          const detail = active === 0
            ? `in-flight requests finished in ${Math.round(nowMs - backend.drain.startedAtMs)} ms`
            : `deadline reached with ${active} requests still in flight`;
          backend.drain = undefined;
          backend.drained = true;
          events.push(this.event(nowMs, backend.id, 'drained', 'operator', detail));
        }
      }
    }
    this.nextOutlierIntervalMs ??= nowMs + this.options.outlier.intervalMs;
    if (nowMs >= this.nextOutlierIntervalMs) {
      this.nextOutlierIntervalMs = nowMs + this.options.outlier.intervalMs;
      events.push(...this.endOutlierInterval(nowMs));
    }
    return events;
  }

  private endOutlierInterval(nowMs: number): HealthEvent[] {
    const candidates = [...this.backends.values()].filter((backend) => backend.outlier.ejectedUntilMs === undefined && !backend.awaitingCheck);
    const outliers = successRateOutliers(candidates.map((backend) => ({
      requests: backend.outlier.intervalRequests, successes: backend.outlier.intervalSuccesses,
    })), this.options.outlier);
    const events: HealthEvent[] = [];
    for (const index of outliers) {
      const backend = candidates[index]!;
      const rate = (100 * backend.outlier.intervalSuccesses) / backend.outlier.intervalRequests;
      events.push(...this.maybeEject(backend, nowMs, 'passive:success-rate', `success rate ${rate.toFixed(1)} % is an outlier in the pool`));
    }
    for (const backend of this.backends.values()) {
      backend.outlier.intervalRequests = 0;
      backend.outlier.intervalSuccesses = 0;
      const out = backend.outlier.ejectedUntilMs !== undefined || backend.awaitingCheck;
      if (!out && backend.outlier.ejections > 0) backend.outlier.ejections -= 1;
    }
    return events;
  }

  private maybeEject(backend: BackendHealth, nowMs: number, cause: HealthCause, detail: string): HealthEvent[] {
    const ejected = [...this.backends.values()].filter((other) => other.outlier.ejectedUntilMs !== undefined || other.awaitingCheck).length;
    if (ejected + 1 > maxEjectedBackends(this.backends.size, this.options.outlier.maxEjectionPercent)) {
      // The cap holds: the backend stays in, and its counters start over so it is judged afresh.
      backend.outlier.resetConsecutive();
      return [];
    }
    backend.outlier.ejections += 1;
    const ejectionMs = backend.outlier.ejectionMs(this.options.outlier);
    backend.outlier.ejectedUntilMs = nowMs + ejectionMs;
    backend.outlier.resetConsecutive();
    return [{ ...this.event(nowMs, backend.id, 'ejected', cause, detail), ejectionMs }];
  }

  private backend(id: string): BackendHealth {
    const backend = this.backends.get(id);
    if (backend === undefined) throw new Error(`bug: backend ${id} is not in pool ${this.options.pool}`);
    return backend;
  }

  private event(atMs: number, backend: string, kind: HealthEventKind, cause: HealthCause, detail: string): HealthEvent {
    return { atMs, pool: this.options.pool, backend, kind, cause, detail };
  }
}

function triggerCause(trigger: OutlierTrigger): HealthCause {
  return trigger === 'consecutive-5xx' ? 'passive:consecutive-5xx' : 'passive:consecutive-gateway-failure';
}

function triggerDetail(trigger: OutlierTrigger, options: OutlierOptions): string {
  return trigger === 'consecutive-5xx'
    ? `${options.consecutive5xx} consecutive 5xx responses`
    : `${options.consecutiveGatewayFailure} consecutive gateway failures (502/503/504, refused, reset or timed out)`;
}
