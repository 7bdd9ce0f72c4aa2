// The built-in scenarios: a load trace from a seeded generator, and the faults that happen during
// it. The same seed gives the same traces, so runs compare exactly. Each trace's shape is in its
// description; docs/autoscaling.md shows them next to the results.

import { SeededRandom } from '../../random/seeded-random.ts';
import type { LoadTrace, TracePoint } from './trace.ts';

export interface Faults {
  /** Pool metrics and the metrics of a share of instances go missing. */
  metricsOutage?: { fromSeconds: number; toSeconds: number; missingInstancePercent: number };
  /** The dependency answers this many times slower. */
  dependencySlowdown?: { fromSeconds: number; toSeconds: number; latencyFactor: number };
  /** A bug multiplies the reported in-flight metric (both policies see it). */
  buggyMetric?: { fromSeconds: number; inflightFactor: number };
}

export interface Scenario {
  name: string;
  description: string;
  trace: LoadTrace;
  faults: Faults;
  /** A guard check rather than a load trace: not part of the SLO comparison. */
  guardCheck?: boolean;
}

const MINUTE = 60;
const HOUR = 3600;

/** Points every stepSeconds from rate(t), times a noise factor drawn per point. */
function sample(name: string, durationSeconds: number, stepSeconds: number, rate: (t: number) => number, noise: () => number = () => 1): LoadTrace {
  const points: TracePoint[] = [];
  for (let t = 0; t <= durationSeconds; t += stepSeconds) points.push({ atSeconds: t, requestsPerSecond: Math.max(0, rate(t) * noise()) });
  return { name, points };
}

/** Multiplicative noise with a standard deviation of about `spread`, correlated from one point to the next. */
function correlatedNoise(random: SeededRandom, spread: number, correlation: number): () => number {
  let level = 0;
  return () => {
    const shock = (random.nextFloat() + random.nextFloat() + random.nextFloat() - 1.5) * 2 * spread;
    level = correlation * level + Math.sqrt(1 - correlation * correlation) * shock;
    return Math.max(0.05, 1 + level);
  };
}

export function diurnalTrace(random: SeededRandom): LoadTrace {
  // A day: quiet night, a morning ramp, a lunch bump and an evening peak, with 8 % noise.
  const noise = correlatedNoise(random, 0.08, 0.7);
  return sample('diurnal', 24 * HOUR, MINUTE, (t) => {
    const hour = t / HOUR;
    const day = 0.5 - 0.5 * Math.cos((2 * Math.PI * (hour - 4)) / 24);
    const lunch = Math.exp(-(((hour - 12.5) / 0.75) ** 2));
    const evening = Math.exp(-(((hour - 20) / 1.5) ** 2));
    return 250 + 1700 * day + 500 * lunch + 700 * evening;
  }, noise);
}

export function stepTrace(): LoadTrace {
  // 400 requests/s, then five times that for 30 minutes, then back.
  return { name: 'step-5x', points: [
    { atSeconds: 0, requestsPerSecond: 400 }, { atSeconds: 10 * MINUTE, requestsPerSecond: 400 },
    { atSeconds: 10 * MINUTE + 1, requestsPerSecond: 2000 }, { atSeconds: 40 * MINUTE, requestsPerSecond: 2000 },
    { atSeconds: 40 * MINUTE + 1, requestsPerSecond: 400 }, { atSeconds: 70 * MINUTE, requestsPerSecond: 400 },
  ] };
}

export function flashCrowdTrace(): LoadTrace {
  // 300 requests/s; at 20 minutes ten times that for 2 minutes.
  return { name: 'flash-crowd-10x', points: [
    { atSeconds: 0, requestsPerSecond: 300 }, { atSeconds: 20 * MINUTE, requestsPerSecond: 300 },
    { atSeconds: 20 * MINUTE + 1, requestsPerSecond: 3000 }, { atSeconds: 22 * MINUTE, requestsPerSecond: 3000 },
    { atSeconds: 22 * MINUTE + 1, requestsPerSecond: 300 }, { atSeconds: 50 * MINUTE, requestsPerSecond: 300 },
  ] };
}

