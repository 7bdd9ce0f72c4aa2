// A fixed concurrency limit, and no limit at all: the baselines the adaptive algorithms are measured
// against. Samples change nothing.

import type { Limiter, LimiterAlgorithm, Sample } from './limiter.ts';

export class FixedLimiter implements Limiter {
  readonly algorithm: LimiterAlgorithm = 'fixed';
  readonly minRttMs = Number.NaN;
  readonly sampledRttMs = Number.NaN;
  readonly limit: number;

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`bug: a fixed limit must be a whole number >= 1, got ${limit}`);
    this.limit = limit;
  }

  onSample(_sample: Sample): void {}
}

export class NoLimiter implements Limiter {
  readonly algorithm: LimiterAlgorithm = 'none';
  readonly limit = Number.POSITIVE_INFINITY;
  readonly minRttMs = Number.NaN;
  readonly sampledRttMs = Number.NaN;

  onSample(_sample: Sample): void {}
}
