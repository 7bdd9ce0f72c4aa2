// TCP Vegas applied to concurrency, as Netflix's VegasLimit: the lowest RTT seen is the no-load RTT;
// the queue a sample implies is limit × (1 − noLoadRtt / rtt). A queue at or below `threshold`
// grows the limit fast (+beta), one below `alpha` grows it slowly, one above `beta` shrinks it, and
// a drop always shrinks it. alpha, beta, threshold and the step are multiples of log10(limit)
// (3, 6, 1 and 1 times), taken as a whole number and at least 1, as Netflix's defaults.
//
// Every probeMultiplier × limit samples (scaled by a random jitter in [0.5, 1)), the no-load RTT is
// reset to the current sample's RTT, so a service that became slower for good gets a new baseline.
//
// Unlike Netflix's version, a dropped sample never becomes the no-load RTT, neither as a new
// minimum nor as a probe: a request that failed fast (refused, an instant 503) would otherwise set a
// baseline the service can never meet, and every later sample would look queued.

import type { Random } from '../../random/seeded-random.ts';
import { assertBounds, clampLimit, type LimitBounds, type Limiter, type LimiterAlgorithm, type Sample } from './limiter.ts';

export interface VegasParams extends LimitBounds {
  readonly initialLimit: number;
  /** Weight of a new limit against the old one, in (0, 1]; 1 (Netflix's default) takes the new one. */
  readonly smoothing: number;
  /** The no-load RTT is probed every probeMultiplier × limit samples (× jitter); Netflix's default is 30. */
  readonly probeMultiplier: number;
}

/** log10 as a whole number, at least 1: Netflix's Log10RootFunction. */
export function log10Step(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(Math.max(1, Math.floor(limit)))));
}

export class VegasLimiter implements Limiter {
  readonly algorithm: LimiterAlgorithm = 'vegas';
  readonly sampledRttMs = Number.NaN;
  private readonly params: VegasParams;
  private readonly random: Random;
  private estimatedLimit: number;
  private noLoadRttMs = 0;
  private probeCount = 0;
  private probeJitter: number;

  constructor(params: VegasParams, random: Random) {
    assertBounds(params, params.initialLimit);
    if (!(params.smoothing > 0 && params.smoothing <= 1)) throw new RangeError(`bug: smoothing ${params.smoothing} must be in (0, 1]`);
    if (!(params.probeMultiplier > 0)) throw new RangeError(`bug: probeMultiplier ${params.probeMultiplier} must be > 0`);
    this.params = params;
    this.random = random;
    this.estimatedLimit = params.initialLimit;
    this.probeJitter = this.nextProbeJitter();
  }

  get limit(): number {
    return Math.floor(this.estimatedLimit);
  }

  /** The no-load RTT (Vegas's baseRTT); NaN before the first successful sample. */
  get minRttMs(): number {
    return this.noLoadRttMs === 0 ? Number.NaN : this.noLoadRttMs;
  }

  onSample(sample: Sample): void {
    if (!(sample.rttMs > 0)) return; // a zero RTT carries no queueing information (and would divide by zero)
    this.probeCount += 1;
    if (!sample.dropped) {
      if (this.probeDue()) {
        this.probeJitter = this.nextProbeJitter();
        this.probeCount = 0;
        this.noLoadRttMs = sample.rttMs;
        return;
      }
      if (this.noLoadRttMs === 0 || sample.rttMs < this.noLoadRttMs) {
        this.noLoadRttMs = sample.rttMs;
        return;
      }
    } else if (this.noLoadRttMs === 0) {
      // No baseline yet: a drop can still only shrink the limit.
      this.update(this.decrease());
      return;
    }
    this.update(this.nextLimit(sample));
  }

  private probeDue(): boolean {
    return this.probeJitter * this.params.probeMultiplier * Math.floor(this.estimatedLimit) <= this.probeCount;
  }

  private nextProbeJitter(): number {
    return 0.5 + this.random.nextFloat() * 0.5;
  }

  /** The new limit for a sample, or undefined when the limit stays. */
  private nextLimit(sample: Sample): number | undefined {
    if (sample.dropped) return this.decrease();
    // Only move the limit while it is in use: otherwise an idle service would drift up to maxLimit.
    if (sample.inflight * 2 < this.estimatedLimit) return undefined;
    const queueSize = Math.ceil(this.estimatedLimit * (1 - this.noLoadRttMs / sample.rttMs));
    const step = log10Step(this.estimatedLimit);
    const alpha = 3 * step;
    const beta = 6 * step;
    const threshold = step;
    if (queueSize <= threshold) return this.estimatedLimit + beta;
    if (queueSize < alpha) return this.estimatedLimit + step;
    if (queueSize > beta) return this.decrease();
    return undefined;
  }

  private decrease(): number {
    return this.estimatedLimit - log10Step(this.estimatedLimit);
  }

  private update(newLimit: number | undefined): void {
    if (newLimit === undefined) return;
    const bounded = clampLimit(newLimit, this.params);
    this.estimatedLimit = (1 - this.params.smoothing) * this.estimatedLimit + this.params.smoothing * bounded;
  }
}
