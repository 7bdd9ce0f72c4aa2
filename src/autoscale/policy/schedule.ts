// Scheduled capacity: a window opens at every match of its cron expression (in its time zone) and
// stays open for its duration; while open it raises the pool's minimum (before a known peak) or
// lowers its maximum (quiet hours). The effective bounds are the configuration's min and max,
// the largest scheduled minimum, the smallest scheduled maximum, and the control plane's hard
// ceiling; a scheduled minimum never lifts the pool above its effective maximum.

import { cronMatches, minuteBefore, parseCron } from './cron.ts';
import type { PolicyConfig, ScheduleConfig, WallClock } from './types.ts';

const MINUTE_MS = 60_000;

/** Longest schedule window: the window check walks back minute by minute, so it is bounded. */
export const MAX_SCHEDULE_DURATION_MS = 7 * 24 * 60 * MINUTE_MS;

/** Whether a window of this schedule is open at the given local time. */
export function scheduleActive(schedule: ScheduleConfig, localTime: WallClock | undefined): boolean {
  if (localTime === undefined) return false;
  const cron = parseCron(schedule.cron);
  const minutes = Math.ceil(Math.min(schedule.durationMs, MAX_SCHEDULE_DURATION_MS) / MINUTE_MS);
  let at = localTime;
  for (let k = 0; k < minutes; k++) {
    if (cronMatches(cron, at)) return true;
    at = minuteBefore(at);
  }
  return false;
}

export interface EffectiveBounds {
  min: number;
  max: number;
  activeSchedules: string[];
  /** Why the bounds differ from the configuration's, if they do. */
  reasons: string[];
}

export function effectiveBounds(config: PolicyConfig, localTime: Record<string, WallClock>): EffectiveBounds {
  let min = config.min;
  let max = Math.min(config.max, config.hardMaxInstances);
  const reasons: string[] = [];
  const activeSchedules: string[] = [];
  for (const schedule of config.schedules) {
    if (localTime[schedule.timeZone] === undefined) {
      reasons.push(`schedule ${schedule.name}: no local time for ${schedule.timeZone}, ignored`);
      continue;
    }
    if (!scheduleActive(schedule, localTime[schedule.timeZone])) continue;
    activeSchedules.push(schedule.name);
    if (schedule.min !== undefined && schedule.min > min) {
      min = schedule.min;
      reasons.push(`schedule ${schedule.name} raises min to ${schedule.min}`);
    }
    if (schedule.max !== undefined && schedule.max < max) {
      max = schedule.max;
      reasons.push(`schedule ${schedule.name} lowers max to ${schedule.max}`);
    }
  }
  if (min > max) {
    reasons.push(`scheduled min ${min} exceeds max ${max}: max wins`);
    min = max;
  }
  return { min, max, activeSchedules, reasons };
}
