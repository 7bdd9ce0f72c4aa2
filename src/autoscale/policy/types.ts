// The autoscaler's vocabulary: what the policy is configured with, what it observes about a pool
// each control period, what it remembers between periods, and the decision it returns. All of it
// is plain, JSON-serializable data, so the controller can store the memory and every decision in
// the coordination store, and a new leader continues exactly where the old one stopped.
//
// Time is milliseconds on one clock chosen by the caller (the controller uses wall-clock time, the
// simulator its own); the policy never reads a clock.

// ---------------------------------------------------------------------------------------------
// Configuration (validated by src/control/autoscale-config.ts; defaults in defaults.ts)
// ---------------------------------------------------------------------------------------------

export type Direction = 'out' | 'in';

/** A limit on how much one direction may change the pool within a sliding period (as HPA's behavior policies). */
export interface RateLimitRule {
  /** 'instances': at most `value` instances; 'percent': at most `value` % of the pool at the period's start. */
  type: 'instances' | 'percent';
  value: number;
  periodMs: number;
}

export interface DirectionBehavior {
  /** Scale-in: the highest recommendation over this window wins; scale-out: the lowest (0 = act on the latest). */
  stabilizationMs: number;
  rateLimits: RateLimitRule[];
  /** With several rules: 'max' lets the most permissive one apply (HPA's default), 'min' the strictest; 'disabled' never moves this way. */
  select: 'max' | 'min' | 'disabled';
  /** No action in this direction until this long after the last scaling action in either direction. */
  cooldownMs: number;
}

/** Target values per signal; at least one is set. Several: out if any asks, in only if all agree. */
export interface TargetConfig {
  /** Average in-flight requests per warmed instance, counting shed requests as offered load. */
  inflightPerInstance?: number;
  /** Average requests/s per warmed instance, served plus shed. */
  requestsPerSecondPerInstance?: number;
  /** The pool's p95 latency objective; latency is not proportional to capacity, so it moves the pool at most 2x per period. */
  p95LatencyMs?: number;
  /** External metrics (for example a queue depth), by name: target value per instance. */
  external?: Record<string, number>;
}

export interface MetricsConfig {
  /** Pool metrics older than this are stale: a stale or missing metric never causes a scale-in. */
  maxAgeMs: number;
  /** Below this share of warmed instances reporting fresh metrics, per-instance signals count as missing. */
  minCoveragePercent: number;
}

/** What one instance costs a dependency, against the dependency's budget (for example 20 connections of 500). */
export interface DependencyConfig {
  name: string;
  costPerInstance: number;
  budget: number;
}

export interface RunawayConfig {
  /** The window over which growth is judged. */
  windowMs: number;
  /** The most the asked count may exceed the smallest pool of the window by; beyond it the policy freezes itself. */
  maxGrowthPerWindow: number;
  /**
   * The asked pool size over the size at the window's start may exceed the growth of the offered
   * load (requests/s, and requests/s times mean latency) by at most this factor; beyond it, for
   * `confirmPeriods` periods in a row, the growth is unexplained (a buggy metric, a
   * misconfiguration) and the policy freezes.
   */
  maxUnexplainedGrowthFactor: number;
  confirmPeriods: number;
  /** The goodput check starts once this many instances (and 20 % of the pool) were added and warmed within the window. */
  minAddedInstances: number;
  /** Goodput must have risen by at least this % of the warmed pool's relative growth, or adding instances is not helping. */
  minGoodputGainPercent: number;
}

export interface ReplacementConfig {
  /** An instance failing its health checks this long is replaced. */
  failingForMs: number;
  /** An instance still not ready this long after launch counts as failing. */
  startupTimeoutMs: number;
  /** At most this share of the pool is being replaced at a time (at least one instance). */
  maxSharePercent: number;
  /** When more than this share of the pool is unhealthy at once, nothing is replaced: it is a dependency or deploy problem. */
  holdAboveUnhealthyPercent: number;
}

/** A scheduled capacity window: starts at every match of `cron` in `timeZone`, lasts `durationMs`. */
export interface ScheduleConfig {
  name: string;
  /** Five fields: minute hour day-of-month month day-of-week (0 or 7 = Sunday); *, lists, ranges and steps. */
  cron: string;
  durationMs: number;
  timeZone: string;
  /** Raises the pool's minimum while the window is open. */
  min?: number;
  /** Lowers the pool's maximum while the window is open. */
  max?: number;
}

export interface RefreshConfig {
  /** During an instance refresh at least this share of the desired count stays healthy. */
  minHealthyPercent: number;
  /** A new-version instance not ready this long after launch fails the refresh, which rolls back. */
  readyTimeoutMs: number;
}

export interface BatchAdmissionConfig {
  /** The sheddable/batch class is admitted only while the pool's load is below this % of its target. */
  maxUtilizationPercent: number;
}

