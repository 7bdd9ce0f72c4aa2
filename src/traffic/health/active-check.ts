// The active health-check state of one backend: rise/fall counting and when to probe next.
// HAProxy's and Envoy's rules: `fall` consecutive failures mark a healthy backend down, `rise`
// consecutive successes mark an unhealthy one up, so one lost packet does not flap a backend. The
// first verdict on a backend nobody has checked yet takes a single result (as Envoy at start-up):
// there is no earlier state to protect from flapping.
//
// Probes start on a fixed cadence from the previous probe's start (not its end), so a backend
// that hangs is marked down within (fall − 1) × interval + timeout of its first failed probe. While
// a backend is changing state (a failure on a healthy one, a success on an unhealthy one) the
// faster interval applies, as HAProxy's `fastinter`. Every delay is jittered so the checks of many
// backends (and many proxies) do not fire in lockstep; the very first probe is spread over a whole
// interval.

import type { Random } from '../../random/seeded-random.ts';

export interface ActiveCheckOptions {
  intervalMs: number;
  /** Interval while a backend is between states (a failure while healthy, a success while unhealthy). */
  fastIntervalMs: number;
  timeoutMs: number;
  /** Consecutive successes that mark an unhealthy backend healthy (≥ 1). */
  rise: number;
  /** Consecutive failures that mark a healthy backend unhealthy (≥ 1). */
  fall: number;
  /** Each delay varies by up to ± this percentage (0-50). */
  jitterPercent: number;
}

/** One probe's outcome, as the probe shell reports it. */
export interface ProbeResult {
  readonly ok: boolean;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  /** What was seen: 'status 200', 'connection refused', 'timed out after 500 ms', ... */
  readonly detail: string;
}

export type ActiveVerdict = { changed: false } | { changed: true; healthy: boolean; detectionMs?: number };

export class ActiveCheckState {
  private healthy: boolean;
  private checked = false;
  private successes = 0;
  private failures = 0;
  private firstFailureStartMs: number | undefined;
  private probed = false;
  private last: ProbeResult | undefined;
  private readonly options: ActiveCheckOptions;

  /** `assumeHealthy`: routable before the first verdict (backends present at start-up), or not (added later). */
  constructor(options: ActiveCheckOptions, assumeHealthy: boolean) {
    this.options = options;
    this.healthy = assumeHealthy;
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  get lastResult(): ProbeResult | undefined {
    return this.last;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get consecutiveSuccesses(): number {
    return this.successes;
  }

  /** True once a probe result has decided the state (before that, the state is an assumption). */
  get hasVerdict(): boolean {
    return this.checked;
  }

  record(result: ProbeResult): ActiveVerdict {
    this.last = result;
    const firstVerdict = !this.checked;
    this.checked = true;
    if (result.ok) {
      this.failures = 0;
      this.firstFailureStartMs = undefined;
      this.successes += 1;
      if (!this.healthy && (firstVerdict || this.successes >= this.options.rise)) {
        this.healthy = true;
        return { changed: true, healthy: true };
      }
      return { changed: false };
    }
    this.successes = 0;
    this.failures += 1;
    this.firstFailureStartMs ??= result.startedAtMs;
    if (this.healthy && (firstVerdict || this.failures >= this.options.fall)) {
      this.healthy = false;
      return { changed: true, healthy: false, detectionMs: result.finishedAtMs - this.firstFailureStartMs };
    }
    return { changed: false };
  }

  /**
   * Takes a verdict reached elsewhere (the control plane's checker, published through the store):
   * the state becomes `healthy` and the run of successes or failures starts over, so checks of its
   * own that follow (a proxy falling back when the published results go stale) start from it.
   * Returns whether the state changed.
   */
  adopt(healthy: boolean, last: ProbeResult | undefined): boolean {
    const changed = healthy !== this.healthy || !this.checked;
    this.healthy = healthy;
    this.checked = true;
    this.successes = 0;
    this.failures = 0;
    this.firstFailureStartMs = undefined;
    if (last !== undefined) this.last = last;
    return changed;
  }

  /** Milliseconds from the start of the previous probe (or from now, for the first) to the next probe's start. */
  nextDelayMs(random: Random): number {
    if (!this.probed) {
      this.probed = true;
      return Math.floor(random.nextFloat() * this.options.intervalMs);
    }
    const changing = this.healthy ? this.failures > 0 : this.successes > 0;
    const base = changing ? this.options.fastIntervalMs : this.options.intervalMs;
    const spread = (base * this.options.jitterPercent) / 100;
    return Math.max(1, Math.round(base - spread + random.nextFloat() * 2 * spread));
  }
}
