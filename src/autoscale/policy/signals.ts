// Target tracking: each configured signal is read from the observation and turned into a vote and
// a recommended instance count; the votes combine as "out if any signal asks, in only if all agree".
//
// Load signals (in-flight and requests/s per instance) are averaged over warmed instances only:
// a warming instance's numbers are not representative yet (cold caches, slow start). They are
// scaled by offered/served, so requests the proxies shed count as load: a shedding pool looks as
// loaded as it is, not as loaded as what it managed to admit. The recommendation is the warmed
// count times the ratio to target; warming and starting instances count as capacity against it,
// so the pool does not ask again for instances that are already on their way.
//
// A signal without fresh data is 'missing': it can still let another signal scale out, but no
// scale-in happens unless every signal is present and agrees. A load signal read from incomplete
// data (too few warmed instances reporting, or no pool metrics to count shed requests) is
// 'partial': the instances that do report are a fair sample of a balanced pool, so it may still
// ask to scale out (without the shed correction it can only under-estimate), but it never votes
// to hold or scale in.

import type { PoolInstances } from './instances.ts';
import type { InstanceObservation, PolicyConfig, PoolObservation, SignalName, SignalReading } from './types.ts';

/** Latency is not proportional to capacity: one period's latency signal asks for at most this factor. */
export const LATENCY_MAX_STEP_RATIO = 2;

export interface SignalSummary {
  readings: SignalReading[];
  /** The combined recommendation (instances), before stabilization and guards. */
  recommendation: number;
  reason: string;
  /** The signal whose ask won, when one asked to scale out. */
  leader?: SignalName;
  /** Some signal had no fresh data this period. */
  missing: boolean;
  offeredPerSecond?: number;
  goodputPerSecond?: number;
  metricsAgeMs?: number;
  metricCoveragePercent?: number;
  /** The highest signal-to-target ratio present: the pool's load relative to its target. */
  utilizationRatio?: number;
}

interface LoadTotals {
  /** Requests/s served by every instance with fresh metrics (draining ones too). */
  servedPerSecond: number;
  warmedInflight: number;
  warmedPerSecond: number;
  warmedReporting: number;
}

function isFresh(sampledAtMs: number, nowMs: number, config: PolicyConfig): boolean {
  return nowMs - sampledAtMs <= config.metrics.maxAgeMs;
}

function loadTotals(observation: PoolObservation, pool: PoolInstances, config: PolicyConfig): LoadTotals {
  const fresh = (instance: InstanceObservation) =>
    instance.metrics !== undefined && isFresh(instance.metrics.sampledAtMs, observation.nowMs, config);
  const totals: LoadTotals = { servedPerSecond: 0, warmedInflight: 0, warmedPerSecond: 0, warmedReporting: 0 };
  for (const instance of observation.instances) if (fresh(instance)) totals.servedPerSecond += instance.metrics!.requestsPerSecond;
  for (const instance of pool.warmed) {
    if (!fresh(instance)) continue;
    totals.warmedReporting++;
    totals.warmedInflight += instance.metrics!.inflight;
    totals.warmedPerSecond += instance.metrics!.requestsPerSecond;
  }
  return totals;
}

/**
 * Reads every configured signal. `current` is the capacity the scaler manages (the pool without
 * an instance refresh's surge): a signal within tolerance recommends exactly that.
 */
