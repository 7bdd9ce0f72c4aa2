// How traffic spreads over priority levels (Envoy's priority load): level i's health is
//   health_i = min(100, overprovisioningFactor × healthy_i / total_i × 100)
// and levels take load in order, each as much as its health allows, the rest spilling over to
// the next. With the default factor 1.4, a level keeps all its traffic while at least 1/1.4 ≈ 71 %
// of it is healthy, then hands the missing share to the next level. When the levels together are
// less than 100 % healthy, their loads are scaled up so they still add up to 100 %.

export const DEFAULT_OVERPROVISIONING_FACTOR = 1.4;

export interface LevelHealth {
  healthy: number;
  total: number;
}

/** The percentage of requests each level gets (adding up to 100, or all 0 when nothing is healthy). */
export function priorityLoads(levels: readonly LevelHealth[], overprovisioningFactor: number): number[] {
  const health = levels.map((level) => (level.total === 0 ? 0 : Math.min(100, (overprovisioningFactor * level.healthy * 100) / level.total)));
  const totalHealth = Math.min(100, health.reduce((sum, value) => sum + value, 0));
  if (totalHealth === 0) return levels.map(() => 0);
  let remaining = 100;
  return health.map((value) => {
    const load = Math.min(remaining, (value * 100) / totalHealth);
    remaining -= load;
    return load;
  });
}
