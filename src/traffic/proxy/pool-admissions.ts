// Load shedding in the proxy: one PoolAdmission (src/traffic/admission) per pool with a `shed:`
// section, behind the proxy's Admission interface. Pools without one admit everything at no cost.
//
// * Health-check probes are never shed: each pool's own health path (and any request carrying the
//   checker's user agent) is added to the pool's `exempt` rules, so a load balancer in front that
//   checks the proxy on that path keeps seeing it healthy while it sheds.
// * Per-backend circuit breakers (Envoy's): before each attempt, requests in flight to the backend
//   (maxRequests) and requests waiting for one of its connections (maxPendingRequests) are
//   checked; maxConnections caps the backend's connection pool (pool-runtime.ts). A refusal is a
//   503 with x-concord-shed: circuit-breaker, counted like any other.
// * The operator's override (GET /shed, PUT /shed/override) is served on the admin port, the
//   metrics (concord_shed_*) are merged into /metrics, and shedding episodes become events
//   (shed-started, shed-stopped, shed-override-changed) in /events and the store's timeline.
// * A new pool snapshot (a configuration change) replaces a pool's admission only when its shed
//   settings change; requests waiting in the old one's queue are refused with 'closing'.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PoolConfig } from '../../control/config.ts';
import { toShedSettings } from '../../control/shed-config.ts';
import { createAdmission, type AdmissionEvent, type PoolAdmission } from '../admission/admission.ts';
import { handleShedAdmin } from '../admission/admin-routes.ts';
import { ShedMetrics } from '../admission/shed-metrics.ts';
import type { HealthEvent } from '../health/events.ts';
import type { RequestMatch } from '../shed/classifier.ts';
import type { ShedSettings } from '../shed/shed-settings.ts';
import type { Admission, AdmissionDecision, AdmissionRequest, BackendGate, Refusal } from './admission.ts';

/** The user agent of Concord's HTTP health probes (src/traffic/probes/http-probe.ts). */
export const HEALTH_CHECK_USER_AGENT = 'concord-health-check';
/** The gRPC health protocol's method: a gRPC pool's probes. */
const GRPC_HEALTH_PATH = '/grpc.health.v1.Health/Check';

const ADMITTED: AdmissionDecision = { admitted: true, release: () => {} };

interface PoolEntry {
  admission: PoolAdmission;
  /** The settings it was built from, as JSON, to tell whether a new snapshot changes them. */
  signature: string;
  gate: BackendGate;
  maxRequests: number;
  maxPendingRequests: number;
}

/** The shed settings of a pool, with its health probes exempt. */
export function shedSettingsOf(pool: PoolConfig): ShedSettings | undefined {
  if (pool.shed === undefined) return undefined;
  const settings = toShedSettings(pool.shed);
  const probes: RequestMatch[] = [{ header: { name: 'user-agent', value: HEALTH_CHECK_USER_AGENT } }];
  if (pool.health?.http !== undefined) probes.push({ path: pool.health.http.path });
  if (pool.health?.grpc !== undefined) probes.push({ path: GRPC_HEALTH_PATH });
  return { ...settings, exempt: [...settings.exempt, ...probes] };
}

export class PoolAdmissions implements Admission {
  readonly metrics = new ShedMetrics();
  private readonly pools = new Map<string, PoolEntry>();
  private readonly onEvent: (event: HealthEvent) => void;
  private closed = false;

  constructor(options: { onEvent?: (event: HealthEvent) => void } = {}) {
    this.onEvent = options.onEvent ?? (() => {});
  }

  /** Builds, replaces or closes each pool's admission control to match the pools given. */
  setPools(pools: readonly PoolConfig[]): void {
    if (this.closed) return;
    const wanted = new Map(pools.map((pool) => [pool.name, pool]));
    for (const [name, entry] of this.pools) {
      const pool = wanted.get(name);
      if (pool === undefined || JSON.stringify(shedSettingsOf(pool)) !== entry.signature) {
        entry.admission.close();
        this.pools.delete(name);
      }
    }
    for (const pool of pools) {
      const settings = shedSettingsOf(pool);
      if (settings === undefined || this.pools.has(pool.name)) continue;
      this.pools.set(pool.name, this.entryFor(pool.name, settings));
    }
  }

