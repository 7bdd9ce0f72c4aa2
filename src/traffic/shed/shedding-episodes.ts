// Shedding as episodes, for the event timeline: an episode starts with the first request refused for
// overload and stops once quietPeriodMs pass without one. Its events say when, why (the reason of the
// first refusal, then counts by reason and class) and under which limit, so a postmortem can answer
// "when did we start shedding, and what?". Refusals for a client's quota are not overload and do
// not start an episode.

import { perPriority, type PerPriority, type Priority } from './priority.ts';
import { isOverloadReason, type ShedReason } from './shed-reason.ts';
import type { Override } from './admission-controller.ts';

export interface ShedState {
  readonly limit: number;
  readonly inflight: number;
  readonly queueLength: number;
}

export type ShedEvent =
  | {
    readonly type: 'shedding-started';
    readonly atMs: number;
    readonly reason: ShedReason;
    readonly priority: Priority;
    readonly limit: number;
    readonly inflight: number;
    readonly queueLength: number;
  }
  | {
    readonly type: 'shedding-stopped';
    readonly atMs: number;
    readonly startedAtMs: number;
    readonly lastRejectionAtMs: number;
    /** From the first to the last refusal of the episode. */
    readonly durationMs: number;
    readonly rejectedByReason: Readonly<Partial<Record<ShedReason, number>>>;
    readonly rejectedByPriority: Readonly<PerPriority<number>>;
  }
  | { readonly type: 'override-changed'; readonly atMs: number; readonly override: Override; readonly previous: Override };

interface Episode {
  startedAtMs: number;
  lastRejectionAtMs: number;
  byReason: Partial<Record<ShedReason, number>>;
  byPriority: PerPriority<number>;
}

export class SheddingEpisodes {
  private readonly quietPeriodMs: number;
  private episode: Episode | undefined;
  private readonly pending: ShedEvent[] = [];

  constructor(quietPeriodMs: number) {
    if (!(quietPeriodMs > 0)) throw new RangeError(`bug: quietPeriodMs ${quietPeriodMs} must be > 0`);
    this.quietPeriodMs = quietPeriodMs;
  }

  get shedding(): boolean {
    return this.episode !== undefined;
  }

  /** When the current episode ends if no refusal comes first; Infinity when not shedding. */
  get quietDeadlineMs(): number {
    return this.episode === undefined ? Number.POSITIVE_INFINITY : this.episode.lastRejectionAtMs + this.quietPeriodMs;
  }

  onRejected(reason: ShedReason, priority: Priority, nowMs: number, state: ShedState): void {
    if (!isOverloadReason(reason)) return;
    this.tick(nowMs);
    if (this.episode === undefined) {
      this.episode = { startedAtMs: nowMs, lastRejectionAtMs: nowMs, byReason: {}, byPriority: perPriority(() => 0) };
      this.pending.push({ type: 'shedding-started', atMs: nowMs, reason, priority, ...state });
    }
    const episode = this.episode;
    episode.lastRejectionAtMs = nowMs;
    episode.byReason[reason] = (episode.byReason[reason] ?? 0) + 1;
    episode.byPriority[priority] += 1;
  }

  onOverride(override: Override, previous: Override, nowMs: number): void {
    this.pending.push({ type: 'override-changed', atMs: nowMs, override, previous });
  }

  /** Ends the episode if it has been quiet long enough. */
  tick(nowMs: number): void {
    const episode = this.episode;
    if (episode === undefined || nowMs < this.quietDeadlineMs) return;
    this.episode = undefined;
    this.pending.push({
      type: 'shedding-stopped',
      atMs: nowMs,
      startedAtMs: episode.startedAtMs,
      lastRejectionAtMs: episode.lastRejectionAtMs,
      durationMs: episode.lastRejectionAtMs - episode.startedAtMs,
      rejectedByReason: episode.byReason,
      rejectedByPriority: episode.byPriority,
    });
  }

  /** Events since the last call, oldest first. */
  takeEvents(): ShedEvent[] {
    return this.pending.splice(0);
  }
}
