// Envoy's adaptive-concurrency gradient controller, driven by samples instead of timers.
//
// 1. minRTT window: the limit is pinned to minLimit, so the backend runs nearly unqueued, and the
//    `percentile` of the next minRttRequestCount successful samples becomes minRTT. The limit then
//    returns to its value before the window. The window comes back every minRttIntervalMs plus a
//    random jitter of up to minRttJitter × minRttIntervalMs (so that many proxies do not pin their
//    limits at the same moment), and early when the limit has been set to minLimit in
//    MIN_LIMIT_WINDOWS_BEFORE_REMEASURE consecutive sample windows (minRTT may be stale).
// 2. Sample windows of sampleWindowMs: the `percentile` of the window's successful samples is
//    sampledRTT, and
//        gradient = clamp((minRTT × (1 + buffer)) / sampledRTT, 0.5, 2)
//        limit    = floor(gradient × limit + sqrt(gradient × limit)), clamped to [minLimit, maxLimit]
//    The square root is Envoy's headroom: it keeps probing upwards while latency stays near minRTT.
//
// Where this differs from Envoy, to avoid pitfalls known from Netflix's Gradient2:
// * Drops lower the limit. A window with drops sets limit = floor(limit × min(gradient,
//   dropBackoffRatio)), without headroom; a window of drops only uses dropBackoffRatio. (Gradient2
//   ignores drops, so a backend that times out every request keeps its limit.)
// * Identical timeout latencies cannot push the limit to maxLimit: timeouts are drops, and drops
//   never raise the limit. (Gradient2 sees zero RTT variance and grows to its maximum.)
// * Dropped requests' RTTs never enter minRTT or sampledRTT: a request that failed fast would
//   drag the baseline down and make every healthy sample look queued.
// * A limit that is not in use (fewer than half of it in flight in the window) may fall but not
//   rise, as Netflix's algorithms do, so an idle service does not drift up to maxLimit and meet
//   its next spike with no limit at all.
// * minRTT follows sampledRTT down: when a window's sampledRTT (of at least
//   MIN_SAMPLES_TO_LOWER_MIN_RTT successes) is below minRTT, the minRTT window was disturbed (a
//   start-up, a connection storm, a pause), because nothing is faster than the backend at low
//   concurrency; minRTT takes the sampled value. Envoy corrects a minRTT that is too low (five
//   windows at minLimit) but keeps one that is too high until the next window, a minute later.
// Samples of requests that started before the current minRTT window began are ignored, as Envoy
// does: they were admitted under the old, higher limit.

import type { Random } from '../../random/seeded-random.ts';
import { assertBounds, clampLimit, type LimitBounds, type Limiter, type LimiterAlgorithm, type Sample } from './limiter.ts';
import { RttReservoir } from './rtt-reservoir.ts';

/** Envoy's clamp on the gradient: the limit at most halves or doubles (before headroom) per window. */
export const MIN_GRADIENT = 0.5;
export const MAX_GRADIENT = 2;
/** Envoy re-measures minRTT after this many consecutive sample windows that set the limit to its minimum. */
export const MIN_LIMIT_WINDOWS_BEFORE_REMEASURE = 5;
/** A window needs this many successful samples for its sampledRTT to lower minRTT (a few fast ones prove nothing). */
export const MIN_SAMPLES_TO_LOWER_MIN_RTT = 10;

export interface GradientParams extends LimitBounds {
  /** The limit after the first minRTT window (Envoy starts from minLimit). */
  readonly initialLimit: number;
  /** Length of a sample window (Envoy's concurrency_update_interval). */
  readonly sampleWindowMs: number;
  /** The percentile, in (0, 100], that summarizes a window's RTTs and the minRTT samples. */
  readonly percentile: number;
  /** minRTT is padded by this fraction of itself before it is compared (Envoy's buffer, 25 %). */
  readonly buffer: number;
  /** Time between minRTT windows, before jitter. */
  readonly minRttIntervalMs: number;
  /** Random extra delay of a minRTT window, as a fraction of minRttIntervalMs, in [0, 1]. */
  readonly minRttJitter: number;
  /** Successful samples that make a minRTT measurement. */
  readonly minRttRequestCount: number;
  /** The most a window with drops keeps of the limit, in (0, 1). */
  readonly dropBackoffRatio: number;
  /** RTTs kept per window (a uniform subset beyond it), to bound memory at any request rate. */
  readonly maxSamplesPerWindow: number;
}

type Phase = 'measuring-min-rtt' | 'sampling';

export class GradientLimiter implements Limiter {
  readonly algorithm: LimiterAlgorithm = 'gradient';
  private readonly params: GradientParams;
  private readonly random: Random;
  private phase: Phase = 'measuring-min-rtt';
  /** The limit outside minRTT windows; during one, the value to return to. */
  private currentLimit: number;
  /** Samples of requests that started before this are ignored. */
  private epochMs: number;
  private nextMinRttAtMs = Number.POSITIVE_INFINITY;
  private windowStartMs: number;
  private readonly windowRtts: RttReservoir;
  private windowDrops = 0;
  private windowMaxInflight = 0;
  private readonly minRttSamples: RttReservoir;
  private windowsAtMinLimit = 0;
  private lastMinRttMs = Number.NaN;
  private lastSampledRttMs = Number.NaN;
  private lastGradient = Number.NaN;

  /** Starts in a minRTT window at `nowMs`, as Envoy does. */
  constructor(params: GradientParams, random: Random, nowMs: number) {
    assertGradientParams(params);
    this.params = params;
    this.random = random;
    this.currentLimit = params.initialLimit;
    this.epochMs = nowMs;
    this.windowStartMs = nowMs;
    this.windowRtts = new RttReservoir(params.maxSamplesPerWindow, random);
    this.minRttSamples = new RttReservoir(Math.max(params.minRttRequestCount, 1), random);
  }

