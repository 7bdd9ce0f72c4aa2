// The `autoscale:` section of a pool in Concord's YAML configuration, and the control plane's own
// autoscaling settings (`autoscale.hardMaxInstances`). Validated with zod; every error names its
// field by path (`pools[0].autoscale.min: ...`) and says what to do. Missing keys take the
// policy's defaults (src/autoscale/policy/defaults.ts), so the pool section can be as short as:
//
//   autoscale:
//     provider: { process: { command: "node examples/app/server.mjs --port {port}", portRange: "9100-9199" } }
//     min: 2
//     max: 10
//     target: { inflightPerInstance: 8 }
//     scaleIn: { stabilizationMs: 300000 }
//     warmupMs: 10000
//
// The proxy's pool schema composes autoscaleSchema() and calls refineAutoscaledPool() so that a
// pool takes its backends either from a static list or from a provider, never both.

import { z } from 'zod';
import { parseCron } from '../autoscale/policy/cron.ts';
import { DEFAULT_POLICY, DEFAULT_SCALE_IN, DEFAULT_SCALE_OUT } from '../autoscale/policy/defaults.ts';
import { MAX_SCHEDULE_DURATION_MS } from '../autoscale/policy/schedule.ts';
import type { DirectionBehavior, PolicyConfig, RateLimitRule } from '../autoscale/policy/types.ts';
import { controlPlaneSettingsSchema, type ControlPlaneSettings } from './control-plane-config.ts';

export class AutoscaleConfigError extends Error {
  override name = 'AutoscaleConfigError';
  readonly code = 'CONCORD_E_CONFIG_INVALID';
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid autoscale configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

const positiveInteger = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).positive(`${what} must be at least 1`);
const nonNegativeInteger = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).nonnegative(`${what} must be 0 or more`);
const durationMs = (what: string) => positiveInteger(`${what} (milliseconds)`);
const positive = (what: string) => z.number({ error: `${what} must be a number` }).positive(`${what} must be above 0`);
/** A share in percent: above 0 (or at least 0) and at most (or below) 100. */
const percent = (what: string, range: { zeroAllowed?: boolean; hundredAllowed?: boolean } = {}) =>
  z
    .number({ error: `${what} must be a number` })
    .refine((value) => (range.zeroAllowed ? value >= 0 : value > 0), `${what} must be ${range.zeroAllowed ? 'at least 0' : 'above 0'} %`)
    .refine((value) => (range.hundredAllowed === false ? value < 100 : value <= 100), `${what} must be ${range.hundredAllowed === false ? 'below' : 'at most'} 100 %`);

/** `{ instances: 4, periodMs: 15000 }` or `{ percent: 100, periodMs: 15000 }`. */
const rateLimitSchema = (direction: 'scaleOut' | 'scaleIn') =>
  z
    .object({
      instances: positiveInteger('instances').optional(),
      percent: direction === 'scaleIn' ? percent('percent').optional() : positive('percent').optional(),
      periodMs: durationMs('periodMs'),
    })
    .strict()
    .refine((rule) => (rule.instances === undefined) !== (rule.percent === undefined), 'a rate limit gives either instances or percent (not both), with periodMs');

const behaviorSchema = (direction: 'scaleOut' | 'scaleIn', defaults: DirectionBehavior) =>
  z
    .object({
      stabilizationMs: nonNegativeInteger('stabilizationMs').default(defaults.stabilizationMs),
      rateLimits: z.array(rateLimitSchema(direction)).max(10, 'at most 10 rate limits').optional(),
      select: z.enum(['max', 'min', 'disabled'], { error: "select must be 'max' (the most permissive rule applies), 'min' (the strictest) or 'disabled'" }).default(defaults.select),
      cooldownMs: nonNegativeInteger('cooldownMs').default(defaults.cooldownMs),
    })
    .strict();

