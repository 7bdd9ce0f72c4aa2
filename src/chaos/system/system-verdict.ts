// The verdict of a system chaos run: every check judged from what the run recorded (the clients'
// outcomes, the store's history, the operating system's processes), into the report.

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acceptedActions, checkFencing } from './autoscaler-fencing-check.ts';
import { detectFailures, type DetectionWindows, type HealthTransition, type InstanceRemoval } from './detection-check.ts';
import { SYSTEM_FAULT_KINDS } from './fault-schedule.ts';
import type { HttpLoad } from './http-load.ts';
import { accountInstances } from './instance-accounting-check.ts';
import { checkKillSwitch } from './kill-switch-check.ts';
import type { StoreChange } from './store-history.ts';
import { SYSTEM_TIMINGS } from './system-config.ts';
import type { Injection } from './system-faults.ts';
import type { PoolOutage, SystemChaosReport, SystemCheck } from './system-report.ts';
import type { SystemChaosOptions } from './system-run.ts';
import { judgeTraffic } from './traffic-check.ts';

/**
 * A pool outage (every instance died with the autoscaler's leader) must end within this: a new
 * leader is elected (lease TTL), reconciles and relaunches (a few periods), the instances pass a
 * check and reach the proxies (the membership lease, a health interval); three times that, plus
 * the longest hold of a freeze.
 */
const MAX_POOL_OUTAGE_MS = 3 * (SYSTEM_TIMINGS.autoscaleLeaseTtlSeconds * 1000 + SYSTEM_TIMINGS.membershipLeaseTtlSeconds * 1000 + 3 * SYSTEM_TIMINGS.autoscalePeriodMs + 2_000) + 3_000;
/**
 * Detection: a check round is fall × interval + timeout; a failure must be detected within ten
 * rounds plus the membership lease (the member checking the backend may itself be the one killed).
 */
const DETECTION_WINDOWS: DetectionWindows = {
  clockSlackMs: 50,
  removalSlackMs: SYSTEM_TIMINGS.autoscalePeriodMs,
  windowMs: 10 * (SYSTEM_TIMINGS.healthFall * SYSTEM_TIMINGS.healthIntervalMs + SYSTEM_TIMINGS.healthTimeoutMs) + SYSTEM_TIMINGS.membershipLeaseTtlSeconds * 1000,
};
/** A pool outage ends once this many requests in a row (by start time) succeeded: service is restored. */
const RESTORED_AFTER_SUCCESSES = 20;

export interface JudgeInput {
  options: SystemChaosOptions;
  elapsedSeconds: number;
  workDir: string;
  changes: StoreChange[];
  /** False: the history could not be read; the checks that need it fail. */
  historyRead: boolean;
  /** The pool reached its steady state after the faults (recorded = running, at least min). */
  settled: boolean;
  injection: Injection;
  outcomes: HttpLoad['outcomes'];
  runningAtEnd: { instanceId: string; pid: number }[];
  recordedAtEnd: string[];
  survivors: { instanceId: string; pid: number }[];
  seen: { instanceId: string; pid: number }[];
  emptyAtMs: number[];
  lostWrites: number;
  linearizabilityVerdict: string;
  kvOperations: number;
  problems: string[];
  timeline: string[];
}

interface TimelineEntry {
  atMs: number;
  source?: string;
  kind?: string;
  message?: string;
  data?: { backend?: unknown; detectionMs?: unknown; instanceId?: unknown };
}