  get limit(): number {
    return this.phase === 'measuring-min-rtt' ? this.params.minLimit : this.currentLimit;
  }

  get minRttMs(): number {
    return this.lastMinRttMs;
  }

  get sampledRttMs(): number {
    return this.lastSampledRttMs;
  }

  /** The last gradient computed (NaN before the first sample window closes). */
  get gradient(): number {
    return this.lastGradient;
  }

  get measuringMinRtt(): boolean {
    return this.phase === 'measuring-min-rtt';
  }

  onSample(sample: Sample): void {
    if (sample.startMs < this.epochMs) return;
    const nowMs = sample.startMs + sample.rttMs;
    if (this.phase === 'measuring-min-rtt') {
      this.addMinRttSample(sample, nowMs);
      return;
    }
    if (nowMs >= this.windowStartMs + this.params.sampleWindowMs) this.closeWindow(nowMs);
    if (!this.measuringMinRtt && nowMs >= this.nextMinRttAtMs) this.enterMinRttWindow(nowMs);
    if (this.measuringMinRtt) return; // this sample started before the new minRTT window
    if (sample.dropped) this.windowDrops += 1;
    else this.windowRtts.add(sample.rttMs);
    this.windowMaxInflight = Math.max(this.windowMaxInflight, sample.inflight);
  }

  private addMinRttSample(sample: Sample, nowMs: number): void {
    if (sample.dropped) return;
    this.minRttSamples.add(sample.rttMs);
    if (this.minRttSamples.count < this.params.minRttRequestCount) return;
    this.lastMinRttMs = this.minRttSamples.percentile(this.params.percentile);
    this.minRttSamples.clear();
    this.phase = 'sampling';
    this.startWindow(nowMs);
    this.nextMinRttAtMs = nowMs + this.params.minRttIntervalMs + this.jitterMs();
  }

  private jitterMs(): number {
    const rangeMs = Math.ceil(this.params.minRttIntervalMs * this.params.minRttJitter);
    return rangeMs === 0 ? 0 : this.random.nextInt(rangeMs);
  }

  private enterMinRttWindow(nowMs: number): void {
    this.phase = 'measuring-min-rtt';
    this.epochMs = nowMs;
    this.windowsAtMinLimit = 0;
    this.minRttSamples.clear();
    this.startWindow(nowMs);
  }

  private startWindow(nowMs: number): void {
    this.windowStartMs = nowMs;
    this.windowRtts.clear();
    this.windowDrops = 0;
    this.windowMaxInflight = 0;
  }

  private closeWindow(nowMs: number): void {
    const samples = this.windowRtts.count + this.windowDrops;
    const newLimit = samples === 0 ? undefined : this.limitAfterWindow();
    this.startWindow(nowMs);
    if (newLimit === undefined) return;
    const minLimit = this.params.minLimit;
    this.windowsAtMinLimit = this.currentLimit === minLimit && newLimit === minLimit ? this.windowsAtMinLimit + 1 : 0;
    this.currentLimit = newLimit;
    if (this.windowsAtMinLimit >= MIN_LIMIT_WINDOWS_BEFORE_REMEASURE) this.enterMinRttWindow(nowMs);
  }

  private limitAfterWindow(): number {
    const limit = this.currentLimit;
    if (this.windowRtts.count === 0) return clampLimit(Math.floor(limit * this.params.dropBackoffRatio), this.params);
    this.lastSampledRttMs = this.windowRtts.percentile(this.params.percentile);
    if (this.windowRtts.count >= MIN_SAMPLES_TO_LOWER_MIN_RTT && this.lastSampledRttMs < this.lastMinRttMs) this.lastMinRttMs = this.lastSampledRttMs;
    const rawGradient = (this.lastMinRttMs * (1 + this.params.buffer)) / this.lastSampledRttMs;
    const gradient = Math.min(MAX_GRADIENT, Math.max(MIN_GRADIENT, rawGradient));
    this.lastGradient = gradient;
    if (this.windowDrops > 0) return clampLimit(Math.floor(limit * Math.min(gradient, this.params.dropBackoffRatio)), this.params);
    const scaled = limit * gradient;
    const next = clampLimit(Math.floor(scaled + Math.sqrt(scaled)), this.params);
    const inUse = this.windowMaxInflight * 2 >= limit;
    return inUse ? next : Math.min(limit, next);
  }
}

function assertGradientParams(params: GradientParams): void {
  assertBounds(params, params.initialLimit);
  const positive: (keyof GradientParams)[] = ['sampleWindowMs', 'minRttIntervalMs', 'minRttRequestCount', 'maxSamplesPerWindow'];
  for (const key of positive) {
    if (!(params[key] > 0)) throw new RangeError(`bug: gradient ${key} ${params[key]} must be > 0`);
  }
  if (!(params.percentile > 0 && params.percentile <= 100)) throw new RangeError(`bug: percentile ${params.percentile} is outside (0, 100]`);
  if (!(params.buffer >= 0)) throw new RangeError(`bug: buffer ${params.buffer} must be >= 0`);
  if (!(params.minRttJitter >= 0 && params.minRttJitter <= 1)) throw new RangeError(`bug: minRttJitter ${params.minRttJitter} is outside [0, 1]`);
  if (!(params.dropBackoffRatio > 0 && params.dropBackoffRatio < 1)) throw new RangeError(`bug: dropBackoffRatio ${params.dropBackoffRatio} must be in (0, 1)`);
}
