// The memory a decision leaves assumes its actions happen. The controller executes them in order
// and may miss some or stop part-way: the kill switch was set between two actions, the leader was deposed, a
// launch failed. settleMemory() makes the memory say what happened: a scaling that did not happen
// must not count against the rate limits or cool down the pool, and a replacement that was not
// launched is still owed.

import type { Action, Decision, PolicyMemory } from './types.ts';

function count(actions: readonly Action[], kind: Action['kind'], purpose: Action['purpose']): number {
  return actions.filter((action) => action.kind === kind && action.purpose === purpose).length;
}

/** The memory after the decision's actions except `missed` (not carried out) were. */
export function settleMemory(memory: PolicyMemory, decision: Decision, missed: readonly Action[]): PolicyMemory {
  if (missed.length === 0) return memory;
  const next: PolicyMemory = { ...memory };
  const scaledOutMissed = count(missed, 'launch', 'scale');
  const scaledInMissed = count(missed, 'drain', 'scale');
  next.scalings = memory.scalings
    .map((scaling) => {
      if (scaling.atMs !== decision.atMs) return scaling;
      return { ...scaling, count: scaling.count - (scaling.direction === 'out' ? scaledOutMissed : scaledInMissed) };
    })
    .filter((scaling) => scaling.count > 0);
  // A replacement not launched is still owed; a drain for a replacement that did not happen owes nothing.
  next.owedLaunches = Math.max(0, memory.owedLaunches + count(missed, 'launch', 'replace') - count(missed, 'drain', 'replace'));
  if (memory.refresh !== undefined) {
    // The surge counts launched new instances whose outdated counterparts must go; retirements not done are still due.
    next.refresh = { ...memory.refresh, surge: Math.max(0, memory.refresh.surge - count(missed, 'launch', 'refresh') + count(missed, 'drain', 'refresh')) };
  }
  return next;
}