export function judge(input: JudgeInput): SystemChaosReport {
  const { injection, problems } = input;
  const events = timelineEvents(input.changes);

  const outages = poolOutages(injection.outageStarts, input.emptyAtMs, input.outcomes);
  const traffic = judgeTraffic(input.outcomes, injection.restarts, outages.map((outage) => ({ fromMs: outage.fromMs, toMs: outage.durationMs === null ? Number.POSITIVE_INFINITY : outage.fromMs + outage.durationMs })), injection.hangs);
  problems.push(...traffic.examples);

  // Marked down by the control plane's shared checks, or by a proxy checking the backend itself.
  const downs: HealthTransition[] = events.filter((event) => (event.source === 'health' || event.source === 'proxy') && event.kind === 'marked-down' && typeof event.data?.backend === 'string').map((event) => ({
    atMs: event.atMs, backend: event.data!.backend as string, ...(typeof event.data?.detectionMs === 'number' ? { checkerDetectionMs: event.data.detectionMs } : {}),
  }));
  const removals: InstanceRemoval[] = events.filter((event) => (event.source === 'autoscaler' && (event.kind === 'instance-gone' || event.kind === 'terminate')) || (event.source === 'provider' && event.kind === 'provider-exited')).map((event) => ({
    atMs: event.atMs, instanceId: typeof event.data?.instanceId === 'string' ? event.data.instanceId : String(event.message ?? '').split(' ')[0]!,
  }));
  const detections = detectFailures(injection.failures, downs, removals, DETECTION_WINDOWS);
  for (const detection of detections) if (detection.detectionMs === null) problems.push(`${detection.kind} of backend ${detection.backend} was not detected within ${DETECTION_WINDOWS.windowMs} ms (no marked-down event, no removal)`);

  const fencing = checkFencing(acceptedActions(input.changes));
  problems.push(...fencing.tokenRegressions.slice(0, 5));
  const killSwitch = checkKillSwitch(input.changes);
  problems.push(...killSwitch.violations.slice(0, 5));
  const acceptedLaunches = events.filter((event) => event.source === 'autoscaler' && event.kind === 'launch').length;
  const accounting = accountInstances({ seenProcesses: input.seen, runningAtEnd: input.runningAtEnd, recordedAtEnd: input.recordedAtEnd, survivorsAfterStop: input.survivors });
  problems.push(...accounting.problems);
  const longOutages = outages.filter((outage) => outage.durationMs === null || outage.durationMs > MAX_POOL_OUTAGE_MS);
  for (const outage of longOutages) problems.push(`pool outage (${outage.cause}) lasted ${outage.durationMs === null ? 'to the end of the run' : `${outage.durationMs} ms`}; at most ${MAX_POOL_OUTAGE_MS} ms expected`);
  const missingFaults = SYSTEM_FAULT_KINDS.filter((kind) => injection.faults[kind] === 0);
  if (missingFaults.length > 0) problems.push(`faults not injected: ${missingFaults.join(', ')}`);

  const linearizable = input.linearizabilityVerdict === 'linearizable';
  const verdicts: Record<SystemCheck, boolean> = {
    traffic: traffic.failedIdempotent === 0,
    detection: detections.every((detection) => detection.detectionMs !== null),
    fencing: input.historyRead && fencing.maxConcurrentAutoscalers <= 1 && fencing.tokenRegressions.length === 0,
    instances: input.settled && accounting.leakedInstances === 0 && accounting.orphanedRecords === 0,
    'kill-switch': input.historyRead && killSwitch.violations.length === 0,
    linearizable,
    'lost-writes': input.lostWrites === 0,
    'pool-outages': longOutages.length === 0,
    faults: missingFaults.length === 0,
  };
  const failedChecks = (Object.keys(verdicts) as SystemCheck[]).filter((check) => !verdicts[check]);
  const report: SystemChaosReport = {
    seed: input.options.seed,
    durationSeconds: input.options.durationSeconds,
    faultPhaseSeconds: input.elapsedSeconds,
    requests: traffic.requests,
    successRate: { critical: traffic.byPriority.critical.successRate, default: traffic.byPriority.default.successRate },
    requestsByPriority: {
      critical: { requests: traffic.byPriority.critical.requests, succeeded: traffic.byPriority.critical.succeeded },
      default: { requests: traffic.byPriority.default.requests, succeeded: traffic.byPriority.default.succeeded },
    },
    toRestartingProxy: traffic.toRestartingProxy,
    duringPoolOutage: traffic.duringPoolOutage,
    failedIdempotentRequests: traffic.failedIdempotent,
    failedIdempotentTimedOutOnHungBackend: traffic.timedOutOnHungBackend,
    detectionMs: detections,
    maxConcurrentAutoscalers: fencing.maxConcurrentAutoscalers,
    autoscalerLeaders: fencing.leaders,
    fencingTokenRegressions: fencing.tokenRegressions.length,
    acceptedActions: fencing.actions,
    leakedInstances: accounting.leakedInstances,
    orphanedRecords: accounting.orphanedRecords,
    instances: { launched: accounting.launched, running: accounting.running, terminated: accounting.terminated, acceptedLaunches },
    killSwitchViolations: killSwitch.violations.length,
    freezes: killSwitch.freezes,
    linearizable,
    linearizabilityVerdict: input.linearizabilityVerdict,
    lostWrites: input.lostWrites,
    kvOperations: input.kvOperations,
    poolOutages: outages,
    faults: injection.faults,
    failedChecks,
    problems,
    passed: failedChecks.length === 0,
    workDir: input.workDir,
    replay: `npx concord chaos --system --duration ${input.options.durationSeconds} --seed ${input.options.seed}`,
  };
  writeFileSync(join(input.workDir, 'report.json'), `${JSON.stringify({ ...report, timeline: input.timeline }, null, 2)}\n`);
  writeFileSync(join(input.workDir, 'requests.json'), JSON.stringify(input.outcomes));
  writeFileSync(join(input.workDir, 'store-history.json'), JSON.stringify(input.changes, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
  // A passing run in a temp folder leaves nothing behind; a failing one keeps everything.
  if (report.passed && input.options.workDir === undefined) rmSync(input.workDir, { recursive: true, force: true });
  return report;
}

function timelineEvents(changes: readonly StoreChange[]): TimelineEntry[] {
  const events: TimelineEntry[] = [];
  for (const change of changes) {
    if (change.type !== 'put' || !change.key.startsWith('/concord/events/')) continue;
    try {
      const event = JSON.parse(change.value) as TimelineEntry;
      if (typeof event.atMs === 'number') events.push(event);
    } catch {
      // Not an event: ignored.
    }
  }
  return events;
}

/**
 * Outages of the pool: from each kill of the autoscaler's leader (and each moment no instance was
 * seen alive) until service was restored: the first of RESTORED_AFTER_SUCCESSES requests in a row,
 * started after the outage began, that all succeeded. Overlapping outages merge.
 */
function poolOutages(starts: readonly { atMs: number; cause: string }[], emptyAtMs: readonly number[], outcomes: HttpLoad['outcomes']): PoolOutage[] {
  const candidates = [...starts, ...emptyAtMs.map((atMs) => ({ atMs, cause: 'no instance alive' }))].sort((a, b) => a.atMs - b.atMs);
  const byStart = [...outcomes].sort((a, b) => a.startMs - b.startMs);
  const outages: PoolOutage[] = [];
  for (const start of candidates) {
    const last = outages.at(-1);
    if (last !== undefined && (last.durationMs === null || start.atMs <= last.fromMs + last.durationMs)) continue;
    const restoredAtMs = restoredAfter(byStart, start.atMs);
    outages.push({ cause: start.cause, fromMs: start.atMs, durationMs: restoredAtMs === undefined ? null : restoredAtMs - start.atMs });
  }
  return outages;
}

function restoredAfter(byStart: HttpLoad['outcomes'], fromMs: number): number | undefined {
  let streak = 0;
  let streakStartMs = 0;
  for (const outcome of byStart) {
    if (outcome.startMs < fromMs) continue;
    streak = outcome.ok ? streak + 1 : 0;
    if (streak === 1) streakStartMs = outcome.startMs;
    if (streak >= RESTORED_AFTER_SUCCESSES) return streakStartMs;
  }
  return undefined;
}