export interface PolicyConfig {
  pool: string;
  min: number;
  max: number;
  /** The control plane's ceiling (autoscale.hardMaxInstances), which no pool may exceed, draining instances included. */
  hardMaxInstances: number;
  /** The control period: one decision per period. */
  periodMs: number;
  target: TargetConfig;
  /** No change while every signal is within this % of its target. */
  tolerancePercent: number;
  scaleOut: DirectionBehavior;
  scaleIn: DirectionBehavior;
  /** New instances are excluded from metrics this long after they become ready, but count as capacity. */
  warmupMs: number;
  metrics: MetricsConfig;
  /** A draining instance is terminated once drained, or when this deadline passes. */
  drainDeadlineMs: number;
  dependencies: DependencyConfig[];
  runaway: RunawayConfig;
  replacement: ReplacementConfig;
  schedules: ScheduleConfig[];
  batchAdmission?: BatchAdmissionConfig;
  refresh: RefreshConfig;
  /** Decisions are computed and recorded, nothing is executed. */
  dryRun: boolean;
}

// ---------------------------------------------------------------------------------------------
// Observation: what the controller saw this period
// ---------------------------------------------------------------------------------------------

export interface InstanceMetrics {
  sampledAtMs: number;
  inflight: number;
  /** Requests/s this instance served (successes and errors). */
  requestsPerSecond: number;
}

export interface InstanceObservation {
  id: string;
  launchedAtMs: number;
  /** The launch configuration version the instance was started with (instance refresh compares it). */
  launchVersion: string;
  /** When the instance first passed its readiness check; absent while it is starting. */
  readyAtMs?: number;
  /** The health checker's current verdict. */
  healthy: boolean;
  /** Start of the current run of failed health checks (absent while healthy). */
  failingSinceMs?: number;
  /** Set once a drain has started: the instance gets no new requests. */
  drainingSinceMs?: number;
  /** The drain finished: no request is in flight any more. */
  drained?: boolean;
  metrics?: InstanceMetrics;
}

export interface PoolMetrics {
  sampledAtMs: number;
  /** Requests/s the proxies shed for this pool: offered load that was not served. */
  shedPerSecond: number;
  /** Share of served requests that failed (0..1). */
  errorRatio: number;
  /** Latency of served requests; the mean comes from the histograms' sum and count. */
  latencyMs: { mean: number; p50: number; p95: number; p99: number };
  /** External metrics by name (for example a queue's depth). */
  external: Record<string, number>;
}

/** Who froze the autoscaler and why: the value of a kill-switch key in the store. */
export interface FreezeRecord {
  by: string;
  reason: string;
  atMs: number;
}

/** Local wall-clock fields in one time zone, computed by the shell (the core knows no time zones). */
export interface WallClock {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday .. 6 = Saturday */
  weekday: number;
}

export interface PoolObservation {
  nowMs: number;
  /** The launch configuration version new instances get; instances of another version are refreshed. */
  launchVersion: string;
  /** Every instance the provider has for this pool, draining ones included. */
  instances: InstanceObservation[];
  /** Pool-level metrics from the proxies; absent during a metrics outage. */
  metrics?: PoolMetrics;
  /** The kill switch: /concord/autoscale/freeze (global) and /concord/autoscale/freeze/<pool>. */
  freeze: { global?: FreezeRecord; pool?: FreezeRecord };
  /** Health signal per declared dependency; a dependency without a signal counts as healthy. */
  dependencyHealthy: Record<string, boolean>;
  /** Local time in each time zone the schedules use. */
  localTime: Record<string, WallClock>;
}

// ---------------------------------------------------------------------------------------------
// Memory: what the policy carries from one period to the next
// ---------------------------------------------------------------------------------------------

export interface RecordedRecommendation {
  atMs: number;
  count: number;
}

export interface RecordedScaling {
  atMs: number;
  direction: Direction;
  /** Instances launched (out) or drained (in) for scaling; replacements are not scaling. */
  count: number;
}

export interface RunawaySample {
  atMs: number;
  /** Instances counted as capacity (starting, warming, warmed). */
  capacity: number;
  warmed: number;
  /** Absent while metrics are missing. */
  offeredPerSecond?: number;
  /** Offered requests/s times mean latency: the concurrency the offered load needs (Little's law). */
  offeredConcurrency?: number;
  goodputPerSecond?: number;
}

export interface RefreshState {
  fromVersion: string;
  toVersion: string;
  status: 'rolling' | 'rolled-back';
  startedAtMs: number;
  /** New-version instances launched on top of the desired count, whose outdated counterparts still have to go. */
  surge: number;
}

