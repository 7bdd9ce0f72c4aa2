// Why a request was refused. The reason travels to the client in the x-concord-shed header, to the
// rejected-requests metric and to the shedding events, under the same name everywhere.

export const SHED_REASONS = [
  /** The concurrency limit is reached and there is no queue. */
  'concurrency-limit',
  /** The limit is reached and the queue is full of requests at least as important. */
  'queue-full',
  /** The request waited in the queue until its deadline without getting a slot. */
  'queue-timeout',
  /** The request was waiting in a full queue and gave its place to a more important one. */
  'displaced',
  /** The client's token bucket is empty (answered 429, not 503). */
  'client-rate-limit',
  /** The backend's circuit breaker is at its maximum of connections, pending or active requests. */
  'circuit-breaker',
  /** Admission control is closing (the proxy is shutting down). */
  'closing',
  /** The client went away while its request waited; nobody receives this answer. */
  'cancelled',
] as const;

export type ShedReason = (typeof SHED_REASONS)[number];

const OVERLOAD_REASONS: ReadonlySet<ShedReason> = new Set(['concurrency-limit', 'queue-full', 'queue-timeout', 'displaced', 'circuit-breaker']);

/** Reasons that mean the service is overloaded: not a client quota, a shutdown, or a client that left. */
export function isOverloadReason(reason: ShedReason): boolean {
  return OVERLOAD_REASONS.has(reason);
}
