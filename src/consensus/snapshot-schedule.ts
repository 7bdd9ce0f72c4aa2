// When a member takes its next snapshot.
//
// Every member of a cluster applies the same entries, so "a snapshot every N entries" makes all of
// them capture and encode their state at the same index, hence at the same moment. With the whole
// state encoded into each snapshot (130 MB under etcdctl's check perf l), that is a second or more
// of CPU on every member at once: on a 2-core machine running a 3-member cluster the members then
// compete for the cores exactly when a quorum is needed, and the slowest requests of the run were
// those seconds. So each member has a phase: the member of rank k of n (voters and learners, by
// ID) snapshots near the indexes k·N/n modulo N. The cluster's snapshots are spread over the
// interval, one member at a time, and a quorum always has members that are not encoding.
// Intervals stay between N/2 and 1.5·N entries, N on average, as `--snapshot-count` promises; a
// single member snapshots at the multiples of N, as before.
//
// Pure: no clock, no I/O; the simulator's members use it too.

/**
 * The member's phase in [0, every): its rank among the voters and learners (sorted by ID) times
 * every / their number. Learners count: a learner shares the machines' cores too.
 */
export function snapshotPhase(memberId: bigint, members: { voters: readonly bigint[]; learners: readonly bigint[] }, every: number): number {
  // Counted in place: a member asks after every Ready it applies.
  let count = 0;
  let rank = 0;
  for (const ids of [members.voters, members.learners]) {
    for (const id of ids) {
      count++;
      if (id < memberId) rank++;
    }
  }
  if (count === 0) return 0;
  return Math.floor((Math.min(rank, count - 1) * every) / count);
}

/**
 * The first index on the member's phase that is more than half an interval past its last
 * snapshot: the member snapshots once it has applied this index.
 */
export function nextSnapshotIndex(lastSnapshotIndex: number, every: number, phase: number): number {
  const earliest = lastSnapshotIndex + Math.floor(every / 2) + 1;
  return earliest + ((((phase - earliest) % every) + every) % every);
}
