import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_KINDS } from '../../src/sim/faults.ts';
import { runSimulation } from '../../src/sim/simulation.ts';

const ALL_FAULTS = [...FAULT_KINDS];

test('the same seed and options give the same run, event for event', () => {
  const options = { seed: 42, members: 5, ticks: 2_000, faults: ALL_FAULTS, bugs: [] };
  const first = runSimulation(options);
  const second = runSimulation(options);
  assert.deepEqual(second, first);
  assert.ok(first.trace.length > 10, 'the trace records the run');
});

test('different seeds give different runs', () => {
  const a = runSimulation({ seed: 1, members: 3, ticks: 1_000, faults: ALL_FAULTS, bugs: [] });
  const b = runSimulation({ seed: 2, members: 3, ticks: 1_000, faults: ALL_FAULTS, bugs: [] });
  assert.notDeepEqual(a.trace, b.trace);
});

test('without faults a 3-member cluster commits steadily and its history is linearizable', () => {
  const report = runSimulation({ seed: 7, members: 3, ticks: 2_000, faults: [], bugs: [] });
  assert.deepEqual(report.violations, []);
  assert.equal(report.linearizability, 'linearizable');
  assert.ok(report.commits > 200, `expected many commits, got ${report.commits}`);
  assert.ok(report.operations > 200, `expected many client operations, got ${report.operations}`);
  assert.equal(report.elections, 1, 'with no faults the first leader stays');
});

test('3- and 5-member clusters stay safe and live under every fault', () => {
  for (const members of [3, 5]) {
    for (let seed = 1; seed <= 10; seed++) {
      const report = runSimulation({ seed, members, ticks: 5_000, faults: ALL_FAULTS, bugs: [] });
      assert.deepEqual(report.violations, [], `members ${members}, seed ${seed}`);
      assert.equal(report.linearizability, 'linearizable', `members ${members}, seed ${seed}`);
      assert.ok(report.elections > 1, 'faults caused leader changes');
    }
  }
});

test('the liveness check fails a cluster that cannot make progress in time', () => {
  // One tick after healing is far too short for an election and a commit: the check must say so.
  const report = runSimulation({ seed: 3, members: 5, ticks: 300, faults: ['crash', 'partition'], bugs: [], livenessTicks: 1 });
  assert.equal(report.violations[0]?.property, 'liveness');
});
