// Passive outlier detection from real traffic (Envoy's outlier_detection), per backend:
// * consecutive 5xx responses;
// * consecutive gateway failures: 502, 503, 504, and requests that never got a response
//   (connection refused, connect timeout, reset);
// * success-rate outliers: every interval, among backends that served at least `requestVolume`
//   requests (and only when at least `minimumHosts` did), one whose success rate is below
//   mean − stdevFactor × stdev of the others' is an outlier.
// An ejection lasts baseEjectionMs × (number of times ejected), capped at maxEjectionMs; the count
// decays by one for each interval the backend then stays out of trouble. A 503 that a shedding
// backend sent on purpose (marked with x-concord-shed) counts neither way: ejecting a backend for
// shedding would push its load onto the others and cascade.

export interface OutlierOptions {
  /** Consecutive 5xx that eject a backend (0 turns the detector off). */
  consecutive5xx: number;
  /** Consecutive gateway failures (502/503/504, refused, reset, timed out) that eject (0: off). */
  consecutiveGatewayFailure: number;
  /** How often success rates are compared and ejection counts decay. */
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** At most this percentage of the pool's backends is ejected at once; the bound is never exceeded. */
  maxEjectionPercent: number;
  /** Success-rate detection: requests a backend needs in an interval to be judged (0 turns it off). */
  successRateRequestVolume: number;
  successRateMinimumHosts: number;
  /** Outlier below mean − stdevFactor × stdev (Envoy's 1900 / 1000). */
  successRateStdevFactor: number;
}

/** How one request to a backend ended, as the proxy saw it. */
export type TrafficOutcome =
  | { kind: 'response'; status: number; shed: boolean }
  | { kind: 'failure'; reason: 'connect' | 'timeout' | 'reset' };

export type OutlierTrigger = 'consecutive-5xx' | 'consecutive-gateway-failure';

/** One backend's passive counters. */
export class OutlierCounters {
  consecutive5xx = 0;
  consecutiveGatewayFailures = 0;
  intervalRequests = 0;
  intervalSuccesses = 0;
  /** Times ejected; multiplies the ejection time. */
  ejections = 0;
  ejectedUntilMs: number | undefined;

  /** Counts one outcome; returns the detector it trips, if any. */
  record(outcome: TrafficOutcome, options: OutlierOptions): OutlierTrigger | undefined {
    if (outcome.kind === 'response' && outcome.shed) return undefined;
    const serverError = outcome.kind === 'failure' || outcome.status >= 500;
    const gatewayFailure = outcome.kind === 'failure' || outcome.status === 502 || outcome.status === 503 || outcome.status === 504;
    this.intervalRequests += 1;
    if (!serverError) this.intervalSuccesses += 1;
    this.consecutive5xx = serverError ? this.consecutive5xx + 1 : 0;
    this.consecutiveGatewayFailures = gatewayFailure ? this.consecutiveGatewayFailures + 1 : 0;
    if (options.consecutive5xx > 0 && this.consecutive5xx >= options.consecutive5xx) return 'consecutive-5xx';
    if (options.consecutiveGatewayFailure > 0 && this.consecutiveGatewayFailures >= options.consecutiveGatewayFailure) return 'consecutive-gateway-failure';
    return undefined;
  }

  resetConsecutive(): void {
    this.consecutive5xx = 0;
    this.consecutiveGatewayFailures = 0;
  }

  ejectionMs(options: OutlierOptions): number {
    return Math.min(options.maxEjectionMs, options.baseEjectionMs * Math.max(1, this.ejections));
  }
}

/** Backends (by index into `rates`) whose success rate makes them outliers this interval. */
export function successRateOutliers(rates: readonly { requests: number; successes: number }[], options: OutlierOptions): number[] {
  if (options.successRateRequestVolume === 0) return [];
  const judged = rates.flatMap((rate, index) => (rate.requests >= options.successRateRequestVolume ? [{ index, rate: rate.successes / rate.requests }] : []));
  if (judged.length < options.successRateMinimumHosts || judged.length === 0) return [];
  const mean = judged.reduce((sum, entry) => sum + entry.rate, 0) / judged.length;
  const variance = judged.reduce((sum, entry) => sum + (entry.rate - mean) ** 2, 0) / judged.length;
  const threshold = mean - options.successRateStdevFactor * Math.sqrt(variance);
  return judged.filter((entry) => entry.rate < threshold).map((entry) => entry.index);
}

/** How many backends of a pool of `poolSize` may be ejected at once: floor, so the percentage really holds. */
export function maxEjectedBackends(poolSize: number, maxEjectionPercent: number): number {
  return Math.floor((poolSize * maxEjectionPercent) / 100);
}
