// How one instance behaves under load, as a multi-server queue: `workers` requests are served at
// once, each taking `serviceTimeMs`; more wait. The waiting time uses Sakasegawa's approximation
// for an M/M/c queue, Wq = s * rho^(sqrt(2(c+1)) - 1) / (c (1 - rho)), whose probability of
// waiting at all is rho^(sqrt(2(c+1)) - 1), with exponentially distributed waits. So latency is
// flat at low utilization and climbs steeply near saturation, and in-flight requests (Little's
// law: arrival rate x time in system) rise with it.
//
// A shedder in front of each instance admits requests only while in-flight stays under
// `maxInflight`, as Concord's proxy does; that caps the utilization below 1, and the rest of the
// offered load is shed (503). A balancer that spreads load in proportion to capacity gives every
// serving instance the same utilization, so one utilization describes the pool.

export interface InstanceModel {
  /** Requests served concurrently. */
  workers: number;
  /** Time to serve one request with a warm instance and a healthy dependency. */
  serviceTimeMs: number;
  /** The shedder's limit on in-flight requests per instance. */
  maxInflight: number;
}

function waitExponent(workers: number): number {
  return Math.sqrt(2 * (workers + 1)) - 1;
}

/** Probability that a request waits for a worker, at this utilization. */
export function waitProbability(utilization: number, workers: number): number {
  return Math.pow(utilization, waitExponent(workers));
}

/** Mean time in system over service time: 1 + Wq / s. */
export function latencyFactor(utilization: number, workers: number): number {
  if (utilization >= 1) return Number.POSITIVE_INFINITY;
  return 1 + waitProbability(utilization, workers) / (workers * (1 - utilization));
}

/** In-flight requests per instance at this utilization (independent of the service time). */
export function inflightAt(utilization: number, workers: number): number {
  return workers * utilization * latencyFactor(utilization, workers);
}

/** The highest utilization the shedder admits: in-flight reaches maxInflight there. */
export function admissionLimit(model: Pick<InstanceModel, 'workers' | 'maxInflight'>): number {
  let low = 0;
  let high = 1;
  for (let i = 0; i < 50; i++) {
    const middle = (low + high) / 2;
    if (inflightAt(middle, model.workers) <= model.maxInflight) low = middle;
    else high = middle;
  }
  return low;
}

/** Share of requests slower than sloMs at an instance whose service time is serviceMs. */
export function slowFraction(utilization: number, workers: number, serviceMs: number, sloMs: number): number {
  if (sloMs <= serviceMs) return 1;
  const drainRatePerMs = (workers / serviceMs) * (1 - utilization);
  return Math.min(1, waitProbability(utilization, workers) * Math.exp(-drainRatePerMs * (sloMs - serviceMs)));
}

/** A latency quantile (0.5 for the median, 0.95 for p95) of time in system, in milliseconds. */
export function latencyQuantileMs(utilization: number, workers: number, serviceMs: number, quantile: number): number {
  const waiting = waitProbability(utilization, workers);
  const tail = 1 - quantile;
  if (waiting <= tail) return serviceMs;
  const drainRatePerMs = (workers / serviceMs) * (1 - utilization);
  return serviceMs + Math.log(waiting / tail) / drainRatePerMs;
}
