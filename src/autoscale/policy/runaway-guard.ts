// The runaway guard. A bug, a misconfiguration or a downstream bottleneck looks the same from
// here: the policy keeps asking for instances that do not help. It trips when
//   1. growth: the asked count exceeds the smallest pool of the window (runaway.windowMs) by more
//      than runaway.maxGrowthPerWindow instances: the operator's blunt cap;
//   2. unexplained growth: relative to the window's oldest sample, the asked count grew more than
//      runaway.maxUnexplainedGrowthFactor times as much as the offered load did, measured both as
//      requests/s and as offered concurrency (requests/s times mean latency, which a slower
//      dependency raises legitimately), for runaway.confirmPeriods periods in a row. The proxies
//      measure rate and latency independently of the in-flight gauge, so a metric that jumps 10x
//      while traffic does not is caught. Until it is confirmed, growth is held to what the traffic
//      explains, so a fast scale-out cannot reach the ceiling before the guard is sure;
//   3. no goodput: the pool was losing requests (shed or failed) at the window's start and still
//      is, the policy still asks for more, and the instances it added within the window, now
//      warmed, have not raised goodput (successful requests/s) by runaway.minGoodputGainPercent of
//      the warmed pool's relative growth. (A pool that loses nothing has no goodput to gain: its
//      scale-out answers latency, and this check stays out of the way.)
// Then the policy freezes itself (a kill-switch key the operator removes), and says why.

import type { PolicyConfig, PolicyMemory, RunawaySample } from './types.ts';

export interface RunawayInput {
  nowMs: number;
  current: number;
  /** Warmed instances that were already warmed when the metrics were sampled. */
  warmedAtSample: number;
  /** The count the policy asks for (after bounds and back-end protection, before rate limits). */
  asked: number;
  /** The ask comes from an external metric, which the proxies' traffic cannot explain. */
  askedByExternalMetric: boolean;
  offeredPerSecond?: number;
  offeredConcurrency?: number;
  goodputPerSecond?: number;
}

export interface RunawayVerdict {
  trip?: string;
  /** While unexplained growth awaits confirmation: the most instances the traffic explains. */
  cap?: { count: number; reason: string };
  samples: RunawaySample[];
  unexplainedGrowthPeriods: number;
}

export function checkRunaway(config: PolicyConfig, memory: PolicyMemory, input: RunawayInput): RunawayVerdict {
  const limits = config.runaway;
  const samples = memory.runawaySamples.filter((sample) => sample.atMs > input.nowMs - limits.windowMs);
  const asking = input.asked > input.current;
  const trip = asking ? (growthBeyondLimit(config, samples, input) ?? noGoodputGain(config, samples, input)) : undefined;
  const unexplained = unexplainedGrowth(config, samples, input, memory.unexplainedGrowthPeriods);
  const sample: RunawaySample = { atMs: input.nowMs, capacity: input.current, warmed: input.warmedAtSample };
  if (input.offeredPerSecond !== undefined) sample.offeredPerSecond = input.offeredPerSecond;
  if (input.offeredConcurrency !== undefined) sample.offeredConcurrency = input.offeredConcurrency;
  if (input.goodputPerSecond !== undefined) sample.goodputPerSecond = input.goodputPerSecond;
  samples.push(sample);
  return { trip: trip ?? unexplained.trip, cap: unexplained.cap, samples, unexplainedGrowthPeriods: unexplained.periods };
}

function growthBeyondLimit(config: PolicyConfig, samples: readonly RunawaySample[], input: RunawayInput): string | undefined {
  const smallest = Math.min(input.current, ...samples.map((sample) => sample.capacity));
  const growth = input.asked - smallest;
  if (growth <= config.runaway.maxGrowthPerWindow) return undefined;
  return `asked for ${input.asked} instances, ${growth} more than the smallest pool (${smallest}) of the last ${config.runaway.windowMs} ms: beyond runaway.maxGrowthPerWindow (${config.runaway.maxGrowthPerWindow})`;
}

interface UnexplainedGrowth {
  trip?: string;
  cap?: { count: number; reason: string };
  periods: number;
}

function unexplainedGrowth(config: PolicyConfig, samples: readonly RunawaySample[], input: RunawayInput, periods: number): UnexplainedGrowth {
  const limits = config.runaway;
  const base = samples.find((sample) => sample.offeredPerSecond !== undefined && sample.offeredConcurrency !== undefined);
  if (input.asked <= input.current || input.askedByExternalMetric || base === undefined || input.offeredPerSecond === undefined || input.offeredConcurrency === undefined) {
    return { periods: 0 };
  }
  if (base.capacity === 0 || base.offeredPerSecond! <= 0 || base.offeredConcurrency! <= 0) return { periods: 0 };
  const sizeGrowth = input.asked / base.capacity;
  const loadGrowth = Math.max(1, input.offeredPerSecond / base.offeredPerSecond!, input.offeredConcurrency / base.offeredConcurrency!);
  if (sizeGrowth <= loadGrowth * limits.maxUnexplainedGrowthFactor) return { periods: 0 };
  const count = periods + 1;
  if (count < limits.confirmPeriods) {
    const explained = Math.max(input.current, Math.floor(base.capacity * loadGrowth * limits.maxUnexplainedGrowthFactor));
    const reason = `asked for ${sizeGrowth.toFixed(1)}x the pool while offered load grew ${loadGrowth.toFixed(1)}x: holding growth to ${explained} until confirmed (${count} of ${limits.confirmPeriods} periods)`;
    return { periods: count, cap: { count: explained, reason } };
  }
  return {
    periods: count,
    trip:
      `asked for ${input.asked} instances, ${sizeGrowth.toFixed(1)}x the ${base.capacity} of the window's start, while offered load grew ` +
      `${loadGrowth.toFixed(1)}x, for ${count} periods: beyond runaway.maxUnexplainedGrowthFactor (${limits.maxUnexplainedGrowthFactor})`,
  };
}

/** Goodput below this share of offered load means the pool is losing requests. */
const LOSING_BELOW_GOODPUT_RATIO = 0.95;

function losing(goodputPerSecond: number | undefined, offeredPerSecond: number | undefined): boolean {
  return goodputPerSecond !== undefined && offeredPerSecond !== undefined && goodputPerSecond < LOSING_BELOW_GOODPUT_RATIO * offeredPerSecond;
}

function noGoodputGain(config: PolicyConfig, samples: readonly RunawaySample[], input: RunawayInput): string | undefined {
  const limits = config.runaway;
  const base = samples.find((sample) => sample.goodputPerSecond !== undefined && sample.offeredPerSecond !== undefined);
  if (base === undefined || input.goodputPerSecond === undefined || base.warmed === 0 || base.goodputPerSecond! <= 0) return undefined;
  if (!losing(base.goodputPerSecond, base.offeredPerSecond) || !losing(input.goodputPerSecond, input.offeredPerSecond)) return undefined;
  const added = input.warmedAtSample - base.warmed;
  if (added < Math.max(limits.minAddedInstances, Math.ceil(base.warmed * 0.2))) return undefined;
  const requiredGain = (input.warmedAtSample / base.warmed - 1) * (limits.minGoodputGainPercent / 100);
  const gain = input.goodputPerSecond / base.goodputPerSecond! - 1;
  if (gain >= requiredGain) return undefined;
  return (
    `still asking for more after ${added} added instances raised goodput by ${(gain * 100).toFixed(0)}% ` +
    `(at least ${(requiredGain * 100).toFixed(0)}% expected): adding instances is not helping`
  );
}
