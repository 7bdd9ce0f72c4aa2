// The load balancer of one pool: which backends may take traffic, how it spreads over priority
// levels and zones, the panic threshold, slow start, and the algorithm within a level. Pure: the
// proxy passes the time into every call, and randomness comes from the generator it was built with.
//
// Routing in three steps, rebuilt only when something changes (health, draining, a slow-start step):
// 1. Panic: when fewer than panicThresholdPercent of the pool's (non-draining) backends are routable,
//    health is ignored and traffic spreads over all of them, because a few survivors taking the
//    whole load would fail too (Envoy's panic mode).
// 2. Levels: a backend's level is 2 × priority, plus 1 when the proxy knows its own zone and the
//    backend is elsewhere; so the local zone is preferred and other zones of the same priority come
//    next. Load spills to the next level as the previous one's healthy share drops (priority-load.ts).
// 3. Within the chosen level, the pool's algorithm picks.

import type { Random } from '../../random/seeded-random.ts';
import { PeakEwmaPicker } from './ewma-picker.ts';
import { DEFAULT_ACTIVE_REQUEST_BIAS, LeastRequestPicker } from './least-request.ts';
import { DEFAULT_EWMA_DECAY_MS, PeakEwma } from './peak-ewma.ts';
import { DEFAULT_OVERPROVISIONING_FACTOR, priorityLoads } from './priority-load.ts';
import { DEFAULT_BALANCE_FACTOR, DEFAULT_POINTS_PER_WEIGHT, RingHashPicker, type RingHashOptions } from './ring-hash.ts';
import { RoundRobinPicker } from './round-robin.ts';
import { DEFAULT_SLOW_START, slowStartFactor, type SlowStartOptions } from './slow-start.ts';
import type { BackendLoad, BalanceAlgorithm, PickRequest, Picker } from './types.ts';
import { SmoothWeightedPicker } from './weighted-round-robin.ts';

export interface BalancerOptions {
  algorithm: BalanceAlgorithm;
  /** The proxy's own zone; backends elsewhere get traffic only as spill-over. */
  localZone: string | undefined;
  /** Below this percentage of routable backends the pool panics and uses them all (0 turns panic off). */
  panicThresholdPercent: number;
  overprovisioningFactor: number;
  slowStart: SlowStartOptions;
  activeRequestBias: number;
  ewmaDecayMs: number;
  ring: RingHashOptions;
}

export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

export const DEFAULT_BALANCER_OPTIONS: BalancerOptions = {
  algorithm: 'p2c',
  localZone: undefined,
  panicThresholdPercent: DEFAULT_PANIC_THRESHOLD_PERCENT,
  overprovisioningFactor: DEFAULT_OVERPROVISIONING_FACTOR,
  slowStart: DEFAULT_SLOW_START,
  activeRequestBias: DEFAULT_ACTIVE_REQUEST_BIAS,
  ewmaDecayMs: DEFAULT_EWMA_DECAY_MS,
  ring: { pointsPerWeight: DEFAULT_POINTS_PER_WEIGHT, balanceFactor: DEFAULT_BALANCE_FACTOR },
};

/** A backend as the pool's configuration describes it. */
export interface BackendSpec {
  id: string;
  zone?: string | undefined;
  priority?: number | undefined;
  weight?: number | undefined;
}

/** Slow-start steps per window: effective weights are recomputed this often while a backend ramps. */
const SLOW_START_STEPS = 20;

interface BackendRouting {
  readonly load: BackendLoad;
  routable: boolean;
  draining: boolean;
  /** When the backend last became routable after being unroutable (start of its slow-start ramp). */
  rampFromMs: number | undefined;
}

interface Level {
  readonly loadPercent: number;
  readonly picker: Picker;
}

export class LoadBalancer {
  private readonly routing = new Map<string, BackendRouting>();
  private levels: Level[] = [];
  private panicking = false;
  private dirty = true;
  private nextRefreshMs = Number.POSITIVE_INFINITY;

  private readonly options: BalancerOptions;
  private readonly random: Random;

  constructor(options: BalancerOptions, random: Random) {
    this.options = options;
    this.random = random;
  }

  /** Sets the pool's members. Known backends keep their load and routing; new ones start routable. */
  setBackends(specs: readonly BackendSpec[]): void {
    const next = new Map<string, BackendRouting>();
    for (const spec of specs) {
      const existing = this.routing.get(spec.id);
      const weight = spec.weight ?? 1;
      if (!(weight > 0)) throw new RangeError(`bug: backend ${spec.id} has weight ${weight}; the config check allows only positive weights`);
      const sameShape = existing !== undefined && existing.load.configuredWeight === weight && existing.load.zone === spec.zone && existing.load.priority === (spec.priority ?? 0);
      next.set(spec.id, sameShape ? existing : {
        load: {
          id: spec.id, zone: spec.zone, priority: spec.priority ?? 0, configuredWeight: weight, effectiveWeight: weight,
          activeRequests: existing?.load.activeRequests ?? 0, activeStartSumMs: existing?.load.activeStartSumMs ?? 0,
          latency: existing?.load.latency ?? new PeakEwma(this.options.ewmaDecayMs),
        },
        routable: existing?.routable ?? true, draining: existing?.draining ?? false, rampFromMs: existing?.rampFromMs,
      });
    }
    this.routing.clear();
    for (const [id, entry] of next) this.routing.set(id, entry);
    this.dirty = true;
  }