const processProviderSchema = z
  .object({
    command: z.string().min(1, 'command must not be empty').refine((command) => command.includes('{port}'), "command must contain '{port}', where each instance's port goes"),
    portRange: z.string().regex(/^\d+-\d+$/, "portRange must look like '9100-9199'"),
    host: z.string().min(1).default('127.0.0.1'),
    cwd: z.string().min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    stopGraceMs: durationMs('stopGraceMs').default(10_000),
  })
  .strict()
  .superRefine((provider, ctx) => {
    const [low, high] = provider.portRange.split('-').map(Number) as [number, number];
    if (low < 1 || high > 65_535 || low > high) ctx.addIssue({ code: 'custom', path: ['portRange'], message: `portRange ${provider.portRange} must be LOW-HIGH within 1-65535` });
  });

const execProviderSchema = z
  .object({
    launch: z.string().min(1, 'launch must be a command'),
    terminate: z.string().min(1, 'terminate must be a command'),
    list: z.string().min(1, 'list must be a command'),
    cwd: z.string().min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    timeoutMs: durationMs('timeoutMs').default(30_000),
    retries: nonNegativeInteger('retries').max(10, 'retries must be at most 10').default(2),
    retryBackoffMs: nonNegativeInteger('retryBackoffMs').default(1_000),
    maxOutputBytes: positiveInteger('maxOutputBytes').default(1024 * 1024),
  })
  .strict();

const providerSchema = z.union([z.object({ process: processProviderSchema }).strict(), z.object({ exec: execProviderSchema }).strict()], {
  error: "provider must be { process: { command, portRange } } or { exec: { launch, terminate, list } }",
});

