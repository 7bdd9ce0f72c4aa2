// Latency-aware power of two choices (Finagle's and Linkerd's "peak EWMA"): pick two distinct
// backends at random and send to the one with the lower cost, where
//   cost = latency × (activeRequests + 1) / weight
// and latency is the peak-EWMA estimate, raised to the mean age of the requests still in flight
// when that is larger. The second term is Concord's addition: a backend that stalls completely
// produces no latency samples at all, so without it the estimate would decay while requests pile
// up; with it, a stalled backend's cost grows with every millisecond of the stall.

import type { Random } from '../../random/seeded-random.ts';
import { twoDistinct } from './least-request.ts';
import { withoutExcluded, type BackendLoad, type PickRequest, type Picker } from './types.ts';

/**
 * The cost of a backend with requests in flight but no latency sample yet (Finagle's penalty): high
 * enough to prefer any measured backend, ordered by in-flight count among unmeasured ones.
 */
const UNMEASURED_PENALTY_MS = 1e9;

export function ewmaCost(backend: BackendLoad, nowMs: number): number {
  const active = backend.activeRequests;
  const meanAgeMs = active > 0 ? nowMs - backend.activeStartSumMs / active : 0;
  const latencyMs = Math.max(backend.latency.estimate(nowMs), meanAgeMs);
  if (latencyMs === 0 && active > 0) return (UNMEASURED_PENALTY_MS + active) / backend.effectiveWeight;
  return (latencyMs * (active + 1)) / backend.effectiveWeight;
}

export class PeakEwmaPicker implements Picker {
  private readonly backends: readonly BackendLoad[];
  private readonly random: Random;

  constructor(backends: readonly BackendLoad[], random: Random) {
    this.backends = backends;
    this.random = random;
  }

  pick(request: PickRequest): BackendLoad | undefined {
    const candidates = withoutExcluded(this.backends, request.exclude);
    if (candidates.length < 2) return candidates[0];
    const [a, b] = twoDistinct(this.random, candidates.length);
    const first = candidates[a]!;
    const second = candidates[b]!;
    return ewmaCost(second, request.nowMs) < ewmaCost(first, request.nowMs) ? second : first;
  }
}
