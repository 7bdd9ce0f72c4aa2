// Peak-sensitive exponentially weighted moving average of latency, as in Finagle's and Linkerd's
// "peak EWMA" balancers: a slower observation than the estimate replaces it at once (so a backend
// that turns slow is avoided immediately), a faster one is blended in with a weight that depends on
// the time since the last observation (so the estimate recovers over `decayMs`, whatever the request
// rate). Reading the estimate also decays it towards zero, so a backend that was slow long ago and
// has not been tried since gets a chance again.

export const DEFAULT_EWMA_DECAY_MS = 10_000;

export class PeakEwma {
  private estimateMs = 0;
  private stampMs: number | undefined;

  readonly decayMs: number;

  constructor(decayMs: number = DEFAULT_EWMA_DECAY_MS) {
    this.decayMs = decayMs;
    if (!(decayMs > 0)) throw new RangeError(`bug: EWMA decay must be positive, got ${decayMs}`);
  }

  /** Records one completed request's latency. */
  observe(latencyMs: number, nowMs: number): void {
    const elapsedMs = this.stampMs === undefined ? 0 : Math.max(0, nowMs - this.stampMs);
    const keep = Math.exp(-elapsedMs / this.decayMs);
    this.estimateMs = latencyMs > this.estimateMs ? latencyMs : this.estimateMs * keep + latencyMs * (1 - keep);
    this.stampMs = nowMs;
  }

  /** The estimate now, decayed for the time since the last observation; 0 before any observation. */
  estimate(nowMs: number): number {
    return this.decayedTo(nowMs);
  }

  private decayedTo(nowMs: number): number {
    if (this.stampMs === undefined) return 0;
    const elapsedMs = Math.max(0, nowMs - this.stampMs);
    return this.estimateMs * Math.exp(-elapsedMs / this.decayMs);
  }
}
