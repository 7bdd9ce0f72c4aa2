// A log-linear latency histogram in the spirit of HdrHistogram: every power-of-two range of
// microseconds is split into SUB_BUCKETS linear buckets, so any recorded value is known to within
// 1/SUB_BUCKETS (1.6 %) of itself, whatever its magnitude, in a fixed array of counts. Percentiles
// are read from the counts, never derived from averages. Histograms serialize to a sparse JSON form
// so a load generator in another process can hand its whole distribution back.

/** Linear buckets per power of two: 2^6 = 64, so the relative error is at most 1/64. */
const SUB_BUCKET_BITS = 6;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Values above this are clamped to it: 2^31 µs is about 36 minutes, far beyond any request deadline. */
export const LATENCY_US_MAX = 2 ** 31 - 1;
/** Index of the bucket that holds LATENCY_US_MAX, plus one: the size of the counts array. */
const BUCKET_COUNT = bucketIndexOf(LATENCY_US_MAX) + 1;

export interface HistogramJson {
  /** [bucket index, count] pairs, only for non-empty buckets. */
  readonly buckets: readonly (readonly [number, number])[];
  readonly totalCount: number;
  readonly minUs: number;
  readonly maxUs: number;
}

function bucketIndexOf(valueUs: number): number {
  if (valueUs < SUB_BUCKETS) return valueUs;
  const shift = Math.floor(Math.log2(valueUs)) - SUB_BUCKET_BITS;
  // Math.log2 can round up just below a power of two; the mantissa check corrects it.
  const correctedShift = Math.floor(valueUs / 2 ** shift) >= 2 * SUB_BUCKETS ? shift + 1 : shift;
  const mantissa = Math.floor(valueUs / 2 ** correctedShift);
  return (correctedShift + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
}

/** The largest value that lands in bucket `index`, as HdrHistogram's highestEquivalentValue. */
function bucketHighestUs(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const shift = Math.floor(index / SUB_BUCKETS) - 1;
  const mantissa = (index % SUB_BUCKETS) + SUB_BUCKETS;
  return (mantissa + 1) * 2 ** shift - 1;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private minUs = Number.POSITIVE_INFINITY;
  private maxUs = 0;

  /** Records one latency given in milliseconds (as performance.now() differences are). */
  recordMs(latencyMs: number): void {
    const valueUs = Math.min(LATENCY_US_MAX, Math.max(0, Math.round(latencyMs * 1000)));
    this.counts[bucketIndexOf(valueUs)]! += 1;
    this.total += 1;
    if (valueUs < this.minUs) this.minUs = valueUs;
    if (valueUs > this.maxUs) this.maxUs = valueUs;
  }

  get totalCount(): number {
    return this.total;
  }

  /** The latency in milliseconds below or at which `percentile` % of the recorded values lie; NaN when empty. */
  percentileMs(percentile: number): number {
    if (!(percentile >= 0 && percentile <= 100)) throw new RangeError(`bug: percentile ${percentile} is outside [0, 100]`);
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((percentile / 100) * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKET_COUNT; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.min(bucketHighestUs(index), this.maxUs) / 1000;
    }
    throw new Error('bug: histogram counts add up to less than its total');
  }

  get maxMs(): number {
    return this.total === 0 ? Number.NaN : this.maxUs / 1000;
  }

  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let index = 0; index < BUCKET_COUNT; index++) {
      if (this.counts[index]! > 0) buckets.push([index, this.counts[index]!]);
    }
    return { buckets, totalCount: this.total, minUs: this.total === 0 ? 0 : this.minUs, maxUs: this.maxUs };
  }

  static fromJSON(json: HistogramJson): LatencyHistogram {
    const histogram = new LatencyHistogram();
    let total = 0;
    for (const [index, count] of json.buckets) {
      if (!Number.isInteger(index) || index < 0 || index >= BUCKET_COUNT) throw new RangeError(`histogram bucket ${index} is out of range`);
      histogram.counts[index] = count;
      total += count;
    }
    if (total !== json.totalCount) throw new RangeError(`histogram buckets hold ${total} values but claim ${json.totalCount}`);
    histogram.total = total;
    histogram.minUs = total === 0 ? Number.POSITIVE_INFINITY : json.minUs;
    histogram.maxUs = json.maxUs;
    return histogram;
  }
}
