// The overload benchmark's definitions on synthetic records: goodput, validity, critical success,
// and the settle time after a step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleTime, summarize, type RunContext } from '../../bench/overload-analysis.ts';
import type { LoadResult } from '../../bench/overload-load.ts';
import { PRIORITIES, type Priority } from '../../src/traffic/shed/priority.ts';

const MEASURE = { capacityRps: 400, sloMs: 100 };
const CONTEXT: RunContext = { frontCpuMicrosPerRequest: 50, frontCpuCores: 0.1, finalLimit: 10, minRttMs: 20, sheddingEvents: 0, backendWastedShare: 0, backendTimerLatenessP99Ms: 1, loadAverage: 0 };

interface Record {
  atMs: number;
  latencyMs: number;
  status: number;
  priority?: Priority;
  shed?: number;
}

function resultOf(records: Record[], windowMs: number): LoadResult {
  return {
    measuredStartMs: 1000,
    measuredEndMs: 1000 + windowMs,
    requests: {
      scheduledMs: records.map((r) => r.atMs),
      sentMs: records.map((r) => r.atMs),
      latencyMs: records.map((r) => r.latencyMs),
      status: records.map((r) => r.status),
      priority: records.map((r) => PRIORITIES.indexOf(r.priority ?? 'default')),
      shed: records.map((r) => r.shed ?? 0),
    },
    notSent: 0, sentTotal: records.length, lagP99Ms: 0, lagMaxMs: 0, connectionsOpened: 1, maxConnectionsBusy: 1, cpuCores: 0.1,
  };
}

test('goodput counts 2xx within the SLO; critical success is over critical requests sent; validity needs 95 % of the target', () => {
  const records: Record[] = [
    { atMs: 0, latencyMs: 30, status: 200, priority: 'critical' },
    { atMs: 10, latencyMs: 150, status: 200, priority: 'critical' }, // too slow: not good
    { atMs: 20, latencyMs: 1, status: 503, shed: 3 }, // refused by admission: not admitted
    { atMs: 30, latencyMs: 1000, status: -1 }, // a timeout: admitted, not good
    { atMs: 40, latencyMs: 40, status: 200, priority: 'sheddable' },
    { atMs: 50, latencyMs: 0, status: -2 }, // never sent
  ];
  const summary = summarize({ limiter: 'fixed', load: 0.0125, repeat: 0 }, resultOf(records, 1000), MEASURE, CONTEXT);
  assert.equal(summary.goodputFraction, 2 / 400, '2 good responses in 1 s, over 400/s');
  assert.equal(summary.criticalSuccess, 0.5);
  assert.equal(summary.shedFraction, 1 / 5, 'one of five sent requests was refused');
  assert.equal(summary.timeouts, 1);
  assert.equal(summary.notSent, 1);
  assert.equal(summary.offeredRps, 5, 'five sent in the 1 s window');
  assert.equal(summary.valid, true, 'target 0.0125 × 400 = 5/s');
  assert.equal(summarize({ limiter: 'fixed', load: 0.0132, repeat: 0 }, resultOf(records, 1000), MEASURE, CONTEXT).valid, false, '5 < 0.95 × 5.28');
  assert.equal(summary.admittedP99Ms, 1000);
  const late = { ...resultOf(records, 1000), lagP99Ms: 25 };
  assert.equal(summarize({ limiter: 'fixed', load: 0.0125, repeat: 0 }, late, MEASURE, CONTEXT).valid, false, 'a generator 25 ms late at p99 offered bursts');
  const starved = { ...CONTEXT, backendTimerLatenessP99Ms: 15 };
  assert.equal(summarize({ limiter: 'fixed', load: 0.0125, repeat: 0 }, resultOf(records, 1000), MEASURE, starved).valid, false, 'a starved backend');
});

/** 40 requests per 200 ms bin with the given latency, all 2xx. */
function steadyBins(fromBin: number, toBin: number, latencyMs: (bin: number) => number): Record[] {
  const records: Record[] = [];
  for (let bin = fromBin; bin < toBin; bin++) {
    for (let i = 0; i < 40; i++) records.push({ atMs: bin * 200 + i * 5, latencyMs: latencyMs(bin), status: 200 });
  }
  return records;
}

test('settle time: the first bin from which the run stays near its final state', () => {
  // 20 bins of 200 ms. The first 5 are slow (150 ms: outside 1.5 × the final 30 ms, and no goodput),
  // then the system holds 30 ms: settled at 5 × 200 = 1,000 ms.
  const stepped = resultOf([...steadyBins(0, 5, () => 150), ...steadyBins(5, 20, () => 30)], 4000);
  assert.deepEqual(settleTime(stepped, MEASURE), { settleMs: 1000, binsInBand: '.....+++++++++++++++' });
  // Already there: 0. One bad bin late in the run is tolerated (80 % of the rest in band).
  const noisy = resultOf([...steadyBins(0, 15, () => 30), ...steadyBins(15, 16, () => 90), ...steadyBins(16, 20, () => 30)], 4000);
  assert.equal(settleTime(noisy, MEASURE).settleMs, 0);
  // Latency that keeps growing never stays near its final value.
  const growing = resultOf(steadyBins(0, 20, (bin) => 20 * 1.25 ** bin), 4000);
  const settled = settleTime(growing, MEASURE).settleMs;
  assert.ok(settled === null || settled >= 2000, `a run whose latency grows 25 % per bin settled at ${settled}`);
});
