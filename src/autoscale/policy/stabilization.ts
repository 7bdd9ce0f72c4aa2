// The stabilization window (HPA's stabilizeRecommendationWithBehaviors): every period's
// recommendation is remembered; a scale-in goes no lower than the highest recommendation of the
// scale-in window, a scale-out no higher than the lowest of the scale-out window. So a dip in load
// must last the whole scale-in window before instances go, while a rise acts at once (scale-out
// window 0). The pool's current size stays put when it lies between the two.

import type { RecordedRecommendation } from './types.ts';

export interface StabilizationWindows {
  scaleOutMs: number;
  scaleInMs: number;
}

/** The stabilized count, given the history (older recommendations) and this period's recommendation. */
export function stabilize(
  history: readonly RecordedRecommendation[],
  nowMs: number,
  recommendation: number,
  current: number,
  windows: StabilizationWindows,
): number {
  let lowestInScaleOutWindow = recommendation;
  let highestInScaleInWindow = recommendation;
  for (const recorded of history) {
    if (recorded.atMs > nowMs - windows.scaleOutMs) lowestInScaleOutWindow = Math.min(lowestInScaleOutWindow, recorded.count);
    if (recorded.atMs > nowMs - windows.scaleInMs) highestInScaleInWindow = Math.max(highestInScaleInWindow, recorded.count);
  }
  let stabilized = current;
  if (stabilized < lowestInScaleOutWindow) stabilized = lowestInScaleOutWindow;
  if (stabilized > highestInScaleInWindow) stabilized = highestInScaleInWindow;
  return stabilized;
}

/** The history with this period's recommendation added and entries older than both windows dropped. */
export function rememberRecommendation(
  history: readonly RecordedRecommendation[],
  nowMs: number,
  count: number,
  windows: StabilizationWindows,
): RecordedRecommendation[] {
  const keepMs = Math.max(windows.scaleOutMs, windows.scaleInMs);
  return [...history.filter((recorded) => recorded.atMs > nowMs - keepMs), { atMs: nowMs, count }];
}