  /**
   * Whether health allows traffic to the backend. A backend that becomes routable again starts its
   * slow-start ramp at `nowMs` unless `slowStart` is false (the pool's first health verdicts at
   * start-up do not ramp: when every backend is new, ramping them all changes nothing).
   */
  setRoutable(id: string, routable: boolean, nowMs: number, slowStart = true): void {
    const entry = this.entry(id);
    if (entry.routable === routable) return;
    entry.routable = routable;
    entry.rampFromMs = routable && slowStart && this.options.slowStart.windowMs > 0 ? nowMs : undefined;
    this.dirty = true;
  }

  /** A draining backend gets no new requests, even in panic. */
  setDraining(id: string, draining: boolean): void {
    const entry = this.entry(id);
    if (entry.draining === draining) return;
    entry.draining = draining;
    this.dirty = true;
  }

  pick(request: PickRequest): BackendLoad | undefined {
    if (this.dirty || request.nowMs >= this.nextRefreshMs) this.rebuild(request.nowMs);
    const levels = this.levels;
    if (levels.length === 1) return levels[0]!.picker.pick(request);
    let draw = this.random.nextFloat() * 100;
    let chosen = levels.length - 1;
    for (let i = 0; i < levels.length; i++) {
      draw -= levels[i]!.loadPercent;
      if (draw < 0) {
        chosen = i;
        break;
      }
    }
    const picked = levels[chosen]?.picker.pick(request);
    if (picked !== undefined) return picked;
    // Every backend of the chosen level is excluded (a retry): any other level will do.
    for (const level of levels) {
      const other = level.picker.pick(request);
      if (other !== undefined) return other;
    }
    return undefined;
  }

  /** Counts a request sent to `backend`; pair with requestFinished. */
  requestStarted(backend: BackendLoad, nowMs: number): void {
    backend.activeRequests += 1;
    backend.activeStartSumMs += nowMs;
  }

  /** Counts a request done; `latencyMs` (when the backend answered) feeds the latency estimate. */
  requestFinished(backend: BackendLoad, startedMs: number, nowMs: number, latencyMs: number | undefined): void {
    if (backend.activeRequests <= 0) throw new Error(`bug: backend ${backend.id} finished more requests than it started`);
    backend.activeRequests -= 1;
    backend.activeStartSumMs = backend.activeRequests === 0 ? 0 : backend.activeStartSumMs - startedMs;
    if (latencyMs !== undefined) backend.latency.observe(latencyMs, nowMs);
  }

  get(id: string): BackendLoad | undefined {
    return this.routing.get(id)?.load;
  }

  /** True when the pool is in panic mode (health ignored); as of the last pick or `refresh`. */
  get inPanic(): boolean {
    return this.panicking;
  }

  /** Recomputes routing now (the admin port calls it before reporting). */
  refresh(nowMs: number): void {
    if (this.dirty || nowMs >= this.nextRefreshMs) this.rebuild(nowMs);
  }

  private entry(id: string): BackendRouting {
    const entry = this.routing.get(id);
    if (entry === undefined) throw new Error(`bug: backend ${id} is not in the pool`);
    return entry;
  }

  private rebuild(nowMs: number): void {
    this.dirty = false;
    this.nextRefreshMs = Number.POSITIVE_INFINITY;
    const stepMs = Math.max(1, this.options.slowStart.windowMs / SLOW_START_STEPS);
    for (const entry of this.routing.values()) {
      const factor = slowStartFactor(this.options.slowStart, entry.rampFromMs, nowMs);
      if (factor >= 1) entry.rampFromMs = undefined;
      else this.nextRefreshMs = Math.min(this.nextRefreshMs, nowMs + stepMs);
      entry.load.effectiveWeight = entry.load.configuredWeight * factor;
    }
    const eligible = [...this.routing.values()].filter((entry) => !entry.draining);
    const routableCount = eligible.filter((entry) => entry.routable).length;
    this.panicking = this.options.panicThresholdPercent > 0 && eligible.length > 0 && routableCount * 100 < this.options.panicThresholdPercent * eligible.length;
    if (this.panicking) {
      this.levels = [{ loadPercent: 100, picker: this.createPicker(eligible.map((entry) => entry.load)) }];
      return;
    }
    this.levels = this.buildLevels(eligible);
  }

  private buildLevels(eligible: readonly BackendRouting[]): Level[] {
    const byLevel = new Map<number, BackendRouting[]>();
    for (const entry of eligible) {
      const remote = this.options.localZone !== undefined && entry.load.zone !== this.options.localZone;
      const level = entry.load.priority * 2 + (remote ? 1 : 0);
      byLevel.set(level, [...(byLevel.get(level) ?? []), entry]);
    }
    const ordered = [...byLevel.entries()].sort((a, b) => a[0] - b[0]).map((pair) => pair[1]);
    const loads = priorityLoads(ordered.map((entries) => ({
      healthy: entries.filter((entry) => entry.routable).length, total: entries.length,
    })), this.options.overprovisioningFactor);
    const levels: Level[] = [];
    ordered.forEach((entries, i) => {
      const routable = entries.filter((entry) => entry.routable).map((entry) => entry.load);
      if (loads[i]! > 0 && routable.length > 0) levels.push({ loadPercent: loads[i]!, picker: this.createPicker(routable) });
    });
    return levels;
  }

  private createPicker(backends: readonly BackendLoad[]): Picker {
    switch (this.options.algorithm) {
      case 'round-robin': return new RoundRobinPicker(backends, backends.length === 0 ? 0 : this.random.nextInt(backends.length));
      case 'weighted-round-robin': return new SmoothWeightedPicker(backends);
      case 'p2c': return new LeastRequestPicker(backends, this.random, this.options.activeRequestBias);
      case 'ewma': return new PeakEwmaPicker(backends, this.random);
      case 'hash': return new RingHashPicker(backends, this.random, this.options.ring);
    }
  }
}
