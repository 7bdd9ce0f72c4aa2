// The hook where admission control (load shedding, issue 6) runs: after routing, before a
// backend is picked, so a rejected request never touches a backend. The shedding library
// implements this interface; until it is wired in, every request is admitted.

import type { IncomingHttpHeaders } from 'node:http';

export interface AdmissionRequest {
  readonly pool: string;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Who is asking, for per-client quotas: the client's IP address. */
  readonly clientKey: string;
}

/** How an admitted request ended, for limiters that learn from latency and drops. */
export interface AdmissionOutcome {
  /** From admission to the end of the response (or the failure). */
  readonly rttMs: number;
  /** True when the request failed in a way that signals overload: a timeout, or a 5xx from the backend. */
  readonly dropped: boolean;
}

export type AdmissionDecision =
  | { readonly admitted: true; release(outcome: AdmissionOutcome): void }
  | {
    readonly admitted: false;
    /** 503 (overload) or 429 (a client over its quota). */
    readonly status: number;
    /** Sent as they are: Retry-After, and x-concord-shed naming the reason. */
    readonly headers: Readonly<Record<string, string>>;
    readonly reason: string;
  };

export interface Admission {
  admit(request: AdmissionRequest): AdmissionDecision | Promise<AdmissionDecision>;
  /** The per-backend circuit breakers of a pool (Envoy's), asked before each attempt; none by default. */
  backendGate?(pool: string): BackendGate | undefined;
}

/** A refusal the proxy sends as it is: a status, and headers such as retry-after and x-concord-shed. */
export interface Refusal {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly reason: string;
}

/**
 * Per-backend limits checked before an attempt is sent to a backend: undefined to go ahead (then
 * `finished` is called exactly once when the attempt ends), or the refusal to answer with at once.
 */
export interface BackendGate {
  tryStart(backend: string, pendingRequests: number): Refusal | undefined;
  finished(backend: string): void;
}

/** The decision of admitAll; the proxy skips the call (and building the request's headers) when admission is admitAll. */
export const ADMITTED: AdmissionDecision = { admitted: true, release: () => {} };

/** The default: admits everything, at no cost. */
export const admitAll: Admission = { admit: () => ADMITTED };

/** The header a shedding proxy puts on its own rejections; a 503 carrying it is never retried. */
export const SHED_MARKER_HEADER = 'x-concord-shed';
