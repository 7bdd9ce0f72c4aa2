// A short `concord chaos --system` run: three store members with their control planes, two
// store-fed proxies, an autoscaled pool of real processes and HTTP load, through every fault kind
// once. The checkers themselves are shown to catch doctored histories in system-checks.test.ts.
// Every check must pass: idempotent requests through a surviving proxy never fail (those in flight
// to the hung backend are retried on another once firstByteMs passes).

import { rmSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SYSTEM_FAULT_KINDS } from '../../src/chaos/system/fault-schedule.ts';
import { SYSTEM_TIMINGS } from '../../src/chaos/system/system-config.ts';
import { runSystemChaos } from '../../src/chaos/system/system-run.ts';

test('30 s of whole-system chaos: requests survive, failures are detected, one autoscaler at a time, nothing leaks, the store stays linearizable', async (t) => {
  const report = await runSystemChaos({ durationSeconds: 30, seed: 20261202 });
  t.diagnostic(`requests ${report.requests} (success ${JSON.stringify(report.successRate)}; ${report.toRestartingProxy} to a restarting proxy, ${report.duringPoolOutage} in pool outages), ` +
    `detection ${JSON.stringify(report.detectionMs)}, outages ${JSON.stringify(report.poolOutages)}, instances ${JSON.stringify(report.instances)}, fault phase ${report.faultPhaseSeconds} s`);
  assert.deepEqual(report.failedChecks, [], `problems: ${report.problems.join(' | ')}; work dir kept at ${report.workDir}`);
  assert.equal(report.failedIdempotentRequests, 0, 'no idempotent request through a surviving proxy failed');

  for (const kind of SYSTEM_FAULT_KINDS) assert.equal(report.faults[kind], 1, `fault ${kind} injected once`);
  assert.ok(report.requestsByPriority.critical.requests > 50 && report.requestsByPriority.default.requests > 200, 'load ran through the faults at both priorities');
  assert.equal(report.detectionMs.length, 2, 'a killed and a hung backend');
  // Marked down within a few check rounds of the injection (fall × interval + timeout), with slack for a loaded machine.
  const roundMs = SYSTEM_TIMINGS.healthFall * SYSTEM_TIMINGS.healthIntervalMs + SYSTEM_TIMINGS.healthTimeoutMs;
  for (const detection of report.detectionMs) assert.ok(detection.detectionMs !== null && detection.detectionMs <= 10 * roundMs, `${detection.kind} detected in ${detection.detectionMs} ms`);
  assert.equal(report.maxConcurrentAutoscalers, 1);
  assert.ok(report.autoscalerLeaders >= 3, 'the first leader, and a new one after each of the two leader kills, acted');
  assert.equal(report.fencingTokenRegressions, 0);
  assert.equal(report.freezes, 1);
  assert.equal(report.killSwitchViolations, 0);
  assert.equal(report.leakedInstances, 0);
  assert.equal(report.orphanedRecords, 0);
  assert.equal(report.instances.launched, report.instances.running + report.instances.terminated);
  assert.ok(report.instances.terminated >= 3, 'the killed backend and the instances that died with their leaders are counted as terminated');
  assert.equal(report.linearizable, true);
  assert.equal(report.lostWrites, 0);
  assert.ok(report.kvOperations > 100, 'the store workload made progress');
  rmSync(report.workDir, { recursive: true, force: true });
});