export interface PolicyMemory {
  /** Decisions made so far; names launch request ids, so a repeated decision repeats the same ids. */
  sequence: number;
  recommendations: RecordedRecommendation[];
  scalings: RecordedScaling[];
  runawaySamples: RunawaySample[];
  unexplainedGrowthPeriods: number;
  /** The runaway guard's own freeze, until the controller's kill-switch key carries it. */
  selfFreeze?: FreezeRecord;
  /** The freeze in force last period, so its start and end are events. */
  frozenBy?: string;
  metricsOutageSinceMs?: number;
  dependencyDegraded: string[];
  replacementHeld: boolean;
  /** Launches owed for instances drained to be replaced (replacement, refresh) that the ceilings did not allow yet. */
  owedLaunches: number;
  refresh?: RefreshState;
}

// ---------------------------------------------------------------------------------------------
// Decision
// ---------------------------------------------------------------------------------------------

/**
 * Why an action is taken, which says what the memory recorded for it (settle.ts): 'scale' counts
 * against the rate limits; 'replace' is a failing instance's replacement (or a drain whose launch
 * is owed); 'refresh' is an instance refresh's surge or retirement; 'finish-drain' ends a drain.
 */
export type ActionPurpose = 'scale' | 'replace' | 'refresh' | 'finish-drain';

export type Action =
  | { kind: 'launch'; requestId: string; launchVersion: string; reason: string; purpose: ActionPurpose }
  | { kind: 'drain'; instanceId: string; reason: string; purpose: ActionPurpose }
  | { kind: 'terminate'; instanceId: string; requestId: string; reason: string; purpose: ActionPurpose };

/** A stage of the decision: target tracking, stabilization and every guard. */
export type StageName =
  | 'target-tracking'
  | 'stabilization'
  | 'bounds'
  | 'hard-ceiling'
  | 'schedule'
  | 'dependency-budget'
  | 'dependency-health'
  | 'warm-up'
  | 'metrics-outage'
  | 'cooldown'
  | 'rate-limit'
  | 'runaway'
  | 'kill-switch'
  | 'scale-in-safety'
  | 'replacement'
  | 'refresh';

/** One stage that changed the desired count (or blocked an action), and why. */
export interface Step {
  stage: StageName;
  from: number;
  to: number;
  reason: string;
}

export type SignalName = 'inflightPerInstance' | 'requestsPerSecondPerInstance' | 'p95LatencyMs' | `external:${string}`;

export type Vote = 'out' | 'in' | 'hold' | 'missing';

export interface SignalReading {
  signal: SignalName;
  /** The measured value (per warmed instance for load signals); absent when missing. */
  value?: number;
  target: number;
  ratio?: number;
  recommendation?: number;
  vote: Vote;
  /** Read from incomplete data (too few instances reporting, or no pool metrics): it may ask to scale out, nothing else. */
  partial?: boolean;
}

export type EventKind =
  | 'frozen'
  | 'unfrozen'
  | 'runaway-freeze'
  | 'metrics-outage'
  | 'metrics-restored'
  | 'dependency-degraded'
  | 'dependency-recovered'
  | 'replacement-held'
  | 'replacement-resumed'
  | 'refresh-started'
  | 'refresh-finished'
  | 'refresh-rolled-back';

export interface PolicyEvent {
  kind: EventKind;
  atMs: number;
  message: string;
}

/** What the policy saw, summarized, so a decision explains itself without the raw observation. */
export interface DecisionInputs {
  instances: { starting: number; warming: number; warmed: number; unhealthy: number; draining: number; total: number };
  offeredPerSecond?: number;
  goodputPerSecond?: number;
  shedPerSecond?: number;
  errorRatio?: number;
  latencyMs?: { mean: number; p50: number; p95: number; p99: number };
  metricsAgeMs?: number;
  metricCoveragePercent?: number;
  bounds: { min: number; max: number; activeSchedules: string[] };
  dependencyHealthy: Record<string, boolean>;
  freeze: { global?: FreezeRecord; pool?: FreezeRecord };
}

export interface Decision {
  pool: string;
  atMs: number;
  sequence: number;
  dryRun: boolean;
  inputs: DecisionInputs;
  signals: SignalReading[];
  /** Instances counted as capacity now (starting, warming, warmed; not draining). */
  current: number;
  /** The combined recommendation of the signals, before stabilization and guards. */
  recommended: number;
  /** The capacity the pool should have after this decision's actions. */
  desired: number;
  steps: Step[];
  actions: Action[];
  events: PolicyEvent[];
  /** Whether the pool may admit its sheddable/batch class now. */
  admitSheddable: boolean;
  frozen?: { scope: 'global' | 'pool' | 'self'; by: string; reason: string };
  /** The controller writes this as the pool's kill-switch key (the runaway guard's freeze). */
  freezeRequest?: FreezeRecord;
}
