// The overload benchmark's figures, computed from the load generator's per-request records: goodput,
// admitted latency, success by class, settle time after a step, the medians over repetitions, the
// table and the goals check. No I/O here, so the definitions can be tested on synthetic records.

import type { LimiterAlgorithm } from '../src/traffic/shed/limiter.ts';
import { PRIORITIES } from '../src/traffic/shed/priority.ts';
import { STATUS_ERROR, STATUS_NOT_SENT, STATUS_TIMEOUT, type LoadResult } from './overload-load.ts';

/** The load whose row starts at 1× and steps up when the measured window opens. */
export const STEP_LOAD = 1.4;
/** A row whose achieved offered load is below this share of its target is invalid. */
export const ACHIEVED_LOAD_MIN = 0.95;
/**
 * A row whose generator sent late by more than this (p99 of send time − scheduled time) is invalid
 * too: it offered bursts, not the intended load, and on this shared machine that means other work
 * starved it. On a quiet machine the lag p99 is a few milliseconds.
 */
export const GENERATOR_LAG_P99_MAX_MS = 20;
/**
 * A row whose backend fired its service timers late by more than this at p99 is invalid: the
 * backend, which stands for an ideal server and uses almost no CPU, was starved by other work, and
 * so, likely, was the front. On a quiet machine its lateness p99 is about a millisecond.
 */
export const BACKEND_LATENESS_P99_MAX_MS = 10;
export const SETTLE_BIN_MS = 200;
/** A bin's goodput is in band within this share of capacity of the final goodput. */
export const SETTLE_GOODPUT_BAND = 0.2;
/** A bin's admitted p90 is in band within this factor of the final p90, either way. */
export const SETTLE_LATENCY_BAND = 1.5;
/** Share of the bins from the settle point to the end that must be in band (noise on a shared machine). */
export const SETTLE_IN_BAND_SHARE = 0.8;
/** The goals. */
export const GOALS = { goodputAtOverload: 0.9, p99OverUnloaded: 2, criticalSuccess: 0.999, shedShareForCritical: 0.5, settleMs: 1000 };

/** What a run is measured against. */
export interface Measure {
  capacityRps: number;
  sloMs: number;
}

/** Facts about a run that come from the front and backend rather than from the client's records. */
export interface RunContext {
  /** CPU the front used per request it answered (admitted or refused), in microseconds. */
  frontCpuMicrosPerRequest: number;
  /** CPU the front used per second of the run, in cores. */
  frontCpuCores: number;
  finalLimit: number;
  minRttMs: number;
  sheddingEvents: number;
  backendWastedShare: number;
  backendTimerLatenessP99Ms: number;
  loadAverage: number;
}

export interface RunSummary extends RunContext {
  limiter: LimiterAlgorithm | 'unloaded';
  load: number;
  repeat: number;
  targetRps: number;
  offeredRps: number;
  valid: boolean;
  goodputFraction: number;
  admittedP50Ms: number;
  admittedP99Ms: number;
  criticalSuccess: number;
  successByPriority: Record<string, number>;
  admittedP99ByPriority: Record<string, number>;
  shedFraction: number;
  timeouts: number;
  errors: number;
  notSent: number;
  settleMs: number | null;
  generatorLagP99Ms: number;
  generatorCpuCores: number;
  binsInBand?: string;
}

export interface Row {
  limiter: LimiterAlgorithm;
  load: number;
  goodputFraction: number;
  admittedP50Ms: number;
  admittedP99Ms: number;
  unloadedP99Ms: number;
  criticalSuccess: number;
  settleMs: number | null;
  targetRps: number;
  offeredRps: number;
  valid: boolean;
  validRepeats: number;
  shedFraction: number;
  successByPriority: Record<string, number>;
  finalLimit: number;
  frontCpuMicrosPerRequest: number;
  generatorLagP99Ms: number;
}

/** Nearest-rank percentile of sorted values; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2;
}

function isGood(status: number, latencyMs: number, measure: Measure): boolean {
  return status >= 200 && status < 300 && latencyMs <= measure.sloMs;
}

/**
 * Settle time after the step (the start of the measured window), as control theory defines it: the
 * time after which the system stays near its own final state. Per SETTLE_BIN_MS bin: goodput (good
 * responses) and the p90 of admitted latency; the final state is the median of each over the last
 * half of the window. A bin is in band when its goodput is within SETTLE_GOODPUT_BAND of capacity of
 * the final goodput and its p90 within a factor SETTLE_LATENCY_BAND of the final p90. The run has
 * settled at the first in-band bin from which at least SETTLE_IN_BAND_SHARE of the bins to the end
 * are in band; null when there is none.
 */
