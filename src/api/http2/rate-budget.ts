// A token bucket for what a client may make the server do cheaply and often, like resetting its
// own streams (HTTP/2's "rapid reset", CVE-2023-44487) or sending SETTINGS: a burst, then a steady
// rate. A connection that spends past it is cut off (GOAWAY ENHANCE_YOUR_CALM), as nghttp2 does.
// The clock is passed in.

export interface RateBudgetOptions {
  /** Spent at once from full. */
  burst: number;
  /** Given back per second, up to the burst. */
  perSecond: number;
  nowMs: () => number;
}

export class RateBudget {
  private readonly options: RateBudgetOptions;
  private tokens: number;
  private lastMs: number;

  constructor(options: RateBudgetOptions) {
    this.options = options;
    this.tokens = options.burst;
    this.lastMs = options.nowMs();
  }

  /** Spends one; false if the budget is spent. */
  take(): boolean {
    const nowMs = this.options.nowMs();
    const elapsedMs = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.options.burst, this.tokens + (elapsedMs * this.options.perSecond) / 1_000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
