// Raft's safety properties (Figure 3 of the paper), checked from outside the members: the checker
// sees what each member persists, applies and claims, never the core's internal assertions. Each
// check runs as the simulator observes the event, so a violation is reported at the step that
// caused it.

import type { MemoryStorage } from '../consensus/storage.ts';
import type { Entry, NodeId } from '../consensus/types.ts';

export type SafetyProperty =
  | 'election-safety' // at most one leader per term
  | 'log-matching' // same index and term => same entry and same history before it
  | 'leader-completeness' // a new leader has every committed entry
  | 'state-machine-safety' // no two members apply different commands at one index
  | 'committed-entry-lost' // a committed entry survives every crash: no member without it can win
  | 'at-most-once' // a client command takes effect once, however often it was proposed
  | 'linearizability'
  | 'liveness';

export interface Violation {
  property: SafetyProperty;
  tick: number;
  detail: string;
}

/** A member's log as far as elections care: its last entry's index and term. */
export interface LogTip {
  lastIndex: number;
  lastTerm: number;
}

function fingerprint(data: Uint8Array): string {
  // FNV-1a over the bytes plus the length: cheap, and collisions only weaken (never fake) a check.
  let hash = 0x811c9dc5;
  for (const byte of data) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return `${data.byteLength}:${hash.toString(16)}`;
}

function entryFingerprint(entry: Entry): string {
  return `${entry.type}/${fingerprint(entry.data)}`;
}

/** Whether a candidate with log tip `candidate` would get a vote from a voter with tip `voter` (§5.4.1). */
function wouldGrantVote(candidate: LogTip, voter: LogTip): boolean {
  return candidate.lastTerm > voter.lastTerm ||
    (candidate.lastTerm === voter.lastTerm && candidate.lastIndex >= voter.lastIndex);
}

export function diskTip(disk: MemoryStorage): LogTip {
  const lastIndex = disk.lastIndex();
  return { lastIndex, lastTerm: disk.term(lastIndex) };
}

/** Whether the disk holds the entry (index, term), counting entries folded into its snapshot. */
function diskHasEntry(disk: MemoryStorage, index: number, term: number): boolean {
  if (index <= disk.snapshot().metadata.index) return true; // a snapshot only ever covers committed entries
  if (index > disk.lastIndex()) return false;
  return disk.term(index) === term;
}

export class SafetyChecker {
  readonly violations: Violation[] = [];
  private readonly leaderByTerm = new Map<number, NodeId>();
  /** (index/term) -> fingerprint of the entry and the term of the entry before it. */
  private readonly entriesSeen = new Map<string, { fingerprint: string; previousTerm: number | undefined }>();
  /** index -> (term, fingerprint) of the entry applied there by the first member to apply it. */
  private readonly appliedAt = new Map<number, { term: number; fingerprint: string; member: NodeId }>();
  /** (client/sequence) -> the log index where the command took effect. */
  private readonly executedAt = new Map<string, number>();
  /** The highest entry any member has applied: known committed. */
  maxCommitted = { index: 0, term: 0 };
  private readonly maxViolations: number;

  constructor(maxViolations = 20) {
    this.maxViolations = maxViolations;
  }

  private fail(property: SafetyProperty, tick: number, detail: string): void {
    if (this.violations.length < this.maxViolations) this.violations.push({ property, tick, detail });
  }

  /** Election safety, and leader completeness for the new leader. */
  leaderElected(tick: number, member: NodeId, term: number, entryTermAt: (index: number) => number | undefined, lastIndex: number): void {
    const previous = this.leaderByTerm.get(term);
    if (previous !== undefined && previous !== member) {
      this.fail('election-safety', tick, `members ${previous} and ${member} were both leader in term ${term}`);
    }
    this.leaderByTerm.set(term, member);
    const { index, term: committedTerm } = this.maxCommitted;
    if (index === 0) return;
    const termThere = index <= lastIndex ? entryTermAt(index) : 0;
    // undefined: compacted into a snapshot, which only ever holds committed entries.
    if (termThere !== undefined && termThere !== committedTerm) {
      this.fail('leader-completeness', tick,
        `member ${member} became leader of term ${term} without committed entry ${index} (term ${committedTerm}); ` +
        `it has ${termThere === 0 ? 'no entry' : `term ${termThere}`} there`);
    }
  }

