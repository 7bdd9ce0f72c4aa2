// Timeouts for the fast path's connections without a timer per request: each connection keeps one
// deadline (a number it moves as its exchange progresses), and one interval timer sweeps them all.
// Arming a timer per request and phase (connect, first byte, idle, keep-alive, header timeout)
// would cost an allocation and a timer-list operation each time; moving a number costs nothing.
// A deadline fires between 0 and `resolutionMs` late, never early.

import { monotonicMs } from './clocks.ts';

export interface Expiring {
  /** Monotonic milliseconds after which `expire` is called; Infinity for none. */
  readonly deadlineMs: number;
  expire(nowMs: number): void;
}

/** How often deadlines are checked: timeouts fire at most this late. */
export const DEFAULT_SWEEP_RESOLUTION_MS = 10;

export class DeadlineSweeper {
  private readonly items = new Set<Expiring>();
  private readonly resolutionMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(resolutionMs: number = DEFAULT_SWEEP_RESOLUTION_MS) {
    if (!(resolutionMs > 0)) throw new RangeError(`bug: sweep resolution ${resolutionMs} ms is not positive`);
    this.resolutionMs = resolutionMs;
  }

  add(item: Expiring): void {
    this.items.add(item);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.resolutionMs);
      this.timer.unref();
    }
  }

  remove(item: Expiring): void {
    this.items.delete(item);
    if (this.items.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = monotonicMs();
    // Deleting from a Set while iterating it is safe: removed items are not visited.
    for (const item of this.items) {
      if (item.deadlineMs <= now) item.expire(now);
    }
  }
}
