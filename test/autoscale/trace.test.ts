// The trace format operators replay their own traffic with, and the seeded trace generators.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtInScenarios } from '../../src/autoscale/sim/scenarios.ts';
import { TraceReader } from '../../src/autoscale/sim/trace.ts';
import { formatTraceCsv, parseTraceCsv, TraceError } from '../../src/autoscale/sim/trace-csv.ts';

test('a CSV trace: optional header, comments and blank lines, points joined by straight lines', () => {
  const trace = parseTraceCsv('# my service, Monday\nseconds,requests_per_second\n\n0, 100\n60,160\n120 , 40\n', 'monday.csv');
  assert.deepEqual(trace.points, [{ atSeconds: 0, requestsPerSecond: 100 }, { atSeconds: 60, requestsPerSecond: 160 }, { atSeconds: 120, requestsPerSecond: 40 }]);
  const reader = new TraceReader(trace.points);
  assert.deepEqual([0, 30, 60, 90, 120, 500].map((t) => reader.rateAt(t)), [100, 130, 160, 100, 40, 40]);
  assert.deepEqual(parseTraceCsv(formatTraceCsv(trace), 'again').points, trace.points);
});

test('bad trace files are refused with the line and what to fix', () => {
  const refused = (text: string, pattern: RegExp) => {
    assert.throws(() => parseTraceCsv(text, 't.csv'), (error: unknown) => error instanceof TraceError && error.code === 'CONCORD_E_TRACE_INVALID' && pattern.test(error.message));
  };
  refused('0,10\n5,abc\n', /t\.csv line 2: requests_per_second 'abc' is not a non-negative number/);
  refused('0,10\n5,-1\n', /line 2: requests_per_second '-1'/);
  refused('0,10\n5\n', /line 2: expected 'seconds,requests_per_second'/);
  refused('10,10\n5,10\n', /line 2: time 5 s goes back from 10 s; sort the points by time/);
  refused('0,10\n', /at least two points/);
  refused('0,10\n99999999,10\n', /past the longest trace/);
});

test('built-in traces are deterministic for a seed and differ between seeds', () => {
  const points = (seed: number) => builtInScenarios(seed).map((scenario) => scenario.trace.points);
  assert.deepEqual(points(7), points(7));
  assert.notDeepEqual(points(7), points(8));
  const names = builtInScenarios(1).map((scenario) => scenario.name);
  assert.deepEqual(names, ['diurnal', 'step-5x', 'flash-crowd-10x', 'slow-ramp', 'noisy', 'dependency-slowdown', 'metrics-outage', 'buggy-metric']);
});

test('the built-in traces have the shapes they promise', () => {
  const byName = new Map(builtInScenarios(1).map((scenario) => [scenario.name, new TraceReader(scenario.trace.points)]));
  const step = byName.get('step-5x')!;
  assert.equal(step.rateAt(9 * 60) * 5, step.rateAt(11 * 60));
  const flash = byName.get('flash-crowd-10x')!;
  assert.deepEqual([flash.rateAt(19 * 60), flash.rateAt(21 * 60), flash.rateAt(23 * 60)], [300, 3000, 300]);
  const ramp = byName.get('slow-ramp')!;
  assert.deepEqual([ramp.rateAt(0), ramp.rateAt(45 * 60), ramp.rateAt(100 * 60)], [200, 1300, 2400]);
});
