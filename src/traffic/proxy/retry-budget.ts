// The retry budget (Envoy's retry_budget): retries in flight may be at most budgetPercent of the
// requests in flight, or minRetryConcurrency, whichever is larger. Under a broad failure, retries
// are capped at a fraction of real traffic instead of multiplying it.

export interface RetryBudgetOptions {
  budgetPercent: number;
  minRetryConcurrency: number;
}

export class RetryBudget {
  private retriesInFlight = 0;
  private readonly options: RetryBudgetOptions;

  constructor(options: RetryBudgetOptions) {
    this.options = options;
  }

  /** Takes a retry slot if the budget allows one, given the requests in flight now. */
  tryAcquire(activeRequests: number): boolean {
    const allowed = Math.max(this.options.minRetryConcurrency, (this.options.budgetPercent / 100) * activeRequests);
    if (this.retriesInFlight + 1 > allowed) return false;
    this.retriesInFlight += 1;
    return true;
  }

  release(): void {
    if (this.retriesInFlight <= 0) throw new Error('bug: retry budget released more often than acquired');
    this.retriesInFlight -= 1;
  }

  get inFlight(): number {
    return this.retriesInFlight;
  }
}