  /** Log matching, checked on every entry a member writes to its disk. */
  entriesPersisted(tick: number, member: NodeId, entries: readonly Entry[], disk: MemoryStorage): void {
    for (const entry of entries) {
      const key = `${entry.index}/${entry.term}`;
      let previousTerm: number | undefined;
      try {
        previousTerm = entry.index > disk.firstIndex() - 1 ? disk.term(entry.index - 1) : undefined;
      } catch {
        previousTerm = undefined;
      }
      const print = entryFingerprint(entry);
      const seen = this.entriesSeen.get(key);
      if (!seen) {
        this.entriesSeen.set(key, { fingerprint: print, previousTerm });
        continue;
      }
      if (seen.fingerprint !== print) {
        this.fail('log-matching', tick, `member ${member} stored a different entry at index ${entry.index} term ${entry.term}`);
      } else if (seen.previousTerm !== undefined && previousTerm !== undefined && seen.previousTerm !== previousTerm) {
        this.fail('log-matching', tick,
          `member ${member} has entry ${entry.index}/${entry.term} after term ${previousTerm}; another member had it after term ${seen.previousTerm}`);
      }
    }
  }

  /** State machine safety, checked on every applied entry. */
  entryApplied(tick: number, member: NodeId, entry: Entry): void {
    const print = entryFingerprint(entry);
    const first = this.appliedAt.get(entry.index);
    if (!first) {
      this.appliedAt.set(entry.index, { term: entry.term, fingerprint: print, member });
    } else if (first.term !== entry.term || first.fingerprint !== print) {
      this.fail('state-machine-safety', tick,
        `member ${member} applied entry ${entry.index}/${entry.term} but member ${first.member} applied ${entry.index}/${first.term} there`);
    }
    if (entry.index > this.maxCommitted.index) this.maxCommitted = { index: entry.index, term: entry.term };
  }

  /**
   * Durability of commitment: the highest committed entry must be on enough persisted logs that no
   * member lacking it could collect a quorum of votes, whatever crashes happen next. A candidate
   * is tried twice: as it runs now (its in-memory log) and as it would restart (its disk); voters
   * count with their disks, which is all that survives their own crashes.
   */
  checkCommittedDurable(tick: number, voters: readonly DurabilityView[]): void {
    const { index, term } = this.maxCommitted;
    if (index === 0) return;
    const quorum = Math.floor(voters.length / 2) + 1;
    for (const candidate of voters) {
      const tips: LogTip[] = [];
      if (!diskHasEntry(candidate.disk, index, term)) tips.push(diskTip(candidate.disk));
      if (candidate.live && !candidate.live.hasEntry(index, term)) tips.push(candidate.live.tip);
      for (const candidateTip of tips) {
        const supporters = voters.filter((voter) => wouldGrantVote(candidateTip, diskTip(voter.disk)));
        if (supporters.length < quorum) continue;
        this.fail('committed-entry-lost', tick,
          `committed entry ${index}/${term} is missing on member ${candidate.id}, yet ${supporters.map((v) => v.id).join(',')} ` +
          `would elect it (its log ends at ${candidateTip.lastIndex}/${candidateTip.lastTerm})`);
        return;
      }
    }
  }

  /**
   * At-most-once execution: a command (client, sequence) may take effect at one log index only.
   * (A member rebuilt after a crash re-executes it at the same index, which is fine.)
   */
  commandExecuted(tick: number, member: NodeId, clientId: string, sequence: number, index: number): void {
    const key = `${clientId}/${sequence}`;
    const first = this.executedAt.get(key);
    if (first === undefined) this.executedAt.set(key, index);
    else if (first !== index) {
      this.fail('at-most-once', tick, `member ${member} executed command ${key} at index ${index}; it already took effect at index ${first}`);
    }
  }

  /**
   * A member's commit index reached `index` (whose entry has `term` in its log). Returns true when
   * this raises the highest known committed entry, so the caller can re-check durability at once:
   * the moment of commitment is when a wrongly committed entry is most exposed.
   */
  commitObserved(index: number, term: number | undefined): boolean {
    if (index <= this.maxCommitted.index || term === undefined) return false;
    this.maxCommitted = { index, term };
    return true;
  }

  /** Records a violation found by another checker (linearizability, liveness). */
  report(property: SafetyProperty, tick: number, detail: string): void {
    this.fail(property, tick, detail);
  }
}

export interface DurabilityView {
  id: NodeId;
  disk: MemoryStorage;
  /** The running member's in-memory log; undefined while it is down. */
  live: { tip: LogTip; hasEntry(index: number, term: number): boolean } | undefined;
}
