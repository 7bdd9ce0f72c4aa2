// The proxy's two clocks. Balancing measures durations (latency estimates, the age of requests in
// flight) on a monotonic clock with small numbers, so sums over thousands of in-flight requests stay
// exact. Health events carry wall-clock times so they can be compared across machines.

/** Monotonic milliseconds since the process started. */
export const monotonicMs = (): number => performance.now();

/** Milliseconds since the epoch that never go backwards within the process. */
export const wallMs = (): number => performance.timeOrigin + performance.now();