export function slowRampTrace(): LoadTrace {
  // From 200 to 2400 requests/s over 90 minutes, then steady for 30.
  return { name: 'slow-ramp', points: [
    { atSeconds: 0, requestsPerSecond: 200 }, { atSeconds: 90 * MINUTE, requestsPerSecond: 2400 },
    { atSeconds: 120 * MINUTE, requestsPerSecond: 2400 },
  ] };
}

export function noisyTrace(random: SeededRandom): LoadTrace {
  // Around 1200 requests/s with 30 % noise every 10 seconds, and a burst of 2.5x for 20-60 s every few minutes.
  const noise = correlatedNoise(random, 0.3, 0.6);
  const bursts: [number, number][] = [];
  for (let t = 3 * MINUTE; t < 60 * MINUTE; t += (3 + random.nextInt(5)) * MINUTE) bursts.push([t, t + 20 + random.nextInt(41)]);
  return sample('noisy', 60 * MINUTE, 10, (t) => (bursts.some(([from, to]) => t >= from && t < to) ? 3000 : 1200), noise);
}

export function steadyTrace(name: string, random: SeededRandom, rate: number, minutes: number): LoadTrace {
  const noise = correlatedNoise(random, 0.05, 0.5);
  return sample(name, minutes * MINUTE, MINUTE, () => rate, noise);
}

export function metricsOutageTrace(random: SeededRandom): LoadTrace {
  // 2000 requests/s falling to 700 between minutes 20 and 40, a surge back to 1800 at minute 42,
  // falling to 600 after minute 60; metrics fail from minute 25 to 50.
  const noise = correlatedNoise(random, 0.04, 0.5);
  return sample('metrics-outage', 90 * MINUTE, MINUTE, (t) => {
    const minute = t / MINUTE;
    if (minute < 20) return 2000;
    if (minute < 40) return 2000 - (1300 * (minute - 20)) / 20;
    if (minute < 42) return 700;
    if (minute < 60) return 1800;
    if (minute < 70) return 1800 - (1200 * (minute - 60)) / 10;
    return 600;
  }, noise);
}

/** The built-in scenarios, in report order. */
export function builtInScenarios(seed: number): Scenario[] {
  const random = new SeededRandom(seed);
  return [
    { name: 'diurnal', description: 'a day: night 250 req/s, lunch and evening peaks near 2600 req/s, 8 % noise', trace: diurnalTrace(random.fork()), faults: {} },
    { name: 'step-5x', description: '400 req/s, then 2000 for 30 minutes', trace: stepTrace(), faults: {} },
    { name: 'flash-crowd-10x', description: '300 req/s, 3000 for 2 minutes', trace: flashCrowdTrace(), faults: {} },
    { name: 'slow-ramp', description: '200 to 2400 req/s over 90 minutes', trace: slowRampTrace(), faults: {} },
    { name: 'noisy', description: '1200 req/s with 30 % noise and 2.5x bursts of 20-60 s', trace: noisyTrace(random.fork()), faults: {} },
    {
      name: 'dependency-slowdown',
      description: '1500 req/s; the dependency answers 12x slower for 20 minutes',
      trace: steadyTrace('dependency-slowdown', random.fork(), 1500, 90),
      faults: { dependencySlowdown: { fromSeconds: 30 * MINUTE, toSeconds: 50 * MINUTE, latencyFactor: 12 } },
    },
    {
      name: 'metrics-outage',
      description: 'load falls from 2000 to 700 req/s and surges back to 1800 while metrics fail for 25 minutes (70 % of instances and the pool)',
      trace: metricsOutageTrace(random.fork()),
      faults: { metricsOutage: { fromSeconds: 25 * MINUTE, toSeconds: 50 * MINUTE, missingInstancePercent: 70 } },
    },
    {
      name: 'buggy-metric',
      description: 'steady 800 req/s; from minute 10 a bug reports 10x the real in-flight count',
      trace: steadyTrace('buggy-metric', random.fork(), 800, 30),
      faults: { buggyMetric: { fromSeconds: 10 * MINUTE, inflightFactor: 10 } },
      guardCheck: true,
    },
  ];
}