export function settleTime(result: LoadResult, measure: Measure): { settleMs: number | null; binsInBand: string } {
  const { requests } = result;
  const bins = Math.floor((result.measuredEndMs - result.measuredStartMs) / SETTLE_BIN_MS);
  const latencies: number[][] = Array.from({ length: bins }, () => []);
  const good = new Array<number>(bins).fill(0);
  for (let i = 0; i < requests.scheduledMs.length; i++) {
    const bin = Math.floor(requests.scheduledMs[i]! / SETTLE_BIN_MS);
    if (bin >= bins || requests.status[i] === STATUS_NOT_SENT || requests.shed[i] !== 0) continue;
    latencies[bin]!.push(requests.latencyMs[i]!);
    if (isGood(requests.status[i]!, requests.latencyMs[i]!, measure)) good[bin]! += 1;
  }
  const p90 = latencies.map((values) => percentile([...values].sort((a, b) => a - b), 90));
  const lastHalf = Math.floor(bins / 2);
  const finalGood = median(good.slice(lastHalf));
  const finalP90 = median(p90.slice(lastHalf));
  const goodBand = SETTLE_GOODPUT_BAND * measure.capacityRps * (SETTLE_BIN_MS / 1000);
  const inBand = good.map((count, bin) => {
    const latency = p90[bin]!;
    const latencyInBand = Number.isFinite(latency)
      ? latency <= finalP90 * SETTLE_LATENCY_BAND && latency >= finalP90 / SETTLE_LATENCY_BAND
      : !Number.isFinite(finalP90);
    return Math.abs(count - finalGood) <= goodBand && latencyInBand;
  });
  const binsInBand = inBand.map((ok) => (ok ? '+' : '.')).join('');
  for (let bin = 0; bin < bins; bin++) {
    if (!inBand[bin]) continue;
    const rest = inBand.slice(bin);
    if (rest.filter(Boolean).length >= SETTLE_IN_BAND_SHARE * rest.length) return { settleMs: bin * SETTLE_BIN_MS, binsInBand };
  }
  return { settleMs: null, binsInBand };
}

/** The figures of one run, over the requests scheduled in its measured window. */
export function summarize(
  run: { limiter: RunSummary['limiter']; load: number; repeat: number },
  result: LoadResult,
  measure: Measure,
  context: RunContext,
): RunSummary {
  const { requests } = result;
  const windowMs = result.measuredEndMs - result.measuredStartMs;
  const targetRps = run.load * measure.capacityRps;
  let sentInWindow = 0;
  let goodCount = 0;
  let shed = 0;
  let timeouts = 0;
  let errors = 0;
  let notSent = 0;
  const admitted: number[] = [];
  const admittedByPriority: number[][] = PRIORITIES.map(() => []);
  const sentByPriority = PRIORITIES.map(() => 0);
  const goodByPriority = PRIORITIES.map(() => 0);
  for (let i = 0; i < requests.scheduledMs.length; i++) {
    const status = requests.status[i]!;
    const priority = requests.priority[i]!;
    if (status === STATUS_NOT_SENT) {
      notSent += 1;
      continue;
    }
    if (requests.sentMs[i]! < windowMs) sentInWindow += 1;
    sentByPriority[priority]! += 1;
    if (requests.shed[i] !== 0) {
      shed += 1;
      continue;
    }
    admitted.push(requests.latencyMs[i]!);
    admittedByPriority[priority]!.push(requests.latencyMs[i]!);
    if (status === STATUS_TIMEOUT) timeouts += 1;
    else if (status === STATUS_ERROR) errors += 1;
    if (isGood(status, requests.latencyMs[i]!, measure)) {
      goodCount += 1;
      goodByPriority[priority]! += 1;
    }
  }
  admitted.sort((a, b) => a - b);
  const sent = requests.scheduledMs.length - notSent;
  const offeredRps = sentInWindow / (windowMs / 1000);
  const share = (good: number, of: number) => (of === 0 ? Number.NaN : good / of);
  const critical = PRIORITIES.indexOf('critical');
  return {
    ...run,
    ...context,
    targetRps,
    offeredRps,
    valid: offeredRps >= ACHIEVED_LOAD_MIN * targetRps && result.lagP99Ms <= GENERATOR_LAG_P99_MAX_MS &&
      context.backendTimerLatenessP99Ms <= BACKEND_LATENESS_P99_MAX_MS,
    goodputFraction: goodCount / (windowMs / 1000) / measure.capacityRps,
    admittedP50Ms: percentile(admitted, 50),
    admittedP99Ms: percentile(admitted, 99),
    criticalSuccess: share(goodByPriority[critical]!, sentByPriority[critical]!),
    successByPriority: Object.fromEntries(PRIORITIES.map((p, i) => [p, share(goodByPriority[i]!, sentByPriority[i]!)])),
    admittedP99ByPriority: Object.fromEntries(PRIORITIES.map((p, i) => [p, percentile(admittedByPriority[i]!.sort((a, b) => a - b), 99)])),
    shedFraction: sent === 0 ? 0 : shed / sent,
    timeouts,
    errors,
    notSent,
    settleMs: null,
    generatorLagP99Ms: result.lagP99Ms,
    generatorCpuCores: result.cpuCores,
  };
}

