// The soak benchmark's verdict on its samples: how much each resource of each process (resident
// memory, heap, open file descriptors) grew after warm-up. Two measures, because each misleads
// alone: the least-squares slope (per hour) over every post-warm-up sample sees a steady leak even
// in a short run but is pulled by one spike near an end; the medians of the first and the last
// tenth of the post-warm-up samples ignore spikes (a GC, a compaction) but need a long run to see
// a slow leak. A resource is "flat" when both stay within the tolerances given.
//
// Pure: samples in, numbers out (no clock, no I/O), so a quick test can check it.

export interface Sample {
  /** Milliseconds since the run started. */
  atMs: number;
  value: number;
}

export interface Growth {
  /** Post-warm-up samples the figures come from. */
  samples: number;
  /** Least-squares slope over the post-warm-up samples, in the value's unit per hour. */
  slopePerHour: number;
  firstDecileMedian: number;
  lastDecileMedian: number;
  /** (last - first) / first, in percent; 0 when the first median is 0 and the last too. */
  growthPercent: number;
}

export interface FlatnessTolerance {
  /** Largest last-vs-first decile growth still called flat, in percent. */
  maxGrowthPercent: number;
  /** Largest slope still called flat, as a percentage of the first decile's median per hour. */
  maxSlopePercentPerHour: number;
}

const HOUR_MS = 3_600_000;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Least-squares slope of value over time, per hour; 0 with fewer than two distinct times. */
export function slopePerHour(samples: readonly Sample[]): number {
  if (samples.length < 2) return 0;
  const meanT = samples.reduce((sum, s) => sum + s.atMs, 0) / samples.length;
  const meanV = samples.reduce((sum, s) => sum + s.value, 0) / samples.length;
  let covariance = 0;
  let variance = 0;
  for (const s of samples) {
    covariance += (s.atMs - meanT) * (s.value - meanV);
    variance += (s.atMs - meanT) ** 2;
  }
  return variance === 0 ? 0 : (covariance / variance) * HOUR_MS;
}

/** Growth of one series after `warmupMs`; samples with a non-finite value (not reachable) are left out. */
export function growthAfterWarmup(series: readonly Sample[], warmupMs: number): Growth | undefined {
  const kept = series.filter((s) => s.atMs >= warmupMs && Number.isFinite(s.value)).sort((a, b) => a.atMs - b.atMs);
  if (kept.length === 0) return undefined;
  // A tenth of the samples, but at least one, so a short run still compares its two ends.
  const decile = Math.max(1, Math.floor(kept.length / 10));
  const first = median(kept.slice(0, decile).map((s) => s.value));
  const last = median(kept.slice(-decile).map((s) => s.value));
  const growthPercent = first === 0 ? (last === 0 ? 0 : Number.POSITIVE_INFINITY) : ((last - first) / first) * 100;
  return { samples: kept.length, slopePerHour: slopePerHour(kept), firstDecileMedian: first, lastDecileMedian: last, growthPercent };
}

export function isFlat(growth: Growth, tolerance: FlatnessTolerance): boolean {
  if (growth.growthPercent > tolerance.maxGrowthPercent) return false;
  if (growth.firstDecileMedian <= 0) return growth.slopePerHour <= 0;
  return (growth.slopePerHour / growth.firstDecileMedian) * 100 <= tolerance.maxSlopePercentPerHour;
}
