// The faults of a system chaos run, in a seeded order and at seeded moments spread over the
// duration: every kind once per round (a round per ROUND_MS of the duration, at least one), each
// fault's start drawn early within its own slot. The seed fixes the schedule (kinds, moments, hold
// times, which target among the candidates); process timing does not, so it reproduces the
// faults, not the interleaving.
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

/** A longer run repeats every kind once per this much of its duration. */
export const ROUND_MS = 60_000;

export function scheduleFaults(durationMs: number, random: Random): ScheduledFault[] {
  if (durationMs < MIN_FAULT_PHASE_MS) throw new RangeError(`a system chaos run needs at least ${MIN_FAULT_PHASE_MS / 1000} s for its ${SYSTEM_FAULT_KINDS.length} faults, got ${durationMs / 1000} s`);
  const rounds = Math.max(1, Math.floor(durationMs / ROUND_MS));
  const order = Array.from({ length: rounds }, () => shuffled(SYSTEM_FAULT_KINDS, random)).flat();
  const slotMs = Math.floor(durationMs / order.length);
  return order.map((kind, index) => ({
    kind,
    // Early in the slot, so the rest of it is left for recovery before the next fault.
    atMs: index * slotMs + random.nextInt(Math.max(1, Math.floor(slotMs / 5))),
    holdMs: 1_500 + random.nextInt(1_500),
    pick: random.nextInt(1_000_000),
  }));
}

function shuffled<T>(items: readonly T[], random: Random): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
