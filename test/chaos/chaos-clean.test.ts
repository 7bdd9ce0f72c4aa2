// A short `concord chaos` run against correct members: every fault kind occurs, the leader changes,
// and every check passes. (The same checks catching deliberate defects: chaos-bugs.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_KINDS, runChaos } from '../../src/chaos/chaos-run.ts';

test('60 s of kills, power failures, pauses and partitions: linearizable, nothing acknowledged lost, members converge', async (t) => {
  const report = await runChaos({ members: 3, durationSeconds: 60, seed: 20261202 });
  t.diagnostic(`ops ${report.ops}, unknown ${report.unknown}, leader changes ${report.leaderChanges}, longest write gap ${report.longestWriteGapMs} ms, faults ${JSON.stringify(report.faults)}`);
  assert.deepEqual(report.problems, [], `work dir kept at ${report.workDir}`);
  assert.equal(report.linearizable, true);
  assert.equal(report.lostWrites, 0);
  assert.equal(report.converged, true);
  assert.ok(report.acked > 100, 'the workload made progress through the faults');
  for (const kind of FAULT_KINDS) assert.ok(report.faults[kind] >= 1, `fault kind ${kind} occurred`);
  assert.ok(report.leaderChanges >= 1, 'the leader changed at least once');
  assert.equal(report.passed, true);
});
