// How the concurrency limit is shared between priority classes. Each class may reserve a share of
// the limit: while it is not using that share, lower classes may not take it, so a burst of
// sheddable traffic cannot fill the slots that critical traffic will need a moment later. Every
// class may borrow everything else, including the unused reserves of the classes below it, while
// the global limit is not reached. So under rising load the lowest class hits its ceiling first,
// and critical traffic is refused only when the whole limit is in use.
//
//   a request of class c may start  <=>  inflight + held(c) < limit
//   held(c) = sum over classes h above c of max(0, floor(reservedShare(h) × limit) − inflight(h))

import { PRIORITIES, priorityRank, type PerPriority, type Priority } from './priority.ts';

/** Fractions of the limit reserved for each class against the classes below it; their sum is at most 1. */
export type ReservedShares = PerPriority<number>;

export function assertReservedShares(shares: ReservedShares): void {
  let sum = 0;
  for (const priority of PRIORITIES) {
    const share = shares[priority];
    if (!(share >= 0 && share <= 1)) throw new RangeError(`bug: reserved share of ${priority} is ${share}, outside [0, 1]`);
    sum += share;
  }
  if (sum > 1 + 1e-9) throw new RangeError(`bug: reserved shares add up to ${sum}, more than 1`);
}

/** Slots a class may not use because classes above it hold them in reserve. */
export function heldForHigherClasses(priority: Priority, inflight: PerPriority<number>, limit: number, shares: ReservedShares): number {
  let held = 0;
  for (let rank = 0; rank < priorityRank(priority); rank++) {
    const higher = PRIORITIES[rank]!;
    held += Math.max(0, Math.floor(shares[higher] * limit) - inflight[higher]);
  }
  return held;
}

export function mayStart(priority: Priority, inflight: PerPriority<number>, limit: number, shares: ReservedShares): boolean {
  if (limit === Number.POSITIVE_INFINITY) return true;
  const total = inflight.critical + inflight.default + inflight.sheddable;
  return total + heldForHigherClasses(priority, inflight, limit, shares) < limit;
}
