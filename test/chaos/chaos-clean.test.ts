// `concord chaos` against correct members, run as a user runs it: the default length on 3 members,
// and a shorter run on 5. Every check passes, exit code 0, the report on the last stdout line.
// (The same checks catching deliberate defects: chaos-bugs.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_KINDS } from '../../src/chaos/chaos-run.ts';
import type { ChaosReport } from '../../src/chaos/chaos-run.ts';
import { lastLineJson, runCli } from '../support/cli-run.ts';

async function chaos(args: string[]): Promise<ChaosReport> {
  const outcome = await runCli(['chaos', ...args, '--json']);
  const report = lastLineJson<ChaosReport>(outcome.stdout);
  assert.deepEqual(report.problems, [], `work dir kept at ${report.workDir}`);
  assert.equal(outcome.code, 0, outcome.stderr.slice(-2_000));
  return report;
}

test('the default run (60 s, 3 members) of kills, power failures, pauses and partitions: linearizable, nothing acknowledged lost, members converge', async (t) => {
  const report = await chaos(['--seed', '20261202']);
  t.diagnostic(`ops ${report.ops}, unknown ${report.unknown}, leader changes ${report.leaderChanges}, longest write gap ${report.longestWriteGapMs} ms, faults ${JSON.stringify(report.faults)}`);
  assert.equal(report.members, 3);
  assert.equal(report.durationSeconds, 60);
  assert.equal(report.linearizable, true);
  assert.equal(report.lostWrites, 0);
  assert.equal(report.converged, true);
  assert.ok(report.acked > 100, 'the workload made progress through the faults');
  for (const kind of FAULT_KINDS) assert.ok(report.faults[kind] >= 1, `fault kind ${kind} occurred`);
  assert.ok(report.leaderChanges >= 1, 'the leader changed at least once');
  assert.equal(report.passed, true);
});

test('five members for 30 s: linearizable, nothing acknowledged lost, members converge', async (t) => {
  const report = await chaos(['--members', '5', '--duration', '30', '--seed', '20261204']);
  t.diagnostic(`ops ${report.ops}, unknown ${report.unknown}, leader changes ${report.leaderChanges}, faults ${JSON.stringify(report.faults)}`);
  assert.equal(report.members, 5);
  assert.equal(report.linearizable, true);
  assert.equal(report.lostWrites, 0);
  assert.equal(report.converged, true);
  assert.ok(report.acked > 20, 'the workload made progress through the faults');
  assert.ok(Object.values(report.faults).reduce((sum, count) => sum + count, 0) >= 3, 'faults were injected');
  assert.equal(report.passed, true);
});
