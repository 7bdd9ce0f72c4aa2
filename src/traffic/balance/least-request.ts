// Least request. With equal weights: the power of two choices (pick two distinct backends at
// random, send to the one with fewer requests in flight), which avoids both the herding of "pick
// the global minimum" and the blindness of random choice. With unequal weights (configured, or
// during slow start) Envoy's rule: a weighted schedule whose weights are divided by
// (activeRequests + 1)^activeRequestBias, so heavier backends get more and busy ones get less.

import type { Random } from '../../random/seeded-random.ts';
import { SmoothWeightedPicker } from './weighted-round-robin.ts';
import { weightsAreEqual, withoutExcluded, type BackendLoad, type PickRequest, type Picker } from './types.ts';

/** Envoy's default: weights are divided by (active + 1)^1. */
export const DEFAULT_ACTIVE_REQUEST_BIAS = 1;

/** Two distinct indexes below `count` (count >= 2), uniformly at random. */
export function twoDistinct(random: Random, count: number): [number, number] {
  const first = random.nextInt(count);
  let second = random.nextInt(count - 1);
  if (second >= first) second += 1;
  return [first, second];
}

export class LeastRequestPicker implements Picker {
  private readonly weighted: SmoothWeightedPicker | undefined;
  private readonly backends: readonly BackendLoad[];
  private readonly random: Random;

  constructor(backends: readonly BackendLoad[], random: Random, activeRequestBias: number = DEFAULT_ACTIVE_REQUEST_BIAS) {
    this.backends = backends;
    this.random = random;
    this.weighted = weightsAreEqual(backends)
      ? undefined
      : new SmoothWeightedPicker(backends, (backend) => backend.effectiveWeight / (backend.activeRequests + 1) ** activeRequestBias);
  }

  pick(request: PickRequest): BackendLoad | undefined {
    if (this.weighted !== undefined) return this.weighted.pick(request);
    const candidates = withoutExcluded(this.backends, request.exclude);
    if (candidates.length < 2) return candidates[0];
    const [a, b] = twoDistinct(this.random, candidates.length);
    const first = candidates[a]!;
    const second = candidates[b]!;
    return second.activeRequests < first.activeRequests ? second : first;
  }
}
