// The `shed:` section of a pool: admission control (load shedding) for the pool's traffic. Only
// `algorithm` matters for most pools; everything else has a default. This is accepted as written:
//
//   shed:
//     algorithm: gradient      # fixed | aimd | vegas | gradient | none
//     minLimit: 4
//     maxLimit: 1000
//     queue: { maxLength: 100, maxWaitMs: 50 }
//     priority: { header: x-concord-priority, default: default }   # critical | default | sheddable
//
// The schema is exported for the proxy's config schema to embed; parseShedConfig validates a
// section alone. Errors name the field (`pools[0].shed.queue.maxWaitMs: ...`) and say what to do.
// docs/shedding.md describes every key.

import { z } from 'zod';
import { PRIORITIES } from '../traffic/shed/priority.ts';
import { LIMITER_ALGORITHMS } from '../traffic/shed/limiter.ts';
import type { ShedSettings } from '../traffic/shed/shed-settings.ts';

export class ShedConfigError extends Error {
  override name = 'ShedConfigError';
  readonly code = 'CONCORD_E_SHED_CONFIG_INVALID';
}

const wholeNumber = z.number().int();
const positiveMs = z.number().positive();
const fraction = z.number().min(0).max(1);
const priority = z.enum(PRIORITIES);

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name (letters, digits and - only, no spaces or colon)')
  .transform((name) => name.toLowerCase());

const requestMatchShape = {
  path: z.string().startsWith('/', 'must start with /').optional(),
  pathPrefix: z.string().startsWith('/', 'must start with /').optional(),
  method: z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method such as GET').transform((method) => method.toUpperCase()).optional(),
  header: z.object({ name: headerName, value: z.string().optional() }).strict().optional(),
};

function hasACondition(rule: { path?: string; pathPrefix?: string; method?: string; header?: unknown }): boolean {
  return rule.path !== undefined || rule.pathPrefix !== undefined || rule.method !== undefined || rule.header !== undefined;
}

const MATCH_NEEDS_A_CONDITION = 'a rule needs at least one of path, pathPrefix, method, header (an empty rule would match every request)';

const requestMatch = z.object(requestMatchShape).strict().refine(hasACondition, MATCH_NEEDS_A_CONDITION);
const priorityRule = z.object({ ...requestMatchShape, priority }).strict().refine(hasACondition, MATCH_NEEDS_A_CONDITION);

const queueSchema = z.object({
  maxLength: wholeNumber.min(0).max(100_000).default(100),
  maxWaitMs: positiveMs.max(60_000).default(50),
  order: z.enum(['adaptive-lifo', 'fifo']).default('adaptive-lifo'),
  overloadedWaitMs: positiveMs.default(5),
  overloadIntervalMs: positiveMs.default(100),
}).strict();

const prioritySchema = z.object({
  header: headerName.default('x-concord-priority'),
  default: priority.default('default'),
  rules: z.array(priorityRule).max(1000).default([]),
  reservedShare: z.object({ critical: fraction.default(0.1), default: fraction.default(0.1), sheddable: fraction.default(0) }).strict().prefault({}),
}).strict();

const gradientSchema = z.object({
  sampleWindowMs: positiveMs.default(100),
  percentile: z.number().gt(0).max(100).default(90),
  buffer: z.number().min(0).max(10).default(0.25),
  minRttIntervalMs: positiveMs.default(60_000),
  minRttJitter: fraction.default(0.15),
  minRttRequestCount: wholeNumber.min(1).max(100_000).default(50),
  dropBackoffRatio: z.number().gt(0).lt(1).default(0.9),
  maxSamplesPerWindow: wholeNumber.min(1).max(1_000_000).default(1000),
}).strict();

const clientRateLimitSchema = z.object({
  keyHeader: headerName.optional(),
  ratePerSecond: z.number().positive(),
  burst: z.number().min(1).optional(),
  maxClients: wholeNumber.min(1).max(10_000_000).default(10_000),
}).strict();

