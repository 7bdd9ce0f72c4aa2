// The faults of a system chaos run, in a seeded order and at seeded moments spread over the
// duration: each kind once, its start drawn within its own slot of the duration. The seed fixes
// the schedule (kinds, moments, hold times, which target among the candidates); process timing
// does not, so it reproduces the faults, not the interleaving.
//
// Pure: no I/O; randomness is passed in.

import type { Random } from '../../random/seeded-random.ts';

export const SYSTEM_FAULT_KINDS = [
  'kill-backend', // SIGKILL an instance process
  'hang-backend', // SIGSTOP an instance, SIGCONT after the hold
  'kill-autoscaler-leader', // SIGKILL the member whose control plane leads the autoscaler, restart it after the hold
  'partition-member', // cut a store member (not the autoscaler's leader) off its peers, heal after the hold
  'restart-proxy', // SIGTERM a proxy, start it again
  'freeze', // set the kill switch, kill the autoscaler's leader while frozen, unfreeze after a new leader was elected
] as const;
export type SystemFaultKind = (typeof SYSTEM_FAULT_KINDS)[number];

export interface ScheduledFault {
  kind: SystemFaultKind;
  /** From the start of the fault phase. */
  atMs: number;
  holdMs: number;
  /** Picks the target among the candidates found when the fault starts. */
  pick: number;
}

/** The shortest fault phase that fits every kind (each slot needs time to inject, hold and recover). */
export const MIN_FAULT_PHASE_MS = 6 * 5_000;

export function scheduleFaults(durationMs: number, random: Random): ScheduledFault[] {
  if (durationMs < MIN_FAULT_PHASE_MS) throw new RangeError(`a system chaos run needs at least ${MIN_FAULT_PHASE_MS / 1000} s for its ${SYSTEM_FAULT_KINDS.length} faults, got ${durationMs / 1000} s`);
  const order = [...SYSTEM_FAULT_KINDS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const slotMs = Math.floor(durationMs / order.length);
  return order.map((kind, index) => ({
    kind,
    // Early in the slot, so the rest of it is left for recovery before the next fault.
    atMs: index * slotMs + random.nextInt(Math.max(1, Math.floor(slotMs / 5))),
    holdMs: 1_500 + random.nextInt(1_500),
    pick: random.nextInt(1_000_000),
  }));
}
