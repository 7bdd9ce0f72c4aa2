// `concord chaos` must be able to fail: with each deliberate server defect switched on, the run's
// checks catch it, and the command says so the way a user sees it: exit code 1, FAIL with the
// check that failed, the work dir kept, and the command line that replays the fault schedule (or
// with --json, the report as one JSON object on the last line). Each run injects the faults that
// expose its defect.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosReport } from '../../src/chaos/chaos-run.ts';
import { lastLineJson, runCli } from '../support/cli-run.ts';

const SEED = 7;
const DURATION_SECONDS = 25;

function argsFor(bug: string, faults: string): string[] {
  return ['chaos', '--members', '3', '--duration', String(DURATION_SECONDS), '--seed', String(SEED), '--faults', faults, '--bug', bug];
}

/** A failed run keeps its work dir for the postmortem, with its report; a test checks it, then removes it. */
function checkKeptWorkDir(workDir: string): void {
  try {
    assert.ok(existsSync(workDir), `the failed run's work dir ${workDir} is kept`);
    const kept = JSON.parse(readFileSync(join(workDir, 'report.json'), 'utf8')) as ChaosReport & { events: string[] };
    assert.equal(kept.passed, false);
    assert.ok(kept.events.length > 0, 'the report lists what happened');
    assert.ok(existsSync(join(workDir, 'history.json')), 'and the history is kept for the checker');
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

test('acknowledging WAL writes before they are on disk loses acknowledged writes in a power failure (--json)', async () => {
  const outcome = await runCli([...argsFor('ack-before-fsync', 'power-failure'), '--json']);
  assert.equal(outcome.code, 1, outcome.stderr.slice(-2_000));
  const report = lastLineJson<ChaosReport>(outcome.stdout);
  for (const field of ['ops', 'acked', 'lostWrites', 'linearizable', 'converged', 'faults', 'leaderChanges'] as const) assert.ok(field in report, `the JSON has ${field}`);
  assert.equal(report.passed, false);
  assert.ok(report.lostWrites > 0, `lost writes found: ${report.problems.join('; ')}`);
  assert.ok(report.faults['power-failure'] >= 1);
  assert.equal(report.replay, `npx concord chaos --members 3 --duration ${DURATION_SECONDS} --seed ${SEED} --faults power-failure --bug ack-before-fsync`);
  checkKeptWorkDir(report.workDir);
});

test('serving linearizable reads without a ReadIndex round is caught as a linearizability violation (text report)', async () => {
  const outcome = await runCli(argsFor('read-without-read-index', 'partition-leader,pause'));
  assert.equal(outcome.code, 1, outcome.stderr.slice(-2_000));
  assert.match(outcome.stdout, /^FAIL: /);
  assert.match(outcome.stdout, /linearizable: not-linearizable/);
  const replay = /replay the fault schedule: (.*)/.exec(outcome.stdout)?.[1];
  assert.equal(replay, `npx concord chaos --members 3 --duration ${DURATION_SECONDS} --seed ${SEED} --faults partition-leader,pause --bug read-without-read-index`);
  const workDir = /report, history and member logs: (.*)/.exec(outcome.stdout)?.[1];
  assert.ok(workDir, outcome.stdout);
  checkKeptWorkDir(workDir);
});

test('followers expiring leases on their own clock make the members diverge (--json)', async () => {
  const outcome = await runCli([...argsFor('follower-lease-expiry', 'pause'), '--json']);
  assert.equal(outcome.code, 1, outcome.stderr.slice(-2_000));
  const report = lastLineJson<ChaosReport>(outcome.stdout);
  assert.equal(report.passed, false);
  assert.equal(report.converged, false, report.problems.join('; '));
  checkKeptWorkDir(report.workDir);
});
