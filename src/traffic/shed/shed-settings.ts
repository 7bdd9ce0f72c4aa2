// Everything admission control of one pool is configured with, as plain data. The shell's schema
// (src/control/shed-config.ts) validates the `shed:` section of a pool and fills in the defaults;
// this is its output, and the only input the pure core needs besides time and randomness.

import type { QueueSettings } from './admission-queue.ts';
import type { CircuitBreakerSettings } from './circuit-breakers.ts';
import type { PriorityRule, RequestMatch } from './classifier.ts';
import type { ClientRateLimitSettings } from './client-rate-limiter.ts';
import type { LimiterAlgorithm } from './limiter.ts';
import type { PerPriority, Priority } from './priority.ts';

export interface ShedSettings {
  readonly algorithm: LimiterAlgorithm;
  readonly minLimit: number;
  readonly maxLimit: number;
  /** Where aimd, vegas and gradient start; undefined picks each algorithm's default. */
  readonly initialLimit: number | undefined;
  /** A request slower than this counts as dropped, whatever its status. */
  readonly dropLatencyMs: number;
  readonly queue: QueueSettings;
  readonly priority: {
    readonly header: string;
    readonly default: Priority;
    readonly rules: readonly PriorityRule[];
    readonly reservedShare: PerPriority<number>;
  };
  /** Requests never shed nor counted (health-check probes). */
  readonly exempt: readonly RequestMatch[];
  readonly fixed: { readonly limit: number | undefined };
  readonly aimd: { readonly backoffRatio: number };
  readonly vegas: { readonly smoothing: number; readonly probeMultiplier: number };
  readonly gradient: {
    readonly sampleWindowMs: number;
    readonly percentile: number;
    readonly buffer: number;
    readonly minRttIntervalMs: number;
    readonly minRttJitter: number;
    readonly minRttRequestCount: number;
    readonly dropBackoffRatio: number;
    readonly maxSamplesPerWindow: number;
  };
  readonly clientRateLimit: (ClientRateLimitSettings & { readonly keyHeader: string | undefined }) | undefined;
  readonly circuitBreaker: CircuitBreakerSettings;
  /** The Retry-After of a 503 from shedding. */
  readonly retryAfterSeconds: number;
  /** A shedding episode ends after this long without a refusal. */
  readonly quietPeriodMs: number;
}
