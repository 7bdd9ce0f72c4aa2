// The checkers of `concord chaos --system`, fed doctored histories: each catches the defect it is
// there for (two autoscalers acting at once, an action while frozen, a leaked instance, a failed
// request), and passes a clean history. The whole run against real processes: chaos-system.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { acceptedActions, checkFencing } from '../../src/chaos/system/autoscaler-fencing-check.ts';
import { detectFailures } from '../../src/chaos/system/detection-check.ts';
import { MIN_FAULT_PHASE_MS, ROUND_MS, scheduleFaults, SYSTEM_FAULT_KINDS } from '../../src/chaos/system/fault-schedule.ts';
import { accountInstances } from '../../src/chaos/system/instance-accounting-check.ts';
import { checkKillSwitch } from '../../src/chaos/system/kill-switch-check.ts';
import type { StoreChange } from '../../src/chaos/system/store-history.ts';
import { judgeTraffic, type RequestOutcome } from '../../src/chaos/system/traffic-check.ts';

const POOL = 'web';

function intent(revision: number, token: number, requestId: string, kind: 'launch' | 'terminate' = 'launch'): StoreChange {
  return {
    revision: BigInt(revision), type: 'put', key: `/concord/autoscale/pools/${POOL}/actions/${requestId}`,
    value: JSON.stringify({ kind, requestId, fencingToken: String(token), leader: `m${token}`, startedAtMs: revision }),
  };
}

function outcome(revision: number, token: number, requestId: string, kind: 'launch' | 'terminate' = 'launch'): StoreChange {
  return {
    revision: BigInt(revision), type: 'put', key: `/concord/events/${String(revision).padStart(15, '0')}-m${token}-000001`,
    value: JSON.stringify({ atMs: revision, source: 'autoscaler', kind, by: `m${token}`, pool: POOL, message: `${kind} ${requestId}`, data: { requestId, instanceId: `i-${requestId}`, fencingToken: String(token) } }),
  };
}

function freezeChange(revision: number, type: 'put' | 'delete', key = '/concord/autoscale/freeze'): StoreChange {
  return { revision: BigInt(revision), type, key, value: type === 'put' ? JSON.stringify({ by: 'test', reason: 'test', atMs: revision }) : '' };
}

test('fencing: one leader after another passes; a deposed leader acting after its successor is caught', () => {
  const clean = [intent(10, 5, 'a'), outcome(11, 5, 'a'), intent(20, 9, 'b'), outcome(21, 9, 'b'), intent(30, 9, 'c', 'terminate'), outcome(31, 9, 'c', 'terminate')];
  const verdict = checkFencing(acceptedActions(clean));
  assert.deepEqual(verdict, { actions: 6, leaders: 2, maxConcurrentAutoscalers: 1, tokenRegressions: [] });

  // Leader 5 was paused after its intent; leader 9 took over; leader 5 wakes and its outcome lands.
  const interleaved = [intent(10, 5, 'a'), intent(20, 9, 'b'), outcome(21, 9, 'b'), outcome(25, 5, 'a'), intent(30, 9, 'c')];
  const caught = checkFencing(acceptedActions(interleaved));
  assert.equal(caught.maxConcurrentAutoscalers, 2);
  assert.equal(caught.tokenRegressions.length, 1);
  assert.match(caught.tokenRegressions[0]!, /outcome of launch a at revision 25 carries fencing token 5 .* older than token 9/);
});

test('fencing: records that are not accepted actions (other keys, other events, bad JSON) are ignored', () => {
  const noise: StoreChange[] = [
    { revision: 1n, type: 'put', key: `/concord/autoscale/pools/${POOL}/status`, value: '{"desired":2}' },
    { revision: 2n, type: 'put', key: '/concord/events/000000000000002-m1-000001', value: JSON.stringify({ atMs: 2, source: 'autoscaler', kind: 'decision', by: 'm1', message: 'desired 2' }) },
    { revision: 3n, type: 'put', key: `/concord/autoscale/pools/${POOL}/actions/x`, value: 'not json' },
    { revision: 4n, type: 'delete', key: `/concord/autoscale/pools/${POOL}/actions/y`, value: '' },
  ];
  assert.deepEqual(acceptedActions(noise), []);
  assert.equal(checkFencing([]).maxConcurrentAutoscalers, 0);
});

