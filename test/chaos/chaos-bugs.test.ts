// `concord chaos` must be able to fail: with each deliberate server defect switched on, the run's
// checks catch it. Each run injects the faults that expose its defect.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { runChaos } from '../../src/chaos/chaos-run.ts';
import type { ChaosReport, FaultKind } from '../../src/chaos/chaos-run.ts';

async function runWithBug(bug: string, faultKinds: FaultKind[]): Promise<ChaosReport> {
  const report = await runChaos({ members: 3, durationSeconds: 25, seed: 7, bugs: [bug], faultKinds });
  // The failed run keeps its work dir for a postmortem; a test does not need it.
  rmSync(report.workDir, { recursive: true, force: true });
  return report;
}

test('acknowledging WAL writes before they are on disk loses acknowledged writes in a power failure', async () => {
  const report = await runWithBug('ack-before-fsync', ['power-failure']);
  assert.equal(report.passed, false);
  assert.ok(report.lostWrites > 0, `lost writes found: ${report.problems.join('; ')}`);
});

test('serving linearizable reads without a ReadIndex round is caught as a linearizability violation', async () => {
  const report = await runWithBug('read-without-read-index', ['partition-leader', 'pause']);
  assert.equal(report.passed, false);
  assert.equal(report.linearizabilityVerdict, 'not-linearizable');
});

test('followers expiring leases on their own clock make the members diverge', async () => {
  const report = await runWithBug('follower-lease-expiry', ['pause']);
  assert.equal(report.passed, false);
  assert.equal(report.converged, false, report.problems.join('; '));
});