const circuitBreakerSchema = z.object({
  maxConnections: wholeNumber.min(1).default(1024),
  maxPendingRequests: wholeNumber.min(1).default(1024),
  maxRequests: wholeNumber.min(1).default(1024),
}).strict();

export const shedConfigSchema = z.object({
  algorithm: z.enum(LIMITER_ALGORITHMS).default('gradient'),
  minLimit: wholeNumber.min(1).default(4),
  maxLimit: wholeNumber.min(1).default(1000),
  initialLimit: wholeNumber.min(1).optional(),
  dropLatencyMs: positiveMs.default(5000),
  queue: queueSchema.prefault({}),
  priority: prioritySchema.prefault({}),
  exempt: z.array(requestMatch).max(1000).default([]),
  fixed: z.object({ limit: wholeNumber.min(1).optional() }).strict().prefault({}),
  aimd: z.object({ backoffRatio: z.number().gt(0).lt(1).default(0.9) }).strict().prefault({}),
  vegas: z.object({ smoothing: z.number().gt(0).max(1).default(1), probeMultiplier: z.number().positive().default(30) }).strict().prefault({}),
  gradient: gradientSchema.prefault({}),
  clientRateLimit: clientRateLimitSchema.optional(),
  circuitBreaker: circuitBreakerSchema.prefault({}),
  retryAfterSeconds: wholeNumber.min(0).max(86_400).default(1),
  quietPeriodMs: positiveMs.default(1000),
}).strict().superRefine((config, context) => {
  const issue = (path: (string | number)[], message: string) => context.addIssue({ code: 'custom', path, message });
  if (config.minLimit > config.maxLimit) issue(['maxLimit'], `must be at least minLimit (${config.minLimit})`);
  if (config.initialLimit !== undefined && (config.initialLimit < config.minLimit || config.initialLimit > config.maxLimit)) {
    issue(['initialLimit'], `must be between minLimit (${config.minLimit}) and maxLimit (${config.maxLimit})`);
  }
  if (config.algorithm === 'fixed' && config.fixed.limit === undefined) {
    issue(['fixed', 'limit'], 'is required with algorithm: fixed (the number of requests allowed in flight)');
  }
  const shares = config.priority.reservedShare;
  const total = shares.critical + shares.default + shares.sheddable;
  if (total > 1 + 1e-9) issue(['priority', 'reservedShare'], `the shares add up to ${total}; they must add up to at most 1`);
});

export type ShedConfigInput = z.input<typeof shedConfigSchema>;
export type ShedConfig = z.output<typeof shedConfigSchema>;

/** The validated section as the pure core's settings (defaults filled in, burst defaulted). */
export function toShedSettings(config: ShedConfig): ShedSettings {
  const rate = config.clientRateLimit;
  return {
    ...config,
    initialLimit: config.initialLimit,
    fixed: { limit: config.fixed.limit },
    clientRateLimit: rate === undefined ? undefined : {
      keyHeader: rate.keyHeader, ratePerSecond: rate.ratePerSecond, burst: rate.burst ?? Math.max(1, rate.ratePerSecond), maxClients: rate.maxClients,
    },
  };
}

/** `pools[0].shed.queue.maxWaitMs: Too small: expected number to be >0` */
export function describeIssues(error: z.ZodError, fieldPrefix: string): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
      return `${fieldPrefix}${path}: ${issue.message}`;
    })
    .join('\n');
}

/** Validates a `shed:` section; throws ShedConfigError naming every bad field. */
export function parseShedConfig(section: unknown, fieldPrefix = 'shed'): ShedSettings {
  const result = shedConfigSchema.safeParse(section ?? {});
  if (!result.success) throw new ShedConfigError(`invalid load shedding configuration:\n${describeIssues(result.error, fieldPrefix)}`);
  return toShedSettings(result.data);
}