  admit(request: AdmissionRequest): AdmissionDecision | Promise<AdmissionDecision> {
    const entry = this.pools.get(request.pool);
    if (entry === undefined) return ADMITTED;
    return entry.admission.admit({ method: request.method, path: request.path, headers: request.headers, clientKey: request.clientKey }).then((decision): AdmissionDecision => {
      if (!decision.admitted) return { admitted: false, status: decision.status, headers: decision.headers, reason: decision.reason };
      return { admitted: true, release: (outcome) => decision.release({ rttMs: outcome.rttMs, dropped: outcome.dropped }) };
    });
  }

  backendGate(pool: string): BackendGate | undefined {
    // Looked up per call: a configuration change may replace the pool's admission.
    return {
      tryStart: (backend, pendingRequests) => this.pools.get(pool)?.gate.tryStart(backend, pendingRequests),
      finished: (backend) => this.pools.get(pool)?.gate.finished(backend),
    };
  }

  /** GET /shed and PUT /shed/override on the admin port; false for other paths. */
  handleAdmin(req: IncomingMessage, res: ServerResponse): boolean {
    return handleShedAdmin(req, res, new Map([...this.pools].map(([name, entry]) => [name, entry.admission])));
  }

  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  /** The admission control of a pool, if it has a shed: section. */
  admission(pool: string): PoolAdmission | undefined {
    return this.pools.get(pool)?.admission;
  }

  close(): void {
    this.closed = true;
    for (const entry of this.pools.values()) entry.admission.close();
    this.pools.clear();
  }

  private entryFor(pool: string, settings: ShedSettings): PoolEntry {
    const admission = createAdmission({ pool, settings, metrics: this.metrics, onEvent: (event) => this.onEvent(toHealthEvent(event)) });
    const breaker = settings.circuitBreaker;
    const entry: PoolEntry = {
      admission, signature: JSON.stringify(settings), maxRequests: breaker.maxRequests, maxPendingRequests: breaker.maxPendingRequests,
      gate: {
        tryStart: (backend, pendingRequests): Refusal | undefined => {
          if (pendingRequests >= entry.maxPendingRequests || !admission.circuitBreakers.tryAcquire(backend, 'requests')) {
            // The class is not known here (admission classified the request earlier); the refusal counts as default.
            const refusal = admission.rejection('circuit-breaker', 'default');
            return { status: refusal.status, headers: refusal.headers, reason: refusal.reason };
          }
          return undefined;
        },
        finished: (backend) => {
          if (admission.circuitBreakers.countOf(backend, 'requests') > 0) admission.circuitBreakers.release(backend, 'requests');
        },
      },
    };
    return entry;
  }
}

/** A shedding event as a proxy event (backend '*': it is about the whole pool). */
export function toHealthEvent(event: AdmissionEvent): HealthEvent {
  const base = { atMs: event.atMs, pool: event.pool, backend: '*' };
  switch (event.type) {
    case 'shedding-started':
      return { ...base, kind: 'shed-started', cause: 'pool:shedding', detail: `refusing ${event.priority} requests (${event.reason}) at limit ${event.limit} with ${event.inflight} in flight and ${event.queueLength} queued` };
    case 'shedding-stopped': {
      const byReason = Object.entries(event.rejectedByReason).map(([reason, count]) => `${reason} ${count}`).join(', ');
      const byPriority = Object.entries(event.rejectedByPriority).filter(([, count]) => count > 0).map(([priority, count]) => `${priority} ${count}`).join(', ');
      return { ...base, kind: 'shed-stopped', cause: 'pool:shedding', detail: `shed for ${Math.round(event.durationMs)} ms: ${byReason || 'nothing'} (by class: ${byPriority || 'none'})` };
    }
    case 'override-changed':
      return { ...base, kind: 'shed-override-changed', cause: 'operator', detail: `override ${describeOverride(event.override)} (was ${describeOverride(event.previous)})` };
  }
}

function describeOverride(override: { mode: string; limit?: number }): string {
  return override.mode === 'fixed' ? `fixed at ${override.limit}` : override.mode;
}
