// The 'follower-lease-expiry' defect (`concord server --bug follower-lease-expiry`, for proving that
// `concord chaos` catches it): a member that does not lead expires leases by its own clock and
// deletes their keys in its own state machine, outside the log. Correct members never do this:
// expiry is decided by the leader and replicated as a revoke (lease-keeper.ts). With the defect,
// members diverge: their revisions and key sets differ, which the chaos checks must notice.

import type { KvStateMachine } from '../kv/state-machine.ts';

const CHECK_INTERVAL_MS = 200;

export interface FollowerLeaseExpiryBugOptions {
  machine(): KvStateMachine;
  isLeader(): boolean;
  nowMs(): number;
}

/** Starts the defect; returns the function that stops it. */
export function startFollowerLeaseExpiryBug(options: FollowerLeaseExpiryBugOptions): () => void {
  const firstSeenMs = new Map<bigint, number>();
  const timer = setInterval(() => {
    const machine = options.machine();
    const now = options.nowMs();
    const leases = machine.leaseTtls();
    for (const { id, ttlSeconds } of leases) {
      if (!firstSeenMs.has(id)) firstSeenMs.set(id, now);
      if (options.isLeader() || now - firstSeenMs.get(id)! < ttlSeconds * 1000) continue;
      revokeOutsideTheLog(machine, id);
      firstSeenMs.delete(id);
    }
    const live = new Set(leases.map((lease) => lease.id));
    for (const id of firstSeenMs.keys()) if (!live.has(id)) firstSeenMs.delete(id);
  }, CHECK_INTERVAL_MS);
  return () => clearInterval(timer);
}

/**
 * Applies a revoke as if it were the next log entry, then puts the applied index back so the real
 * next entry still applies: exactly the divergence a member-local decision causes.
 */
function revokeOutsideTheLog(machine: KvStateMachine, id: bigint): void {
  const applied = machine.appliedIndex;
  machine.apply({ type: 'leaseRevoke', request: { id } }, applied + 1);
  (machine as unknown as { applied: number }).applied = applied;
}