function timeZoneExists(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const scheduleSchema = z
  .object({
    name: z.string().min(1, 'name must not be empty'),
    cron: z.string().superRefine((cron, ctx) => {
      try {
        parseCron(cron);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
    durationMs: durationMs('durationMs').max(MAX_SCHEDULE_DURATION_MS, `durationMs must be at most ${MAX_SCHEDULE_DURATION_MS} (7 days)`),
    timeZone: z.string().default('UTC').refine(timeZoneExists, "timeZone must be an IANA time zone such as 'Europe/Paris' or 'UTC'"),
    min: positiveInteger('min').optional(),
    max: positiveInteger('max').optional(),
  })
  .strict()
  .refine((schedule) => schedule.min !== undefined || schedule.max !== undefined, 'a schedule raises min or lowers max: give at least one of them');

// ---------------------------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------------------------

export interface AutoscaleSchemaOptions {
  /** The control plane's ceiling (autoscale.hardMaxInstances in its settings). */
  hardMaxInstances: number;
}

const d = DEFAULT_POLICY;

export function autoscaleSchema(options: AutoscaleSchemaOptions) {
  const ceiling = options.hardMaxInstances;
  return z
    .object({
      provider: providerSchema,
      min: positiveInteger('min'),
      max: positiveInteger('max'),
      periodMs: durationMs('periodMs').default(d.periodMs),
      target: z
        .object({
          inflightPerInstance: positive('inflightPerInstance').optional(),
          requestsPerSecondPerInstance: positive('requestsPerSecondPerInstance').optional(),
          p95LatencyMs: positive('p95LatencyMs').optional(),
          external: z.record(z.string().min(1), positive('an external target')).optional(),
        })
        .strict()
        .refine((target) => Object.values(target).some((value) => value !== undefined), 'target needs at least one signal, e.g. { inflightPerInstance: 8 }'),
      tolerancePercent: percent('tolerancePercent', { zeroAllowed: true, hundredAllowed: false }).default(d.tolerancePercent),
      scaleOut: behaviorSchema('scaleOut', DEFAULT_SCALE_OUT).prefault({}),
      scaleIn: behaviorSchema('scaleIn', DEFAULT_SCALE_IN).prefault({}),
      warmupMs: nonNegativeInteger('warmupMs').default(d.warmupMs),
      metrics: z
        .object({ maxAgeMs: durationMs('maxAgeMs').default(d.metrics.maxAgeMs), minCoveragePercent: percent('minCoveragePercent').default(d.metrics.minCoveragePercent) })
        .strict()
        .prefault({}),
      drainDeadlineMs: durationMs('drainDeadlineMs').default(d.drainDeadlineMs),
      dependencies: z
        .array(z.object({ name: z.string().min(1, 'name must not be empty'), costPerInstance: positive('costPerInstance'), budget: positive('budget') }).strict())
        .default([]),
      runaway: z
        .object({
          windowMs: durationMs('windowMs').default(d.runaway.windowMs),
          maxGrowthPerWindow: positiveInteger('maxGrowthPerWindow').default(d.runaway.maxGrowthPerWindow),
          maxUnexplainedGrowthFactor: z.number().min(1, 'maxUnexplainedGrowthFactor must be at least 1').default(d.runaway.maxUnexplainedGrowthFactor),
          confirmPeriods: positiveInteger('confirmPeriods').default(d.runaway.confirmPeriods),
          minAddedInstances: positiveInteger('minAddedInstances').default(d.runaway.minAddedInstances),
          minGoodputGainPercent: percent('minGoodputGainPercent', { zeroAllowed: true }).default(d.runaway.minGoodputGainPercent),
        })
        .strict()
        .prefault({}),
      replacement: z
        .object({
          failingForMs: durationMs('failingForMs').default(d.replacement.failingForMs),
          startupTimeoutMs: durationMs('startupTimeoutMs').default(d.replacement.startupTimeoutMs),
          maxSharePercent: percent('maxSharePercent').default(d.replacement.maxSharePercent),
          holdAboveUnhealthyPercent: percent('holdAboveUnhealthyPercent').default(d.replacement.holdAboveUnhealthyPercent),
        })
        .strict()
        .prefault({}),
      schedules: z.array(scheduleSchema).max(50, 'at most 50 schedules').default([]),
      batchAdmission: z.object({ maxUtilizationPercent: percent('maxUtilizationPercent') }).strict().optional(),
      refresh: z
        .object({
          minHealthyPercent: percent('minHealthyPercent', { zeroAllowed: true, hundredAllowed: false }).default(d.refresh.minHealthyPercent),
          readyTimeoutMs: durationMs('readyTimeoutMs').default(d.refresh.readyTimeoutMs),
        })
        .strict()
        .prefault({}),
      dryRun: z.boolean().default(d.dryRun),
    })
    .strict()
    .superRefine((section, ctx) => {
      if (section.min > section.max) ctx.addIssue({ code: 'custom', path: ['min'], message: `min (${section.min}) is above max (${section.max}): lower min or raise max` });
      if (section.max > ceiling) {
        ctx.addIssue({ code: 'custom', path: ['max'], message: `max (${section.max}) is above the control plane's ceiling autoscale.hardMaxInstances (${ceiling}): lower max, or raise the ceiling in the control plane's settings` });
      }
      checkSchedules(section, ctx);
      checkDependencies(section, ctx);
      const provider = 'process' in section.provider ? section.provider.process : undefined;
      if (provider !== undefined) {
        const [low, high] = provider.portRange.split('-').map(Number) as [number, number];
        if (high >= low && high - low + 1 < section.max) {
          ctx.addIssue({ code: 'custom', path: ['provider', 'process', 'portRange'], message: `portRange ${provider.portRange} has ${high - low + 1} ports but max is ${section.max}: every instance needs its own port` });
        }
      }
    });
}

type Section = z.output<ReturnType<typeof autoscaleSchema>>;

function checkSchedules(section: Section, ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  section.schedules.forEach((schedule, index) => {
    if (names.has(schedule.name)) ctx.addIssue({ code: 'custom', path: ['schedules', index, 'name'], message: `schedule name '${schedule.name}' is used twice` });
    names.add(schedule.name);
    if (schedule.min !== undefined && schedule.min > section.max) {
      ctx.addIssue({ code: 'custom', path: ['schedules', index, 'min'], message: `min (${schedule.min}) is above the pool's max (${section.max})` });
    }
    if (schedule.max !== undefined && schedule.max < section.min) {
      ctx.addIssue({ code: 'custom', path: ['schedules', index, 'max'], message: `max (${schedule.max}) is below the pool's min (${section.min})` });
    }
  });
}

function checkDependencies(section: Section, ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  section.dependencies.forEach((dependency, index) => {
    if (names.has(dependency.name)) ctx.addIssue({ code: 'custom', path: ['dependencies', index, 'name'], message: `dependency name '${dependency.name}' is used twice` });
    names.add(dependency.name);
    if (section.min * dependency.costPerInstance > dependency.budget) {
      ctx.addIssue({
        code: 'custom',
        path: ['dependencies', index, 'budget'],
        message: `the minimum of ${section.min} instances costs ${section.min * dependency.costPerInstance} of ${dependency.name}, over its budget of ${dependency.budget}`,
      });
    }
  });
}

export type AutoscaleSection = Section;

// ---------------------------------------------------------------------------------------------
// The control plane's settings live in control-plane-config.ts (the whole `controlPlane:` section);
// the ceiling every pool's max is checked against is its autoscale.hardMaxInstances.
// ---------------------------------------------------------------------------------------------

export { controlPlaneSettingsSchema, type ControlPlaneSettings } from './control-plane-config.ts';

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** `pools[0].autoscale.min` from a zod path under a prefix. */
export function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let text = prefix;
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? String(part) : `.${String(part)}`;
  return text;
}

function problemsOf(error: z.ZodError, prefix: string): string[] {
  return error.issues.map((issue) => `${formatPath(prefix, issue.path)}: ${issue.message}`);
}

export function parseControlPlaneSettings(raw: unknown, prefix = 'controlPlane'): ControlPlaneSettings {
  const parsed = controlPlaneSettingsSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new AutoscaleConfigError(problemsOf(parsed.error, prefix));
  return parsed.data;
}

/** Validates one pool's autoscale section; throws AutoscaleConfigError listing every problem by path. */
export function parseAutoscaleSection(raw: unknown, options: AutoscaleSchemaOptions & { path: string }): AutoscaleSection {
  const parsed = autoscaleSchema(options).safeParse(raw);
  if (!parsed.success) throw new AutoscaleConfigError(problemsOf(parsed.error, options.path));
  return parsed.data;
}

/**
 * For the proxy's pool schema: a pool with `autoscale` takes its backends from the provider, so
 * static `backends` in the same pool are an error (reported at the pool's `backends`).
 */
export function refineAutoscaledPool(pool: { backends?: unknown; autoscale?: unknown }, ctx: z.RefinementCtx): void {
  const message = autoscaledPoolProblem(pool);
  if (message !== undefined) ctx.addIssue({ code: 'custom', path: ['backends'], message });
}

/** The same check without zod: the problem, or undefined. */
export function autoscaledPoolProblem(pool: { backends?: unknown; autoscale?: unknown }): string | undefined {
  const hasBackends = Array.isArray(pool.backends) ? pool.backends.length > 0 : pool.backends !== undefined;
  if (pool.autoscale === undefined || !hasBackends) return undefined;
  return 'a pool with autoscale takes its backends from the provider: remove the static backends, or remove autoscale';
}

function rateLimits(rules: { instances?: number; percent?: number; periodMs: number }[] | undefined, defaults: RateLimitRule[]): RateLimitRule[] {
  if (rules === undefined) return defaults;
  return rules.map((rule) => (rule.instances !== undefined ? { type: 'instances', value: rule.instances, periodMs: rule.periodMs } : { type: 'percent', value: rule.percent!, periodMs: rule.periodMs }));
}

/** The policy's configuration for a validated section. */
export function toPolicyConfig(pool: string, section: AutoscaleSection, settings: ControlPlaneSettings): PolicyConfig {
  const config: PolicyConfig = {
    pool,
    min: section.min,
    max: section.max,
    hardMaxInstances: settings.autoscale.hardMaxInstances,
    periodMs: section.periodMs,
    target: section.target,
    tolerancePercent: section.tolerancePercent,
    scaleOut: { ...section.scaleOut, rateLimits: rateLimits(section.scaleOut.rateLimits, DEFAULT_SCALE_OUT.rateLimits) },
    scaleIn: { ...section.scaleIn, rateLimits: rateLimits(section.scaleIn.rateLimits, DEFAULT_SCALE_IN.rateLimits) },
    warmupMs: section.warmupMs,
    metrics: section.metrics,
    drainDeadlineMs: section.drainDeadlineMs,
    dependencies: section.dependencies,
    runaway: section.runaway,
    replacement: section.replacement,
    schedules: section.schedules,
    refresh: section.refresh,
    dryRun: section.dryRun,
  };
  if (section.batchAdmission !== undefined) config.batchAdmission = section.batchAdmission;
  return config;
}