test('kill switch: an intent committed while frozen is a violation, across a leader change and for a pool freeze', () => {
  const honoured = [intent(10, 5, 'a'), freezeChange(11, 'put'), outcome(12, 5, 'a'), freezeChange(20, 'delete'), intent(21, 9, 'b')];
  assert.deepEqual(checkKillSwitch(honoured), { freezes: 1, violations: [] });

  const violated = [freezeChange(11, 'put'), intent(15, 9, 'b'), freezeChange(20, 'delete')];
  const verdict = checkKillSwitch(violated);
  assert.equal(verdict.violations.length, 1);
  assert.match(verdict.violations[0]!, /launch b of pool web \(fencing token 9, m9\) committed at revision 15 while \/concord\/autoscale\/freeze was set/);

  const poolFrozen = [freezeChange(11, 'put', `/concord/autoscale/freeze/${POOL}`), intent(15, 9, 'c', 'terminate')];
  assert.equal(checkKillSwitch(poolFrozen).violations.length, 1);
  const otherPoolFrozen = [freezeChange(11, 'put', '/concord/autoscale/freeze/other'), intent(15, 9, 'c')];
  assert.equal(checkKillSwitch(otherPoolFrozen).violations.length, 0);
});

test('instances: launched = running + terminated; unmanaged and surviving processes leak, records without a process are orphaned', () => {
  const clean = accountInstances({
    seenProcesses: [{ instanceId: 'web-1-0', pid: 11 }, { instanceId: 'web-2-1', pid: 12 }, { instanceId: 'web-1-0', pid: 21 }],
    runningAtEnd: [{ instanceId: 'web-1-0', pid: 21 }, { instanceId: 'web-3-1', pid: 22 }],
    recordedAtEnd: ['web-1-0', 'web-3-1'],
    survivorsAfterStop: [],
  });
  assert.deepEqual(clean, { launched: 4, running: 2, terminated: 2, leakedInstances: 0, orphanedRecords: 0, problems: [] });

  const leaky = accountInstances({
    seenProcesses: [{ instanceId: 'web-1-0', pid: 11 }],
    runningAtEnd: [{ instanceId: 'web-1-0', pid: 11 }, { instanceId: 'web-9-9', pid: 99 }],
    recordedAtEnd: ['web-1-0', 'web-5-2'],
    survivorsAfterStop: [{ instanceId: 'web-1-0', pid: 11 }],
  });
  assert.equal(leaky.leakedInstances, 2, 'web-9-9 is managed by nobody; web-1-0 outlived every member');
  assert.equal(leaky.orphanedRecords, 1, 'web-5-2 is recorded but has no process');
  assert.equal(leaky.launched, leaky.running + leaky.terminated);
});

test('detection: injection to marked-down, or to removal when that came first; nothing within the window is null', () => {
  const failures = [
    { kind: 'hang' as const, backend: '127.0.0.1:9001', instanceId: 'web-9001-0', atMs: 1_000 },
    { kind: 'kill' as const, backend: '127.0.0.1:9002', instanceId: 'web-9002-1', atMs: 5_000 },
    { kind: 'kill' as const, backend: '127.0.0.1:9003', instanceId: 'web-9003-2', atMs: 8_000 },
  ];
  const downs = [
    { atMs: 500, backend: '127.0.0.1:9001' }, // an earlier, unrelated transition
    { atMs: 1_700, backend: '127.0.0.1:9001', checkerDetectionMs: 512.4 },
    { atMs: 5_900, backend: '127.0.0.1:9002' },
  ];
  const removals = [{ atMs: 5_300, instanceId: 'web-9002-1' }, { atMs: 30_000, instanceId: 'web-9003-2' }];
  // web-9003-2's removal comes long after the window: a later failure of a replacement that reused the id.
  assert.deepEqual(detectFailures(failures, downs, removals, { clockSlackMs: 50, removalSlackMs: 1_000, windowMs: 10_000 }), [
    { kind: 'hang', backend: '127.0.0.1:9001', detectionMs: 700, by: 'marked-down', markedDownMs: 700, checkerDetectionMs: 512 },
    { kind: 'kill', backend: '127.0.0.1:9002', detectionMs: 300, by: 'removed', markedDownMs: 900 },
    { kind: 'kill', backend: '127.0.0.1:9003', detectionMs: null, by: 'undetected', markedDownMs: null },
  ]);
  // A removal stamped with its period's start, a little before the injection, still counts (as 0 ms).
  const early = detectFailures([failures[1]!], [], [{ atMs: 4_800, instanceId: 'web-9002-1' }], { clockSlackMs: 50, removalSlackMs: 1_000, windowMs: 10_000 });
  assert.deepEqual(early, [{ kind: 'kill', backend: '127.0.0.1:9002', detectionMs: 0, by: 'removed', markedDownMs: null }]);
});

