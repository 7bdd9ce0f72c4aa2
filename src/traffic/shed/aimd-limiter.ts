// Additive increase, multiplicative decrease, as Netflix's AIMDLimit: every dropped request
// multiplies the limit by backoffRatio (rounded down); every other request adds one, but only while
// the limit is in use (at least half of it in flight when the request started), so an idle service
// does not drift up to maxLimit. It reacts to drops only, never to latency: timeouts must be
// reported as drops (or made drops by dropLatencyMs) for it to back off.

import { assertBounds, clampLimit, type LimitBounds, type Limiter, type LimiterAlgorithm, type Sample } from './limiter.ts';

export interface AimdParams extends LimitBounds {
  readonly initialLimit: number;
  /** The factor applied to the limit on each drop, in (0, 1). Netflix's default is 0.9. */
  readonly backoffRatio: number;
}

export class AimdLimiter implements Limiter {
  readonly algorithm: LimiterAlgorithm = 'aimd';
  readonly minRttMs = Number.NaN;
  readonly sampledRttMs = Number.NaN;
  private readonly params: AimdParams;
  private current: number;

  constructor(params: AimdParams) {
    this.params = params;
    assertBounds(params, params.initialLimit);
    if (!(params.backoffRatio > 0 && params.backoffRatio < 1)) throw new RangeError(`bug: backoffRatio ${params.backoffRatio} must be in (0, 1)`);
    this.current = params.initialLimit;
  }

  get limit(): number {
    return this.current;
  }

  onSample(sample: Sample): void {
    if (sample.dropped) this.current = Math.floor(this.current * this.params.backoffRatio);
    else if (sample.inflight * 2 >= this.current) this.current += 1;
    this.current = clampLimit(this.current, this.params);
  }
}
