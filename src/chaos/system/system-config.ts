// The configuration a system chaos run applies (`concord config apply` does the same through the
// CLI): one pool, `chaos-web`, whose backends are the autoscaler's instances (process provider,
// examples/app/server.mjs), with fast health checks and short autoscaler periods so that detection,
// replacement and leader changes all happen within a short run; retries so that idempotent
// requests survive a backend's death; short control-plane leases so a dead member's duties move
// within seconds.

import { stringify } from 'yaml';

export const CHAOS_POOL = 'chaos-web';
/** The pool's autoscaling bounds: min 2 so that one backend can fail while the other serves. */
export const MIN_INSTANCES = 2;
export const MAX_INSTANCES = 4;

export interface SystemConfigOptions {
  /** The node binary and the example app that instances run. */
  nodePath: string;
  appPath: string;
  /** Inclusive port range for the instances, 'LOW-HIGH'. */
  portRange: string;
  /** This run's marker, in every instance's environment (instance-processes.ts). */
  runId: string;
  minInstances: number;
  maxInstances: number;
}

/** Settings the run's own bounds derive from. */
export const SYSTEM_TIMINGS = {
  autoscaleLeaseTtlSeconds: 2,
  membershipLeaseTtlSeconds: 2,
  autoscalePeriodMs: 1_000,
  healthIntervalMs: 300,
  healthTimeoutMs: 250,
  healthFall: 2,
  firstByteTimeoutMs: 1_500,
} as const;

export function systemConfigYaml(options: SystemConfigOptions): string {
  const t = SYSTEM_TIMINGS;
  return stringify({
    controlPlane: {
      autoscale: { hardMaxInstances: Math.max(10, options.maxInstances), leaseTtlSeconds: t.autoscaleLeaseTtlSeconds },
      membership: { leaseTtlSeconds: t.membershipLeaseTtlSeconds },
      health: { refreshMs: 500, maxResultAgeMs: 4_000 },
    },
    pools: [{
      name: CHAOS_POOL,
      health: { http: { path: '/healthz' }, intervalMs: t.healthIntervalMs, timeoutMs: t.healthTimeoutMs, rise: 1, fall: t.healthFall },
      // A retry budget wide enough for the run's load: every request to a dead or hung backend is retried.
      retries: { attempts: 3, minRetryConcurrency: 50, unansweredAttempts: 3, backoffBaseMs: 10, backoffMaxMs: 100 },
      timeouts: { connectMs: 500, firstByteMs: t.firstByteTimeoutMs },
      // Short ejections: an instance's port is reused by its replacement, which must not inherit a long ejection.
      outlierDetection: { baseEjectionMs: 1_000, maxEjectionMs: 5_000 },
      autoscale: {
        provider: {
          process: {
            command: `${options.nodePath} ${options.appPath} --port {port} --service-time-ms 5`,
            portRange: options.portRange,
            env: { CONCORD_CHAOS_RUN: options.runId },
            stopGraceMs: 2_000,
          },
        },
        min: options.minInstances,
        max: options.maxInstances,
        periodMs: t.autoscalePeriodMs,
        target: { inflightPerInstance: 4 },
        warmupMs: 1_000,
        scaleOut: { stabilizationMs: 0 },
        scaleIn: { stabilizationMs: 5_000, cooldownMs: 2_000 },
        metrics: { maxAgeMs: 5_000 },
        replacement: { failingForMs: 3_000, startupTimeoutMs: 15_000, maxSharePercent: 50 },
      },
    }],
  });
}