test('traffic: failed GETs through a surviving proxy count; a restarting proxy, pool outages and failed POSTs are set apart', () => {
  const request = (proxy: string, startMs: number, ok: boolean, options: Partial<RequestOutcome> = {}): RequestOutcome => ({
    proxy, priority: 'default', idempotent: true, startMs, endMs: startMs + 10, ok, result: ok ? '200' : '502', ...options,
  });
  const outcomes = [
    request('p1', 0, true), request('p1', 10, true, { priority: 'critical' }),
    request('p2', 100, false, { result: 'ECONNREFUSED' }), // p2 restarting
    request('p1', 200, false), // pool outage
    request('p1', 300, false, { idempotent: false }), // a failed POST is not judged by the rule
    request('p1', 400, false, { priority: 'critical', result: '504' }), // in flight to a hung backend
    request('p2', 500, false), // a plain failure
  ];
  const verdict = judgeTraffic(outcomes, new Map([['p2', [{ fromMs: 90, toMs: 150 }]]]), [{ fromMs: 190, toMs: 250 }], [{ fromMs: 350, toMs: 450 }]);
  assert.equal(verdict.requests, 7);
  assert.equal(verdict.toRestartingProxy, 1);
  assert.equal(verdict.duringPoolOutage, 1);
  assert.equal(verdict.judged, 5);
  assert.equal(verdict.failedIdempotent, 2);
  assert.equal(verdict.timedOutOnHungBackend, 1);
  assert.deepEqual(verdict.byPriority.critical, { requests: 2, succeeded: 1, successRate: 0.5 });
  assert.deepEqual(verdict.byPriority.default, { requests: 3, succeeded: 1, successRate: 0.33333 });
});

test('fault schedule: every kind once, in its own slot, the same for the same seed; too short a run is refused', () => {
  const durationMs = 40_000;
  const schedule = scheduleFaults(durationMs, new SeededRandom(7));
  assert.deepEqual([...schedule.map((fault) => fault.kind)].sort(), [...SYSTEM_FAULT_KINDS].sort());
  const slotMs = durationMs / SYSTEM_FAULT_KINDS.length;
  schedule.forEach((fault, index) => {
    assert.ok(fault.atMs >= index * slotMs && fault.atMs < (index + 1) * slotMs, `${fault.kind} starts in slot ${index}`);
    assert.ok(fault.holdMs >= 1_500 && fault.holdMs < 3_000);
  });
  assert.deepEqual(scheduleFaults(durationMs, new SeededRandom(7)), schedule);
  assert.notDeepEqual(scheduleFaults(durationMs, new SeededRandom(8)).map((fault) => fault.kind), schedule.map((fault) => fault.kind));
  assert.throws(() => scheduleFaults(MIN_FAULT_PHASE_MS - 1, new SeededRandom(1)), /needs at least 30 s/);
});

test('fault schedule: a longer run repeats every kind once per round, in order of time', () => {
  const schedule = scheduleFaults(2 * ROUND_MS + 30_000, new SeededRandom(3));
  assert.equal(schedule.length, 2 * SYSTEM_FAULT_KINDS.length);
  for (const kind of SYSTEM_FAULT_KINDS) assert.equal(schedule.filter((fault) => fault.kind === kind).length, 2, kind);
  for (let i = 1; i < schedule.length; i++) assert.ok(schedule[i]!.atMs > schedule[i - 1]!.atMs);
});
