// A bounded set of RTT samples that summarizes as a percentile. Up to `capacity` samples are kept
// exactly; past that, reservoir sampling (Vitter's algorithm R) keeps a uniform random subset of
// everything added, so memory stays bounded at any request rate while the percentile stays
// unbiased. The percentile is the nearest-rank one: a value that was actually observed.

import type { Random } from '../../random/seeded-random.ts';

export class RttReservoir {
  private readonly capacity: number;
  private readonly random: Random;
  private readonly values: number[] = [];
  private seen = 0;

  constructor(capacity: number, random: Random) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`bug: reservoir capacity ${capacity} must be a whole number >= 1`);
    this.capacity = capacity;
    this.random = random;
  }

  /** Samples added since the last clear (not only those kept). */
  get count(): number {
    return this.seen;
  }

  add(rttMs: number): void {
    this.seen += 1;
    if (this.values.length < this.capacity) {
      this.values.push(rttMs);
      return;
    }
    const slot = this.random.nextInt(this.seen);
    if (slot < this.capacity) this.values[slot] = rttMs;
  }

  /** The nearest-rank percentile (0 < percentile <= 100) of the kept samples; NaN when empty. */
  percentile(percentile: number): number {
    if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`bug: percentile ${percentile} is outside (0, 100]`);
    if (this.values.length === 0) return Number.NaN;
    const sorted = [...this.values].sort((a, b) => a - b);
    return sorted[Math.ceil((percentile / 100) * sorted.length) - 1]!;
  }

  clear(): void {
    this.values.length = 0;
    this.seen = 0;
  }
}