export function readSignals(config: PolicyConfig, observation: PoolObservation, pool: PoolInstances, current: number): SignalSummary {
  const { nowMs, metrics } = observation;
  const warmed = pool.warmed.length;
  const tolerance = config.tolerancePercent / 100;
  const poolFresh = metrics !== undefined && isFresh(metrics.sampledAtMs, nowMs, config);
  const totals = loadTotals(observation, pool, config);
  const coveragePercent = warmed > 0 ? (100 * totals.warmedReporting) / warmed : undefined;
  const covered = coveragePercent !== undefined && coveragePercent >= config.metrics.minCoveragePercent;

  const shedPerSecond = poolFresh ? metrics.shedPerSecond : undefined;
  const offeredPerSecond = shedPerSecond === undefined ? undefined : totals.servedPerSecond + shedPerSecond;
  const offeredFactor = offeredPerSecond !== undefined && totals.servedPerSecond > 0 ? offeredPerSecond / totals.servedPerSecond : 1;

  const vote = (signal: SignalName, target: number, value: number | undefined, recommend: (ratio: number) => number): SignalReading => {
    if (value === undefined) return { signal, target, vote: 'missing' };
    const ratio = value / target;
    if (Math.abs(ratio - 1) <= tolerance) return { signal, value, target, ratio, recommendation: current, vote: 'hold' };
    const recommendation = recommend(ratio);
    const direction = recommendation > current ? 'out' : recommendation < current ? 'in' : 'hold';
    return { signal, value, target, ratio, recommendation, vote: direction };
  };
  const complete = poolFresh && covered;
  const perWarmed = (total: number) => (totals.warmedReporting > 0 ? (total / totals.warmedReporting) * (poolFresh ? offeredFactor : 1) : undefined);
  const loadVote = (signal: SignalName, target: number, total: number): SignalReading => {
    // With no warmed instance there is nothing representative to measure yet: hold, it is no outage.
    if (warmed === 0) return { signal, target, vote: 'hold' };
    const reading = vote(signal, target, perWarmed(total), (ratio) => Math.ceil(warmed * ratio - 1e-9));
    if (complete || reading.vote === 'missing') return reading;
    return reading.vote === 'out' ? { ...reading, partial: true } : { ...reading, vote: 'missing', partial: true };
  };

  const readings: SignalReading[] = [];
  const { target } = config;
  if (target.inflightPerInstance !== undefined) readings.push(loadVote('inflightPerInstance', target.inflightPerInstance, totals.warmedInflight));
  if (target.requestsPerSecondPerInstance !== undefined) {
    readings.push(loadVote('requestsPerSecondPerInstance', target.requestsPerSecondPerInstance, totals.warmedPerSecond));
  }
  if (target.p95LatencyMs !== undefined) {
    const p95 = poolFresh ? metrics.latencyMs.p95 : undefined;
    readings.push(
      warmed === 0
        ? { signal: 'p95LatencyMs', target: target.p95LatencyMs, vote: 'hold' }
        : vote('p95LatencyMs', target.p95LatencyMs, p95, (ratio) =>
            Math.ceil(warmed * Math.min(Math.max(ratio, 1 / LATENCY_MAX_STEP_RATIO), LATENCY_MAX_STEP_RATIO) - 1e-9)),
    );
  }
  for (const [name, perInstance] of Object.entries(target.external ?? {})) {
    const total = poolFresh ? metrics.external[name] : undefined;
    // An external metric is a pool total (a queue's depth): it asks for total / target instances.
    readings.push(vote(`external:${name}`, perInstance, total === undefined ? undefined : total / Math.max(current, 1), () => Math.ceil(total! / perInstance - 1e-9)));
  }

  const combined = combine(readings, current);
  const ratios = readings.flatMap((r) => (r.ratio === undefined ? [] : [r.ratio]));
  return {
    readings,
    ...combined,
    missing: readings.some((r) => r.vote === 'missing' || r.partial === true),
    offeredPerSecond,
    goodputPerSecond: poolFresh ? totals.servedPerSecond * (1 - metrics.errorRatio) : undefined,
    metricsAgeMs: metrics === undefined ? undefined : nowMs - metrics.sampledAtMs,
    metricCoveragePercent: coveragePercent,
    utilizationRatio: ratios.length > 0 ? Math.max(...ratios) : undefined,
  };
}

/** Out if any signal asks (the largest ask wins); in only if every signal asks to (the smallest cut wins); else hold. */
export function combine(readings: readonly SignalReading[], current: number): { recommendation: number; reason: string; leader?: SignalName } {
  const outs = readings.filter((r) => r.vote === 'out');
  if (outs.length > 0) {
    const top = outs.reduce((a, b) => (b.recommendation! > a.recommendation! ? b : a));
    return { recommendation: top.recommendation!, reason: `${top.signal} at ${formatRatio(top.ratio)} of target asks for ${top.recommendation}`, leader: top.signal };
  }
  if (readings.length > 0 && readings.every((r) => r.vote === 'in')) {
    const recommendation = Math.max(...readings.map((r) => r.recommendation!));
    return { recommendation, reason: `every signal is below target; the most cautious asks for ${recommendation}` };
  }
  const blockers = readings.filter((r) => r.vote !== 'in').map((r) => `${r.signal} ${r.vote}`);
  return { recommendation: current, reason: blockers.length > 0 ? `hold (${blockers.join(', ')})` : 'hold' };
}

function formatRatio(ratio: number | undefined): string {
  return ratio === undefined ? '?' : `${Math.round(ratio * 100)}%`;
}
