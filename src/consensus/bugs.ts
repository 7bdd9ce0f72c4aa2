// Deliberate defects that the simulator can switch on, to prove that its external checks
// (invariants and the linearizability checker) catch real consensus bugs. A checker that cannot
// fail proves nothing. Production code never enables them: the server has no flag for them.

export const INJECTABLE_BUGS = [
  /** Grant a vote in a term even after voting for another candidate in that term. */
  'double-vote',
  /** Commit an entry of an earlier term by counting replicas (the Figure 8 hazard). */
  'commit-earlier-term',
  /** Send a Ready's messages before its entries and hard state are persisted. */
  'send-before-persist',
  /** Hand entries to the state machine before they are committed. */
  'apply-before-commit',
  /** Accept an AppendEntries from a leader of an older term. */
  'accept-stale-term-append',
  /** Answer a read-index request without confirming leadership with a quorum. */
  'read-without-quorum',
  /**
   * A leader counts its new entries toward the quorum as it appends them, before they are persisted,
   * while it sends them before its own write completes: an entry can commit on fewer than a majority
   * of disks.
   */
  'leader-self-ack-before-persist',
] as const;

export type InjectableBug = (typeof INJECTABLE_BUGS)[number];

export function isInjectableBug(name: string): name is InjectableBug {
  return (INJECTABLE_BUGS as readonly string[]).includes(name);
}
