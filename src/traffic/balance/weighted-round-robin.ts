// Smooth weighted round robin (nginx's algorithm): every pick adds each backend's weight to its
// running score, picks the highest score and subtracts the total weight from it. Over any window
// of W picks (W the total weight) each backend gets its share, and picks of a heavy backend are
// spread out rather than sent in a burst. The weights are read at every pick, so the least-request
// algorithm reuses this with weights that change with load.

import type { BackendLoad, PickRequest, Picker } from './types.ts';

export class SmoothWeightedPicker implements Picker {
  private readonly scores: Float64Array;
  private readonly backends: readonly BackendLoad[];
  private readonly weightOf: (backend: BackendLoad, nowMs: number) => number;

  constructor(backends: readonly BackendLoad[], weightOf: (backend: BackendLoad, nowMs: number) => number = (backend) => backend.effectiveWeight) {
    this.backends = backends;
    this.weightOf = weightOf;
    this.scores = new Float64Array(backends.length);
  }

  pick(request: PickRequest): BackendLoad | undefined {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (request.exclude !== undefined && request.exclude.has(backend.id)) continue;
      const weight = this.weightOf(backend, request.nowMs);
      this.scores[i]! += weight;
      total += weight;
      if (best < 0 || this.scores[i]! > this.scores[best]!) best = i;
    }
    if (best < 0) return undefined;
    this.scores[best]! -= total;
    return this.backends[best];
  }
}
