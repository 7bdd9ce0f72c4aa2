// Runs the active checks of every backend on its own schedule (start to start, jittered, as the
// health core decides) with a cap on how many probes run at once: when the cap is reached, due
// probes wait in arrival order. Each backend has at most one probe running or waiting, so the
// wait queue never holds more entries than there are backends.

import type { ProbeResult } from '../health/active-check.ts';
import type { HealthEvent } from '../health/events.ts';
import type { PoolHealth } from '../health/pool-health.ts';
import { systemClock, type Clock, type Probe, type ProbeTarget } from './probe.ts';

export const DEFAULT_MAX_CONCURRENT_CHECKS = 64;

export interface HealthCheckerOptions {
  /** Probes running at once, across all pools (≥ 1). */
  maxConcurrentChecks: number;
  clock?: Clock;
  /** Called with the events each probe result produced (may be empty), after the health core saw it. */
  onResult: (pool: string, backend: string, result: ProbeResult, events: HealthEvent[]) => void;
}

interface Watched {
  readonly pool: string;
  readonly id: string;
  readonly target: ProbeTarget;
  readonly health: PoolHealth;
  readonly probe: Probe;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

export class HealthChecker {
  private readonly watched = new Map<string, Watched>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private probesStarted = 0;
  private readonly clock: Clock;
  private readonly options: HealthCheckerOptions;
  private maxConcurrentChecks: number;

  constructor(options: HealthCheckerOptions) {
    this.options = options;
    this.maxConcurrentChecks = checkedLimit(options.maxConcurrentChecks);
    this.clock = options.clock ?? systemClock;
  }

  /** Changes the cap on probes running at once (a configuration applied live); a higher cap starts waiting probes now. */
  setMaxConcurrentChecks(limit: number): void {
    this.maxConcurrentChecks = checkedLimit(limit);
    this.releaseSlot();
  }

  /** Starts checking one backend; its first probe comes within one interval (the health core's initial jitter). */
  watch(pool: string, id: string, target: ProbeTarget, health: PoolHealth, probe: Probe): void {
    const key = `${pool}\u0000${id}`;
    if (this.watched.has(key)) return;
    const entry: Watched = { pool, id, target, health, probe, timer: undefined, stopped: false };
    this.watched.set(key, entry);
    this.schedule(entry, this.clock(), health.nextProbeDelayMs(id));
  }

  unwatch(pool: string, id: string): void {
    const key = `${pool}\u0000${id}`;
    const entry = this.watched.get(key);
    if (entry === undefined) return;
    entry.stopped = true;
    clearTimeout(entry.timer);
    this.watched.delete(key);
  }

  stop(): void {
    for (const entry of this.watched.values()) {
      entry.stopped = true;
      clearTimeout(entry.timer);
    }
    this.watched.clear();
    this.waiting.length = 0;
  }

  /** Probes running right now and probes waiting for a slot. */
  get load(): { running: number; waiting: number; started: number } {
    return { running: this.running, waiting: this.waiting.length, started: this.probesStarted };
  }

  private schedule(entry: Watched, fromMs: number, delayMs: number): void {
    const waitMs = Math.max(0, fromMs + delayMs - this.clock());
    entry.timer = setTimeout(() => this.whenSlotFree(entry), waitMs);
    entry.timer.unref();
  }

  private whenSlotFree(entry: Watched): void {
    if (entry.stopped) return;
    if (this.running < this.maxConcurrentChecks) this.run(entry);
    else this.waiting.push(() => this.run(entry));
  }

  private run(entry: Watched): void {
    if (entry.stopped) {
      this.releaseSlot();
      return;
    }
    this.running += 1;
    this.probesStarted += 1;
    const startedMs = this.clock();
    entry.probe(entry.target).then((result) => {
      this.running -= 1;
      this.releaseSlot();
      if (entry.stopped) return;
      const events = entry.health.recordProbe(entry.id, result);
      this.options.onResult(entry.pool, entry.id, result, events);
      this.schedule(entry, startedMs, entry.health.nextProbeDelayMs(entry.id));
    }, (error: unknown) => {
      // Probes never reject; one that does is a bug, reported rather than left to stop the schedule.
      this.running -= 1;
      this.releaseSlot();
      throw error;
    });
  }

  private releaseSlot(): void {
    while (this.running < this.maxConcurrentChecks && this.waiting.length > 0) this.waiting.shift()!();
  }
}

function checkedLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`bug: maxConcurrentChecks must be a positive integer, got ${limit}`);
  return limit;
}
