// Per-backend circuit breakers in Envoy's sense: counters with hard maximums, not an open/closed
// state machine. The proxy asks before it opens a connection to a backend, before a request waits
// for a connection (pending), and before a request is sent (active); at a maximum the answer is no
// and the request is refused with a 503 at once, so one slow backend cannot pile up unbounded
// connections and queued requests in the proxy. Envoy's default for each maximum is 1024.
//
// A backend's counters are forgotten when they all return to zero, so the table holds only
// backends with something in flight.

export const BREAKER_RESOURCES = ['connections', 'pendingRequests', 'requests'] as const;

export type BreakerResource = (typeof BREAKER_RESOURCES)[number];

export interface CircuitBreakerSettings {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
}

type Counts = Record<BreakerResource, number>;

export class CircuitBreakers {
  private readonly maximums: Counts;
  private readonly byBackend = new Map<string, Counts>();

  constructor(settings: CircuitBreakerSettings) {
    this.maximums = { connections: settings.maxConnections, pendingRequests: settings.maxPendingRequests, requests: settings.maxRequests };
    for (const resource of BREAKER_RESOURCES) {
      const max = this.maximums[resource];
      if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`bug: circuit breaker maximum of ${resource} is ${max}, not a whole number >= 1`);
    }
  }

  /** Takes one unit of a backend's resource; false (and nothing taken) at the maximum. */
  tryAcquire(backend: string, resource: BreakerResource): boolean {
    let counts = this.byBackend.get(backend);
    if (counts !== undefined && counts[resource] >= this.maximums[resource]) return false;
    if (counts === undefined) {
      counts = { connections: 0, pendingRequests: 0, requests: 0 };
      this.byBackend.set(backend, counts);
    }
    counts[resource] += 1;
    return true;
  }

  release(backend: string, resource: BreakerResource): void {
    const counts = this.byBackend.get(backend);
    if (counts === undefined || counts[resource] === 0) throw new Error(`bug: release of ${resource} on ${backend} without an acquire`);
    counts[resource] -= 1;
    if (counts.connections === 0 && counts.pendingRequests === 0 && counts.requests === 0) this.byBackend.delete(backend);
  }

  countOf(backend: string, resource: BreakerResource): number {
    return this.byBackend.get(backend)?.[resource] ?? 0;
  }

  /** Backends with something in flight. */
  get trackedBackends(): number {
    return this.byBackend.size;
  }
}
