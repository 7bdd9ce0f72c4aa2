// The report of a system chaos run: what `concord chaos --system --json` prints on its last line
// (the fields named in issue 9 are a contract: requests, successRate, detectionMs,
// maxConcurrentAutoscalers, leakedInstances, killSwitchViolations, linearizable, lostWrites).

import type { Detection } from './detection-check.ts';
import type { SystemFaultKind } from './fault-schedule.ts';
import type { Priority } from './traffic-check.ts';

export const SYSTEM_CHECKS = ['traffic', 'detection', 'fencing', 'instances', 'kill-switch', 'linearizable', 'lost-writes', 'pool-outages', 'faults'] as const;
export type SystemCheck = (typeof SYSTEM_CHECKS)[number];

export interface PoolOutage {
  /** What emptied the pool: the autoscaler's leader killed (its instances die with it), or no instance seen alive. */
  cause: string;
  fromMs: number;
  /** Until the first request that succeeded after it; null: none did. */
  durationMs: number | null;
}

export interface SystemChaosReport {
  seed: number;
  durationSeconds: number;
  /** How long faults and load ran: the duration, or more when a fault waited for the system to recover from the previous one. */
  faultPhaseSeconds: number;
  /** Every HTTP request sent through the proxies. */
  requests: number;
  /** Judged requests that succeeded, by priority (requests to a restarting proxy and in pool outages set apart). */
  successRate: Record<Priority, number>;
  requestsByPriority: Record<Priority, { requests: number; succeeded: number }>;
  toRestartingProxy: number;
  duringPoolOutage: number;
  failedIdempotentRequests: number;
  /** Of those, 504s of requests in flight to a hung backend (the proxy does not retry a first-byte timeout). */
  failedIdempotentTimedOutOnHungBackend: number;
  /** Injection to marked-down, per injected backend failure (null: not detected). */
  detectionMs: Detection[];
  maxConcurrentAutoscalers: number;
  autoscalerLeaders: number;
  fencingTokenRegressions: number;
  acceptedActions: number;
  leakedInstances: number;
  orphanedRecords: number;
  /** Instance processes (launched = running + terminated) and the autoscaler's accepted launches. */
  instances: { launched: number; running: number; terminated: number; acceptedLaunches: number };
  killSwitchViolations: number;
  freezes: number;
  linearizable: boolean;
  linearizabilityVerdict: string;
  lostWrites: number;
  kvOperations: number;
  poolOutages: PoolOutage[];
  faults: Record<SystemFaultKind, number>;
  failedChecks: SystemCheck[];
  problems: string[];
  passed: boolean;
  workDir: string;
  replay: string;
}

export function summarizeSystemReport(report: SystemChaosReport): string {
  const detections = report.detectionMs.map((entry) => `${entry.kind} ${entry.backend}: ${entry.detectionMs === null ? 'not detected' : `${entry.detectionMs} ms (${entry.by}${entry.by === 'removed' && entry.markedDownMs !== null ? `; marked down at ${entry.markedDownMs} ms` : ''})`}`).join('; ');
  const lines = [
    `${report.passed ? 'PASS' : `FAIL (${report.failedChecks.join(', ')})`}: whole-system chaos for ${report.faultPhaseSeconds} s (--duration ${report.durationSeconds}), seed ${report.seed}`,
    `  requests: ${report.requests} (critical success ${report.successRate.critical}, default success ${report.successRate.default}; ${report.toRestartingProxy} to a restarting proxy, ${report.duringPoolOutage} during pool outages); failed idempotent requests: ${report.failedIdempotentRequests} (${report.failedIdempotentTimedOutOnHungBackend} timed out on a hung backend)`,
    `  detection: ${detections || 'no backend failure injected'}`,
    `  autoscaler: ${report.autoscalerLeaders} leaders acted, at most ${report.maxConcurrentAutoscalers} at once, ${report.fencingTokenRegressions} fencing token regressions in ${report.acceptedActions} accepted actions; kill switch: ${report.freezes} freezes, ${report.killSwitchViolations} violations`,
    `  instances: ${report.instances.launched} launched = ${report.instances.running} running + ${report.instances.terminated} terminated (${report.instances.acceptedLaunches} accepted launches); leaked ${report.leakedInstances}, orphaned records ${report.orphanedRecords}`,
    `  store: ${report.kvOperations} operations, linearizable: ${report.linearizabilityVerdict}, acknowledged writes lost: ${report.lostWrites}`,
    `  pool outages: ${report.poolOutages.map((outage) => `${outage.cause} ${outage.durationMs === null ? 'never ended' : `${outage.durationMs} ms`}`).join('; ') || 'none'}`,
    ...report.problems.map((problem) => `  problem: ${problem.length > 600 ? `${problem.slice(0, 600)}... (whole in the report)` : problem}`),
    ...(report.passed ? [] : [`  report and logs: ${report.workDir}`, `  replay the fault schedule: ${report.replay}`]),
  ];
  return `${lines.join('\n')}\n`;
}
