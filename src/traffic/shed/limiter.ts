// The contract every concurrency limit algorithm follows, as in Netflix's concurrency-limits: the
// caller admits requests while fewer than `limit` are in flight, and reports each finished request
// as a sample. The algorithm moves the limit from the samples alone; time is the sample's own
// (milliseconds, from the caller's clock), so every algorithm is a deterministic function of the
// samples it was given.

export const LIMITER_ALGORITHMS = ['none', 'fixed', 'aimd', 'vegas', 'gradient'] as const;

export type LimiterAlgorithm = (typeof LIMITER_ALGORITHMS)[number];

/** One finished request. */
export interface Sample {
  /** When the request was admitted (started), in the caller's milliseconds. */
  readonly startMs: number;
  /** How long it took, from admission to the end of the response, in milliseconds. */
  readonly rttMs: number;
  /** Requests in flight when this one was admitted, itself included. */
  readonly inflight: number;
  /**
   * True when the request failed in a way that signals overload: a timeout, or a 5xx that the
   * backend sent because it was overloaded. A dropped request's RTT says nothing about how fast
   * the backend serves, so no algorithm takes it as a baseline.
   */
  readonly dropped: boolean;
}

export interface Limiter {
  readonly algorithm: LimiterAlgorithm;
  /** Requests allowed in flight now: a whole number >= 1, or Infinity when nothing is limited. */
  readonly limit: number;
  onSample(sample: Sample): void;
  /** Figures worth exporting; NaN when the algorithm has no such notion or has not measured it yet. */
  readonly minRttMs: number;
  readonly sampledRttMs: number;
}

/** Bounds shared by the adaptive algorithms. */
export interface LimitBounds {
  /** The limit never goes below this (>= 1). */
  readonly minLimit: number;
  /** The limit never goes above this (>= minLimit). */
  readonly maxLimit: number;
}

export function clampLimit(limit: number, bounds: LimitBounds): number {
  return Math.min(bounds.maxLimit, Math.max(bounds.minLimit, limit));
}

/** Throws on a programming error in the bounds; configuration is validated before it gets here. */
export function assertBounds(bounds: LimitBounds, initialLimit?: number): void {
  const { minLimit, maxLimit } = bounds;
  if (!Number.isSafeInteger(minLimit) || minLimit < 1) throw new RangeError(`bug: minLimit ${minLimit} must be a whole number >= 1`);
  if (!Number.isSafeInteger(maxLimit) || maxLimit < minLimit) throw new RangeError(`bug: maxLimit ${maxLimit} must be a whole number >= minLimit ${minLimit}`);
  if (initialLimit !== undefined && !(initialLimit >= minLimit && initialLimit <= maxLimit)) {
    throw new RangeError(`bug: initialLimit ${initialLimit} is outside [${minLimit}, ${maxLimit}]`);
  }
}
