// Automatic compaction, as etcd's --auto-compaction-mode and --auto-compaction-retention
// (server/etcdserver/api/v3compactor), as pure policies: the shell calls tick() at nextTickMs with
// the current revision, compacts the revision tick() returns (if any) through Raft, and reports
// the outcome. Only the leader runs a compactor; others pause() theirs.
//
// periodic, retention R (a duration, or a plain number of hours):
//   the policy samples the revision every R/10 (capped at 1 h/10 = 6 min for R > 1 h) and keeps
//   the last R/(R/10) + 1 samples. Nothing is compacted during the first R; then it compacts to
//   the oldest sample (the revision of about R ago) every min(R, 1 h) after the last success,
//   retrying every R/10 after a failure. E.g. R = 24h: first at 24 h, then hourly; R = 30m: every 30 min.
// revision, retention N:
//   every 5 minutes, compact to (current revision - N) unless that is <= 0 or was the last
//   revision compacted successfully.
// A "revision has been compacted" answer counts as success, as in etcd.

import { KvError } from './errors.ts';

export type AutoCompactionConfig =
  | { mode: 'periodic'; retentionMs: number }
  | { mode: 'revision'; retentionRevisions: number };

const HOUR_MS = 60 * 60 * 1000;
/** etcd's retryDivisor: the periodic compactor samples and retries every retention / 10. */
const PERIODIC_RETRY_DIVISOR = 10;
/** etcd's revInterval: how often the revision compactor looks. */
export const REVISION_COMPACTION_INTERVAL_MS = 5 * 60 * 1000;

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: HOUR_MS,
};

/**
 * etcd's parseCompactionRetention: a non-negative integer is hours (periodic) or revisions
 * (revision); otherwise the retention must be a Go duration such as '30m' or '1h30m' (periodic
 * only: etcd would read a duration as a count of nanosecond "revisions", which we refuse).
 * Retention 0 (etcd's default) disables auto compaction: the result is undefined.
 */
export function parseAutoCompaction(mode: string, retention: string): AutoCompactionConfig | undefined {
  if (mode !== 'periodic' && mode !== 'revision') {
    throw configError(`unknown --auto-compaction-mode '${mode}' (use 'periodic' or 'revision')`);
  }
  const text = retention.trim();
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (!Number.isSafeInteger(count)) throw configError(`retention '${retention}' is too large`);
    if (count === 0) return undefined;
    return mode === 'periodic' ? { mode, retentionMs: count * HOUR_MS } : { mode, retentionRevisions: count };
  }
  if (mode === 'revision') throw configError(`revision retention must be a number of revisions, got '${retention}'`);
  const retentionMs = parseGoDuration(text);
  return retentionMs === 0 ? undefined : { mode, retentionMs };
}

/** Go's time.ParseDuration for non-negative durations, in milliseconds: '1h30m', '1.5s', '300ms'. */
export function parseGoDuration(text: string): number {
  if (text === '0') return 0;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let totalMs = 0;
  let position = 0;
  while (position < text.length) {
    part.lastIndex = position;
    const match = part.exec(text);
    if (match === null) throw configError(`invalid duration '${text}' (examples: '30m', '1h30m', '72h')`);
    totalMs += Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
    position = part.lastIndex;
  }
  if (position === 0) throw configError(`invalid duration '${text}'`);
  return totalMs;
}

export interface AutoCompactor {
  /** When the shell should call tick() next, in the same clock as nowMs. */
  readonly nextTickMs: number;
  /** The revision to compact now, if any. Calls before nextTickMs do nothing. */
  tick(nowMs: number, currentRevision: number): number | undefined;
  /** The compaction tick() asked for finished; "already compacted" counts as succeeded. */
  compactionFinished(nowMs: number, succeeded: boolean): void;
  pause(): void;
  resume(): void;
}

export function createAutoCompactor(config: AutoCompactionConfig, nowMs: number, currentRevision: number): AutoCompactor {
  return config.mode === 'periodic'
    ? new PeriodicCompactor(config.retentionMs, nowMs, currentRevision)
    : new RevisionCompactor(config.retentionRevisions, nowMs);
}

export class PeriodicCompactor implements AutoCompactor {
  readonly retentionMs: number;
  /** How often a compaction may happen once the first retention period has passed. */
  readonly compactIntervalMs: number;
  /** How often the revision is sampled and a failed compaction retried. */
  readonly retryIntervalMs: number;
  /** How many samples are kept: the oldest is the revision of one retention period ago. */
  readonly retentions: number;
  private samples: number[] = [];
  private lastSuccessMs: number;
  private baseIntervalMs: number;
  private paused = false;
  nextTickMs: number;

  constructor(retentionMs: number, nowMs: number, currentRevision: number) {
    if (!(retentionMs > 0)) throw configError(`periodic retention must be positive, got ${retentionMs} ms`);
    this.retentionMs = retentionMs;
    this.compactIntervalMs = Math.min(retentionMs, HOUR_MS);
    this.retryIntervalMs = this.compactIntervalMs / PERIODIC_RETRY_DIVISOR;
    this.retentions = Math.floor(retentionMs / this.retryIntervalMs) + 1;
    this.lastSuccessMs = nowMs;
    // etcd waits a full retention period before the first compaction, then compacts every interval.
    this.baseIntervalMs = retentionMs;
    this.sample(currentRevision);
    this.nextTickMs = nowMs + this.retryIntervalMs;
  }

  tick(nowMs: number, currentRevision: number): number | undefined {
    if (nowMs < this.nextTickMs) return undefined;
    this.nextTickMs = nowMs + this.retryIntervalMs;
    if (this.paused || nowMs - this.lastSuccessMs < this.baseIntervalMs) {
      this.sample(currentRevision);
      return undefined;
    }
    this.baseIntervalMs = this.compactIntervalMs;
    const revision = this.samples[0]!;
    // etcd samples again right after the compaction; the revision hardly moves in between.
    this.sample(currentRevision);
    return revision;
  }

  compactionFinished(nowMs: number, succeeded: boolean): void {
    if (succeeded) this.lastSuccessMs = nowMs;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  private sample(revision: number): void {
    this.samples.push(revision);
    if (this.samples.length > this.retentions) this.samples.shift();
  }
}

export class RevisionCompactor implements AutoCompactor {
  readonly retentionRevisions: number;
  private lastCompacted = 0;
  private pending: number | undefined;
  private paused = false;
  nextTickMs: number;

  constructor(retentionRevisions: number, nowMs: number) {
    if (!Number.isSafeInteger(retentionRevisions) || retentionRevisions < 1) {
      throw configError(`revision retention must be a positive integer, got ${retentionRevisions}`);
    }
    this.retentionRevisions = retentionRevisions;
    this.nextTickMs = nowMs + REVISION_COMPACTION_INTERVAL_MS;
  }

  tick(nowMs: number, currentRevision: number): number | undefined {
    if (nowMs < this.nextTickMs) return undefined;
    this.nextTickMs = nowMs + REVISION_COMPACTION_INTERVAL_MS;
    if (this.paused) return undefined;
    const revision = currentRevision - this.retentionRevisions;
    if (revision <= 0 || revision === this.lastCompacted) return undefined;
    this.pending = revision;
    return revision;
  }

  compactionFinished(_nowMs: number, succeeded: boolean): void {
    if (succeeded && this.pending !== undefined) this.lastCompacted = this.pending;
    this.pending = undefined;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }
}

function configError(detail: string): KvError {
  return new KvError('CONCORD_E_AUTO_COMPACTION_CONFIG', detail);
}
