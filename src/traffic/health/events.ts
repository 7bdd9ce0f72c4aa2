// Health events: every transition, ejection, re-admission and drain of a backend, with the time,
// what caused it and, for a backend marked down, how long detection took. They answer the
// postmortem question "how fast did we notice?" (the admin port serves them at /events; a later
// issue stores them in the coordination store).

export const HEALTH_EVENT_KINDS = [
  'marked-down', 'marked-up', 'ejected', 'readmitted', 'drain-started', 'drained', 'drain-cancelled', 'panic-started', 'panic-ended',
  // Admission control of the whole pool (backend '*'): a shedding episode, and the operator's override.
  'shed-started', 'shed-stopped', 'shed-override-changed',
] as const;
export type HealthEventKind = (typeof HEALTH_EVENT_KINDS)[number];

/** What caused an event: an active check kind, a passive detector, or an operator. */
export type HealthCause =
  | 'active:http' | 'active:tcp' | 'active:grpc'
  | 'passive:consecutive-5xx' | 'passive:consecutive-gateway-failure' | 'passive:success-rate'
  | 'passive:ejection-expired' | 'operator'
  /** Pool-level: the share of healthy backends crossed the panic threshold (backend is '*'). */
  | 'pool:panic-threshold'
  /** Pool-level: admission control started or stopped refusing requests for overload (backend is '*'). */
  | 'pool:shedding';

export interface HealthEvent {
  /** When it happened, in milliseconds since the epoch (the shell's clock). */
  readonly atMs: number;
  readonly pool: string;
  /** host:port of the backend, or '*' for an event about the whole pool (panic). */
  readonly backend: string;
  readonly kind: HealthEventKind;
  readonly cause: HealthCause;
  /** What the check or detector saw, e.g. 'status 500 (expected 200-299)' or '5 consecutive 5xx'. */
  readonly detail: string;
  /** marked-down only: from the start of the first failed probe of the run to the verdict. */
  readonly detectionMs?: number;
  /** ejected only: how long the ejection lasts. */
  readonly ejectionMs?: number;
}
