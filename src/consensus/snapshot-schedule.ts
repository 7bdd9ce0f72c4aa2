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
// However large the state, encoding it must cost each write a bounded share: the interval grows
// with the state (snapshotInterval), so that the entries between two snapshots add up to at least
// half the size of the last one (as Redis rewrites its append-only file once it has grown by a set
// share). With a fixed N, a store of a few hundred MB re-encoded all of it every N writes: under a
// steady write load at 20,000 writes/s, snapshots took a tenth of the member's main thread.
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

/** The entries between two snapshots add up to at least this share of the last snapshot's size. */
export const SNAPSHOT_GROWTH_RATIO = 0.5;

/**
 * Entries between snapshots: `every` (--snapshot-count), or more when the state is large, so that
 * the entries since the last snapshot weigh at least SNAPSHOT_GROWTH_RATIO of it, given the mean
 * size of the entries applied so far (`meanEntryBytes`; 0 when nothing was applied yet).
 */
export function snapshotInterval(every: number, lastSnapshotBytes: number, meanEntryBytes: number): number {
  if (meanEntryBytes <= 0) return every;
  return Math.max(every, Math.ceil((lastSnapshotBytes * SNAPSHOT_GROWTH_RATIO) / meanEntryBytes));
}
