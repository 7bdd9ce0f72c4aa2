// Slow start (Envoy's slow_start_config): a backend that has just become healthy gets a fraction
// of its weight that grows over a window, so a cold server (empty caches, unjitted code, a
// connection pool still filling) is not handed its full share at once:
//   factor = max(minWeightPercent / 100, (elapsed / windowMs) ^ (1 / aggression))
// aggression 1 ramps linearly; above 1, traffic rises faster early; below 1, later.

export interface SlowStartOptions {
  /** Length of the ramp; 0 turns slow start off. */
  windowMs: number;
  /** Shape of the ramp (> 0): 1 is linear. */
  aggression: number;
  /** The weight a backend starts at, as a percentage of its configured weight (1-100). */
  minWeightPercent: number;
}

export const DEFAULT_SLOW_START: SlowStartOptions = { windowMs: 30_000, aggression: 1, minWeightPercent: 10 };

/** The share of its weight (0 < factor ≤ 1) a backend gets `nowMs`, having become healthy at `sinceMs`. */
export function slowStartFactor(options: SlowStartOptions, sinceMs: number | undefined, nowMs: number): number {
  if (sinceMs === undefined || options.windowMs === 0) return 1;
  const elapsedMs = nowMs - sinceMs;
  if (elapsedMs >= options.windowMs) return 1;
  const timeFactor = Math.max(elapsedMs, 1) / options.windowMs;
  return Math.max(options.minWeightPercent / 100, timeFactor ** (1 / options.aggression));
}