/** A run that never settled counts as infinitely slow in the median. */
function medianOrNull(values: readonly (number | null)[]): number | null {
  const sorted = values.map((v) => v ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return Number.isFinite(middle) ? middle : null;
}

/** One table row: medians over the valid repetitions (over all of them if none is valid). */
export function aggregate(runs: readonly RunSummary[], unloadedP99Ms: number): Row {
  const valid = runs.filter((run) => run.valid);
  const counted = valid.length > 0 ? valid : runs;
  const m = (pick: (run: RunSummary) => number) => median(counted.map(pick));
  const first = runs[0]!;
  return {
    limiter: first.limiter as LimiterAlgorithm,
    load: first.load,
    goodputFraction: m((r) => r.goodputFraction),
    admittedP50Ms: m((r) => r.admittedP50Ms),
    admittedP99Ms: m((r) => r.admittedP99Ms),
    unloadedP99Ms,
    criticalSuccess: m((r) => r.criticalSuccess),
    settleMs: first.load === STEP_LOAD ? medianOrNull(counted.map((run) => run.settleMs)) : null,
    targetRps: first.targetRps,
    offeredRps: m((r) => r.offeredRps),
    valid: valid.length > 0,
    validRepeats: valid.length,
    shedFraction: m((r) => r.shedFraction),
    successByPriority: Object.fromEntries(PRIORITIES.map((p) => [p, m((r) => r.successByPriority[p]!)])),
    finalLimit: m((r) => r.finalLimit),
    frontCpuMicrosPerRequest: m((r) => r.frontCpuMicrosPerRequest),
    generatorLagP99Ms: m((r) => r.generatorLagP99Ms),
  };
}

export function formatNumber(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

export function table(rows: readonly Row[]): string {
  const header = ['limiter', 'load', 'offered/s', 'goodput', 'p50 ms', 'p99 ms', 'p99/unl.', 'critical', 'shed', 'settle ms', 'limit', 'front µs/req', 'valid'];
  const lines = rows.map((r) => [
    r.limiter, `${r.load}×`, formatNumber(r.offeredRps, 0), formatNumber(r.goodputFraction, 3), formatNumber(r.admittedP50Ms, 1),
    formatNumber(r.admittedP99Ms, 1), formatNumber(r.admittedP99Ms / r.unloadedP99Ms, 2), formatNumber(r.criticalSuccess, 4),
    formatNumber(r.shedFraction, 3), r.load === STEP_LOAD ? (r.settleMs === null ? 'never' : String(r.settleMs)) : '',
    formatNumber(r.finalLimit, 0), formatNumber(r.frontCpuMicrosPerRequest, 0), r.valid ? 'yes' : 'INVALID',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((cells) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

/** Per limiter, whether each goal of the issue is met by its valid rows (null: no row to judge). */
export function goals(rows: readonly Row[]): Record<string, Record<string, boolean | null>> {
  const byLimiter: Record<string, Record<string, boolean | null>> = {};
  for (const limiter of new Set(rows.map((r) => r.limiter))) {
    const mine = rows.filter((r) => r.limiter === limiter && r.valid);
    const overload = mine.filter((r) => r.load >= 3);
    const heavyShed = mine.filter((r) => r.shedFraction > GOALS.shedShareForCritical);
    const step = mine.find((r) => r.load === STEP_LOAD);
    const p99Within = (r: Row) => r.admittedP99Ms <= GOALS.p99OverUnloaded * r.unloadedP99Ms;
    byLimiter[limiter] = {
      goodputAtLeast90PercentAt3xAnd10x: overload.length === 0 ? null : overload.every((r) => r.goodputFraction >= GOALS.goodputAtOverload),
      admittedP99WithinTwiceUnloadedAtEveryLoad: mine.length === 0 ? null : mine.every(p99Within),
      admittedP99WithinTwiceUnloadedAt3xAnd10x: overload.length === 0 ? null : overload.every(p99Within),
      criticalSuccess999WhileOverHalfShed: heavyShed.length === 0 ? null : heavyShed.every((r) => r.criticalSuccess >= GOALS.criticalSuccess),
      settlesWithin1s: step === undefined ? null : step.settleMs !== null && step.settleMs <= GOALS.settleMs,
    };
  }
  return byLimiter;
}
