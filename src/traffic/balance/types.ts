// The vocabulary every balancing algorithm shares. A backend's live load (requests in flight, its
// latency estimate, its effective weight) lives in one mutable record per backend that the load
// balancer owns and the proxy updates, so each algorithm reads the same numbers the admin port shows.

import type { PeakEwma } from './peak-ewma.ts';

/** One backend as the balancer sees it. `id` is unique within a pool (the proxy uses host:port). */
export interface BackendLoad {
  readonly id: string;
  /** The zone (or region) the backend runs in; compared with the proxy's own zone for locality. */
  readonly zone: string | undefined;
  /** 0 is the most preferred priority; higher numbers receive traffic only when lower ones lack healthy capacity. */
  readonly priority: number;
  /** The weight from the configuration (a positive number). */
  readonly configuredWeight: number;
  /** The weight in force now: configuredWeight scaled down while the backend is in slow start. */
  effectiveWeight: number;
  /** Requests this proxy has sent to the backend that have not completed yet. */
  activeRequests: number;
  /** Sum of the start times (ms) of the requests in flight, so their mean age costs O(1). */
  activeStartSumMs: number;
  /** Latency estimate used by the peak-EWMA algorithm (and shown on the admin port). */
  readonly latency: PeakEwma;
}

/** What a pick may depend on besides the backends themselves. */
export interface PickRequest {
  /** The current time in milliseconds (monotonic, as the shell's clock gives it). */
  readonly nowMs: number;
  /** The consistent-hashing key (a header, cookie or path), when the pool hashes. */
  readonly hashKey?: string | undefined;
  /** Backends not to pick, e.g. those a retried request already failed on. */
  readonly exclude?: ReadonlySet<string> | undefined;
}

/** One algorithm over one fixed set of backends; rebuilt whenever that set or its weights change. */
export interface Picker {
  pick(request: PickRequest): BackendLoad | undefined;
}

export const BALANCE_ALGORITHMS = ['round-robin', 'weighted-round-robin', 'p2c', 'ewma', 'hash'] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

/** Backends that may be picked: those not excluded (the common case allocates nothing). */
export function withoutExcluded(backends: readonly BackendLoad[], exclude: ReadonlySet<string> | undefined): readonly BackendLoad[] {
  if (exclude === undefined || exclude.size === 0) return backends;
  return backends.filter((backend) => !exclude.has(backend.id));
}

/** True when every backend has the same effective weight, so unweighted algorithms are exact. */
export function weightsAreEqual(backends: readonly BackendLoad[]): boolean {
  const first = backends[0]?.effectiveWeight;
  return backends.every((backend) => backend.effectiveWeight === first);
}
