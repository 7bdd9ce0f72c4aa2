// The autoscaling policy: one pure function from (configuration, memory, observation) to
// (decision, memory). The controller calls it once per control period for each pool, executes
// the decision's actions (unless it is a dry run or the autoscaler is frozen), stores the decision
// as an event and the memory for the next period.
//
// The desired count goes through these stages, each recorded when it changes the count:
//   target tracking -> stabilization -> bounds (min, max, schedules, hard ceiling)
//   -> dependency budget -> dependency health -> warm-up -> metrics outage -> cooldown -> rate limits
// then the runaway guard judges the result, and the actions are planned: finished drains are
// terminated, failing instances replaced, an instance refresh advanced, and the pool grown (launch)
// or shrunk (drain, never terminate directly) to the desired count. The kill switch, checked first,
// stops every action of every kind.

import { budgetMaxInstances, degradedDependencies } from './dependency-guard.ts';
import { finishDrains } from './drain.ts';
import { classifyInstances, type PoolInstances } from './instances.ts';
import { pruneScalings, scaleInLimit, scaleOutLimit } from './rate-limits.ts';
import { stepRefresh, updateRefresh, type RefreshStatus } from './refresh.ts';
import { planReplacement, type ReplacementPlan } from './replacement.ts';
import { checkRunaway, type RunawayInput } from './runaway-guard.ts';
import { chooseScaleInVictims } from './scale-in-safety.ts';
import { effectiveBounds, type EffectiveBounds } from './schedule.ts';
import { readSignals, type SignalSummary } from './signals.ts';
import { rememberRecommendation, stabilize } from './stabilization.ts';
import type {
  Action,
  ActionPurpose,
  Decision,
  DecisionInputs,
  FreezeRecord,
  InstanceObservation,
  PolicyConfig,
  PolicyEvent,
  PolicyMemory,
  PoolObservation,
  RecordedScaling,
  RefreshState,
  StageName,
  Step,
} from './types.ts';

/** Who the runaway guard's freeze names in the kill-switch key. */
export const RUNAWAY_FREEZE_BY = 'concord/runaway-guard';

export interface PolicyResult {
  decision: Decision;
  memory: PolicyMemory;
}

/** Everything the stages share while one decision is made. */
interface Period {
  config: PolicyConfig;
  memory: PolicyMemory;
  observation: PoolObservation;
  nowMs: number;
  sequence: number;
  pool: PoolInstances;
  /** The capacity the scaler manages: the pool without an instance refresh's surge. */
  managed: number;
  signals: SignalSummary;
  bounds: EffectiveBounds;
  degraded: string[];
  refresh: RefreshStatus;
  steps: Step[];
  events: PolicyEvent[];
}

export function decide(config: PolicyConfig, memory: PolicyMemory, observation: PoolObservation): PolicyResult {
  const period = beginPeriod(config, memory, observation);
  const freeze = activeFreeze(period);
  noteFreezeTransition(period, freeze);
  if (freeze !== undefined) return frozenResult(period, freeze);

  const asked = desiredBeforePacing(period);
  const desired = pace(period, asked);
  return planActions(period, asked, desired);
}

// ---------------------------------------------------------------------------------------------
// Reading the period
// ---------------------------------------------------------------------------------------------

function beginPeriod(config: PolicyConfig, memory: PolicyMemory, observation: PoolObservation): Period {
  const nowMs = observation.nowMs;
  const pool = classifyInstances(observation.instances, nowMs, config.warmupMs);
  const refresh = memory.refresh === undefined && pool.current.every((i) => i.launchVersion === observation.launchVersion)
    ? { targetVersion: observation.launchVersion, events: [] }
    : updateRefresh(config, memory.refresh, observation.launchVersion, pool, nowMs);
  // The capacity the scaler manages: without a refresh's surge, with the launches owed for replaced instances.
  const managed = pool.current.length - (refresh.state?.surge ?? 0) + memory.owedLaunches;
  const period: Period = {
    config,
    memory,
    observation,
    nowMs,
    sequence: memory.sequence + 1,
    pool,
    managed,
    signals: readSignals(config, observation, pool, managed),
    bounds: effectiveBounds(config, observation.localTime),
    degraded: degradedDependencies(config, observation.dependencyHealthy),
    refresh,
    steps: [],
    events: [],
  };
  noteOutageTransition(period);
  noteDependencyTransitions(period);
  return period;
}

function noteOutageTransition(period: Period): void {
  const { memory, nowMs, signals, events } = period;
  if (signals.missing && memory.metricsOutageSinceMs === undefined) {
    const missing = signals.readings.filter((r) => r.vote === 'missing' || r.partial === true).map((r) => r.signal);
    events.push({ kind: 'metrics-outage', atMs: nowMs, message: `no fresh data for ${missing.join(', ')}: holding, no scale-in until metrics return` });
  } else if (!signals.missing && memory.metricsOutageSinceMs !== undefined) {
    events.push({ kind: 'metrics-restored', atMs: nowMs, message: `metrics are back after ${nowMs - memory.metricsOutageSinceMs} ms` });
  }
}

function noteDependencyTransitions(period: Period): void {
  const { memory, nowMs, degraded, events } = period;
  for (const name of degraded) {
    if (!memory.dependencyDegraded.includes(name)) events.push({ kind: 'dependency-degraded', atMs: nowMs, message: `dependency ${name} is degraded: no scale-out until it recovers` });
  }
  for (const name of memory.dependencyDegraded) {
    if (!degraded.includes(name)) events.push({ kind: 'dependency-recovered', atMs: nowMs, message: `dependency ${name} recovered` });
  }
}

interface ActiveFreeze {
  scope: 'global' | 'pool' | 'self';
  record: FreezeRecord;
}

/** The runaway guard's own freeze ends once the pool's kill-switch key carries it; the key rules from then on. */
function pendingSelfFreeze(memory: PolicyMemory, observation: PoolObservation): FreezeRecord | undefined {
  const own = memory.selfFreeze;
  const key = observation.freeze.pool;
  if (own !== undefined && key !== undefined && key.by === own.by && key.atMs === own.atMs) return undefined;
  return own;
}

function activeFreeze(period: Period): ActiveFreeze | undefined {
  const { global, pool } = period.observation.freeze;
  if (global !== undefined) return { scope: 'global', record: global };
  if (pool !== undefined) return { scope: 'pool', record: pool };
  const own = pendingSelfFreeze(period.memory, period.observation);
  return own === undefined ? undefined : { scope: 'self', record: own };
}

function noteFreezeTransition(period: Period, freeze: ActiveFreeze | undefined): void {
  const { memory, nowMs, events } = period;
  const by = freeze === undefined ? undefined : `${freeze.scope}:${freeze.record.by}`;
  if (by === memory.frozenBy) return;
  if (freeze !== undefined) {
    events.push({ kind: 'frozen', atMs: nowMs, message: `frozen (${freeze.scope}) by ${freeze.record.by}: ${freeze.record.reason}` });
  } else {
    events.push({ kind: 'unfrozen', atMs: nowMs, message: 'the kill switch was released: acting again' });
  }
}

// ---------------------------------------------------------------------------------------------
// The desired count
// ---------------------------------------------------------------------------------------------

function record(period: Period, stage: StageName, from: number, to: number, reason: string): number {
  if (from !== to || stage === 'kill-switch') period.steps.push({ stage, from, to, reason });
  return to;
}

/** Target tracking, stabilization, bounds, back-end protection, warm-up and outage guards: what the policy asks for. */
function desiredBeforePacing(period: Period): number {
  const { config, memory, nowMs, managed, signals, bounds, pool } = period;
  let desired = record(period, 'target-tracking', managed, signals.recommendation, signals.reason);
  const stabilized = stabilize(recommendationHistory(memory, nowMs, managed), nowMs, desired, managed, {
    scaleOutMs: config.scaleOut.stabilizationMs,
    scaleInMs: config.scaleIn.stabilizationMs,
  });
  desired = record(period, 'stabilization', desired, stabilized, stabilized > desired
    ? `the highest recommendation of the last ${config.scaleIn.stabilizationMs} ms is ${stabilized}`
    : `the lowest recommendation of the last ${config.scaleOut.stabilizationMs} ms is ${stabilized}`);
  desired = applyBounds(period, desired);

  const budget = budgetMaxInstances(config.dependencies);
  const budgetCapacity = budget.max - pool.draining.length;
  if (desired > managed && desired > budgetCapacity) {
    desired = record(period, 'dependency-budget', desired, Math.max(managed, budgetCapacity),
      `${budget.binding!.name}: ${budget.binding!.costPerInstance} per instance against a budget of ${budget.binding!.budget} allows ${budget.max} instances, ${pool.draining.length} of them draining`);
  }
  if (desired > managed && period.degraded.length > 0) {
    desired = record(period, 'dependency-health', desired, Math.min(desired, Math.max(managed, bounds.min)),
      `dependency ${period.degraded.join(', ')} degraded: adding instances would make it worse`);
  }
  const scaleInFloor = Math.min(managed, bounds.max);
  if (desired < scaleInFloor && pool.starting.length + pool.warming.length > 0) {
    desired = record(period, 'warm-up', desired, scaleInFloor, `${pool.starting.length} starting and ${pool.warming.length} warming: no scale-in until they are warm`);
  }
  if (desired < scaleInFloor && signals.missing) {
    desired = record(period, 'metrics-outage', desired, scaleInFloor, 'metrics are missing or stale: missing data never causes a scale-in');
  }
  return desired;
}

/**
 * The recommendations to stabilize against. A policy without history (a new pool, or memory lost)
 * starts as if it had just recommended the current size, as HPA does: nothing is scaled in until
 * a whole stabilization window has been observed.
 */
function recommendationHistory(memory: PolicyMemory, nowMs: number, managed: number): PolicyMemory['recommendations'] {
  return memory.recommendations.length > 0 ? memory.recommendations : [{ atMs: nowMs, count: managed }];
}

function applyBounds(period: Period, desired: number): number {
  const { config, bounds } = period;
  const scheduled = bounds.activeSchedules.length > 0 && (bounds.min !== config.min || bounds.max !== Math.min(config.max, config.hardMaxInstances));
  const stage: StageName = scheduled ? 'schedule' : config.max > config.hardMaxInstances && desired > config.hardMaxInstances ? 'hard-ceiling' : 'bounds';
  if (desired < bounds.min) return record(period, stage, desired, bounds.min, `below the minimum ${bounds.min}${bounds.reasons.length > 0 ? ` (${bounds.reasons.join('; ')})` : ''}`);
  if (desired > bounds.max) return record(period, stage, desired, bounds.max, `above the maximum ${bounds.max}${bounds.reasons.length > 0 ? ` (${bounds.reasons.join('; ')})` : ''}`);
  return desired;
}

/** Cooldown and rate limits: how fast the pool may move towards what was asked. */
function pace(period: Period, asked: number): number {
  const { config, memory, nowMs, managed } = period;
  let desired = asked;
  const lastScalingMs = memory.scalings.reduce((latest, s) => Math.max(latest, s.atMs), Number.NEGATIVE_INFINITY);
  const behavior = desired > managed ? config.scaleOut : config.scaleIn;
  if (desired !== managed && nowMs - lastScalingMs < behavior.cooldownMs) {
    desired = record(period, 'cooldown', desired, managed, `the last scaling was ${nowMs - lastScalingMs} ms ago (cooldown ${behavior.cooldownMs} ms)`);
  }
  if (desired > managed) {
    const limit = scaleOutLimit(config.scaleOut, memory.scalings, nowMs, managed);
    if (desired > limit) desired = record(period, 'rate-limit', desired, limit, `scale-out rate limits allow ${limit} now`);
  } else if (desired < managed) {
    const limit = scaleInLimit(config.scaleIn, memory.scalings, nowMs, managed);
    if (desired < limit) desired = record(period, 'rate-limit', desired, limit, `scale-in rate limits allow ${limit} now`);
  }
  return desired;
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/** The actions this period takes, in the order planned: replacements, growth, refresh, shrinkage. */
interface Plan {
  desired: number;
  /** More instances the hard ceiling and the dependency budgets allow, draining ones included. */
  room: number;
  /** Launches owed for drained-to-be-replaced instances, still owed after this period. */
  owed: number;
  /** Owed launches a scale-in cancelled. */
  cancelled: number;
  replace: InstanceObservation[];
  replacementHeld: boolean;
  replacementLaunches: number;
  scaleOut: number;
  refreshState?: RefreshState;
  retire: InstanceObservation[];
  /** The retired instances were drained without room to surge: each is owed a launch. */
  retireOwesLaunch: boolean;
  surgeLaunches: number;
  victims: InstanceObservation[];
  /** Instances already leaving this period, which no later step may pick again. */
  leaving: Set<string>;
}

function planActions(period: Period, asked: number, desiredCount: number): PolicyResult {
  const { config, memory, nowMs } = period;
  const runaway = checkRunaway(config, memory, runawayInput(period, asked));
  if (runaway.trip !== undefined) return runawayResult(period, runaway.trip, runaway);
  let desired = desiredCount;
  if (runaway.cap !== undefined && desired > runaway.cap.count) desired = record(period, 'runaway', desired, runaway.cap.count, runaway.cap.reason);

  const plan = planReplacements(period, desired);
  planScaleOut(period, plan);
  planRefresh(period, plan);
  planScaleIn(period, plan);

  const scalings: RecordedScaling[] = [];
  if (plan.scaleOut > 0) scalings.push({ atMs: nowMs, direction: 'out', count: plan.scaleOut });
  if (plan.victims.length + plan.cancelled > 0) scalings.push({ atMs: nowMs, direction: 'in', count: plan.victims.length + plan.cancelled });
  const decision = buildDecision(period, { desired: plan.desired, actions: actionsOf(period, plan) });
  const nextMemory = rememberPeriod(period, {
    scalings: config.dryRun ? [] : scalings,
    runaway,
    refresh: config.dryRun ? period.refresh.state : plan.refreshState,
    replacementHeld: plan.replacementHeld,
    owedLaunches: config.dryRun ? memory.owedLaunches : plan.owed,
  });
  return { decision, memory: nextMemory };
}

function runawayInput(period: Period, asked: number): RunawayInput {
  const latency = period.observation.metrics?.latencyMs;
  const offered = period.signals.offeredPerSecond;
  return {
    nowMs: period.nowMs,
    current: period.managed,
    warmedAtSample: warmedBeforeSample(period),
    asked,
    askedByExternalMetric: period.signals.leader?.startsWith('external:') ?? false,
    offeredPerSecond: offered,
    offeredConcurrency: offered === undefined || latency === undefined ? undefined : (offered * latency.mean) / 1000,
    goodputPerSecond: period.signals.goodputPerSecond,
  };
}

/** Failing instances to drain and replace, and the launches owed for them, within the ceilings' room. */
function planReplacements(period: Period, desired: number): Plan {
  const { config, memory, observation, nowMs, pool, managed } = period;
  const replacement = planReplacement(config, pool, nowMs);
  noteReplacementTransition(period, replacement);
  if (replacement.reason !== undefined) period.steps.push({ stage: 'replacement', from: managed, to: managed, reason: replacement.reason });
  // A scale-in cancels owed launches first: launching what would be drained next makes no sense.
  const cancelled = Math.min(memory.owedLaunches, Math.max(0, managed - desired));
  const owed = memory.owedLaunches + replacement.replace.length - cancelled;
  const ceiling = Math.min(config.hardMaxInstances, budgetMaxInstances(config.dependencies).max);
  const room = Math.max(0, ceiling - observation.instances.length);
  const replacementLaunches = Math.min(owed, room);
  return {
    desired,
    room: room - replacementLaunches,
    owed: owed - replacementLaunches,
    cancelled,
    replace: replacement.replace,
    replacementHeld: replacement.held,
    replacementLaunches,
    scaleOut: 0,
    refreshState: period.refresh.state,
    retire: [],
    retireOwesLaunch: false,
    surgeLaunches: 0,
    victims: [],
    leaving: new Set(replacement.replace.map((instance) => instance.id)),
  };
}

function planScaleOut(period: Period, plan: Plan): void {
  const { config, observation, managed } = period;
  plan.scaleOut = Math.max(0, plan.desired - managed);
  if (plan.scaleOut <= plan.room) {
    plan.room -= plan.scaleOut;
    return;
  }
  const stage = config.hardMaxInstances <= budgetMaxInstances(config.dependencies).max ? 'hard-ceiling' : 'dependency-budget';
  plan.desired = record(period, stage, plan.desired, managed + plan.room,
    `${observation.instances.length} instances exist (draining included) and ${plan.replacementLaunches} replacements launch: no room for more`);
  plan.scaleOut = plan.room;
  plan.room = 0;
}

function planRefresh(period: Period, plan: Plan): void {
  if (plan.refreshState === undefined) return;
  const step = stepRefresh(period.config, plan.refreshState, period.refresh.targetVersion, period.pool, plan.desired, plan.room, plan.leaving);
  plan.refreshState = step.state;
  plan.retire = step.retire;
  plan.surgeLaunches = step.surgeLaunches;
  plan.room -= step.surgeLaunches;
  if (step.replaceRetired) {
    plan.owed += step.retire.length;
    plan.retireOwesLaunch = true;
  }
  for (const instance of step.retire) plan.leaving.add(instance.id);
  if (step.reason !== undefined) period.steps.push({ stage: 'refresh', from: period.managed, to: period.managed, reason: step.reason });
}

function planScaleIn(period: Period, plan: Plan): void {
  const { managed } = period;
  const count = Math.max(0, managed - plan.desired - plan.cancelled);
  if (count === 0) return;
  const choice = chooseScaleInVictims(period.pool, count, period.refresh.targetVersion, plan.leaving);
  plan.victims = choice.victims;
  if (plan.victims.length < count) {
    plan.desired = record(period, 'scale-in-safety', plan.desired, managed - plan.cancelled - plan.victims.length, choice.kept ?? 'not enough instances may leave');
  }
}

function actionsOf(period: Period, plan: Plan): Action[] {
  const target = period.refresh.targetVersion;
  const drain = (instances: InstanceObservation[], purpose: ActionPurpose, reason: (i: InstanceObservation) => string) =>
    instances.map((i): Action => ({ kind: 'drain', instanceId: i.id, reason: reason(i), purpose }));
  return [
    ...finishDrains(period.config, period.pool.draining, period.nowMs),
    ...drain(plan.replace, 'replace', (i) => `replace: failing health checks${i.readyAtMs === undefined ? ' (never became ready)' : ''}`),
    // Retired without room to surge, an outdated instance is owed a launch, as a replaced one is.
    ...drain(plan.retire, plan.retireOwesLaunch ? 'replace' : 'refresh', (i) => `refresh: version ${i.launchVersion} is replaced by ${target}`),
    ...drain(plan.victims, 'scale', () => `scale in to ${plan.desired}`),
    ...launches(period, plan.replacementLaunches, 'replace', 'replace a drained instance', 0),
    ...launches(period, plan.scaleOut, 'scale', `scale out to ${plan.desired}`, plan.replacementLaunches),
    ...launches(period, plan.surgeLaunches, 'refresh', 'refresh', plan.replacementLaunches + plan.scaleOut),
  ];
}

function launches(period: Period, count: number, purpose: ActionPurpose, reason: string, offset: number): Action[] {
  const actions: Action[] = [];
  for (let i = 0; i < count; i++) {
    actions.push({
      kind: 'launch',
      requestId: `${period.config.pool}/${period.sequence}/launch/${offset + i}`,
      launchVersion: period.refresh.targetVersion,
      reason,
      purpose,
    });
  }
  return actions;
}

/** Warmed instances that were already warmed when the pool's metrics were sampled (their traffic is in the numbers). */
function warmedBeforeSample(period: Period): number {
  const sampledAtMs = period.observation.metrics?.sampledAtMs;
  if (sampledAtMs === undefined) return period.pool.warmed.length;
  return period.pool.warmed.filter((instance) => instance.readyAtMs! + period.config.warmupMs <= sampledAtMs).length;
}

function noteReplacementTransition(period: Period, replacement: ReplacementPlan): void {
  const { memory, nowMs, events } = period;
  if (replacement.held && !memory.replacementHeld) events.push({ kind: 'replacement-held', atMs: nowMs, message: replacement.reason! });
  if (!replacement.held && memory.replacementHeld) events.push({ kind: 'replacement-resumed', atMs: nowMs, message: 'most of the pool is healthy again: replacing failing instances' });
}

// ---------------------------------------------------------------------------------------------
// Frozen results
// ---------------------------------------------------------------------------------------------

function frozenResult(period: Period, freeze: ActiveFreeze): PolicyResult {
  const { managed } = period;
  record(period, 'kill-switch', managed, managed, `frozen (${freeze.scope}) by ${freeze.record.by}: ${freeze.record.reason}; no action of any kind`);
  const decision = buildDecision(period, {
    desired: managed,
    actions: [],
    frozen: { scope: freeze.scope, by: freeze.record.by, reason: freeze.record.reason },
    freezeRequest: freeze.scope === 'self' ? freeze.record : undefined,
  });
  const memory = rememberPeriod(period, {
    scalings: [],
    runaway: { samples: period.memory.runawaySamples, unexplainedGrowthPeriods: 0 },
    refresh: period.refresh.state,
    replacementHeld: period.memory.replacementHeld,
    owedLaunches: period.memory.owedLaunches,
    frozenBy: `${freeze.scope}:${freeze.record.by}`,
  });
  return { decision, memory };
}

function runawayResult(period: Period, reason: string, runaway: { samples: PolicyMemory['runawaySamples'] }): PolicyResult {
  const { config, nowMs, managed, memory } = period;
  record(period, 'runaway', managed, managed, `runaway guard: ${reason}`);
  const freezeRecord: FreezeRecord = { by: RUNAWAY_FREEZE_BY, reason, atMs: nowMs };
  period.events.push({
    kind: 'runaway-freeze',
    atMs: nowMs,
    message: `${config.dryRun ? 'would freeze (dry run)' : 'froze itself'}: ${reason}. Check the metrics and the dependencies, then unfreeze the pool.`,
  });
  const decision = buildDecision(period, {
    desired: managed,
    actions: [],
    frozen: config.dryRun ? undefined : { scope: 'self', by: RUNAWAY_FREEZE_BY, reason },
    freezeRequest: config.dryRun ? undefined : freezeRecord,
  });
  const next = rememberPeriod(period, {
    scalings: [],
    runaway: { samples: runaway.samples, unexplainedGrowthPeriods: 0 },
    refresh: period.refresh.state,
    replacementHeld: memory.replacementHeld,
    owedLaunches: memory.owedLaunches,
    frozenBy: config.dryRun ? undefined : `self:${RUNAWAY_FREEZE_BY}`,
  });
  if (!config.dryRun) next.selfFreeze = freezeRecord;
  return { decision, memory: next };
}

// ---------------------------------------------------------------------------------------------
// Decision and memory
// ---------------------------------------------------------------------------------------------

function buildDecision(
  period: Period,
  outcome: { desired: number; actions: Action[]; frozen?: Decision['frozen']; freezeRequest?: FreezeRecord },
): Decision {
  const { config, observation, nowMs, pool, signals, bounds } = period;
  const metrics = observation.metrics;
  const inputs: DecisionInputs = {
    instances: {
      starting: pool.starting.length,
      warming: pool.warming.length,
      warmed: pool.warmed.length,
      unhealthy: pool.unhealthy.length,
      draining: pool.draining.length,
      total: observation.instances.length,
    },
    offeredPerSecond: signals.offeredPerSecond,
    goodputPerSecond: signals.goodputPerSecond,
    shedPerSecond: metrics?.shedPerSecond,
    errorRatio: metrics?.errorRatio,
    latencyMs: metrics?.latencyMs,
    metricsAgeMs: signals.metricsAgeMs,
    metricCoveragePercent: signals.metricCoveragePercent,
    bounds: { min: bounds.min, max: bounds.max, activeSchedules: bounds.activeSchedules },
    dependencyHealthy: observation.dependencyHealthy,
    freeze: observation.freeze,
  };
  return {
    pool: config.pool,
    atMs: nowMs,
    sequence: period.sequence,
    dryRun: config.dryRun,
    inputs,
    signals: signals.readings,
    current: period.managed,
    recommended: signals.recommendation,
    desired: outcome.desired,
    steps: period.steps,
    actions: outcome.actions,
    events: [...period.events, ...period.refresh.events],
    admitSheddable: admitSheddable(config, signals),
    frozen: outcome.frozen,
    freezeRequest: outcome.freezeRequest,
  };
}

/** The sheddable/batch class is admitted only while every signal is present and the load is below the configured share of target. */
function admitSheddable(config: PolicyConfig, signals: SignalSummary): boolean {
  if (config.batchAdmission === undefined) return true;
  if (signals.missing || signals.utilizationRatio === undefined) return false;
  return signals.utilizationRatio * 100 < config.batchAdmission.maxUtilizationPercent;
}

function rememberPeriod(
  period: Period,
  update: {
    scalings: RecordedScaling[];
    runaway: { samples: PolicyMemory['runawaySamples']; unexplainedGrowthPeriods: number };
    refresh: PolicyMemory['refresh'];
    replacementHeld: boolean;
    owedLaunches: number;
    frozenBy?: string;
  },
): PolicyMemory {
  const { config, memory, nowMs, signals } = period;
  const keepScalingsMs = Math.max(
    config.runaway.windowMs,
    config.scaleOut.cooldownMs,
    config.scaleIn.cooldownMs,
    ...config.scaleOut.rateLimits.map((rule) => rule.periodMs),
    ...config.scaleIn.rateLimits.map((rule) => rule.periodMs),
  );
  const next: PolicyMemory = {
    sequence: period.sequence,
    recommendations: rememberRecommendation(recommendationHistory(memory, nowMs, period.managed), nowMs, signals.recommendation, {
      scaleOutMs: config.scaleOut.stabilizationMs,
      scaleInMs: config.scaleIn.stabilizationMs,
    }),
    scalings: pruneScalings([...memory.scalings, ...update.scalings], nowMs, keepScalingsMs),
    runawaySamples: update.runaway.samples,
    unexplainedGrowthPeriods: update.runaway.unexplainedGrowthPeriods,
    metricsOutageSinceMs: signals.missing ? (memory.metricsOutageSinceMs ?? nowMs) : undefined,
    dependencyDegraded: period.degraded,
    replacementHeld: update.replacementHeld,
    owedLaunches: update.owedLaunches,
  };
  const selfFreeze = pendingSelfFreeze(memory, period.observation);
  if (selfFreeze !== undefined) next.selfFreeze = selfFreeze;
  if (update.frozenBy !== undefined) next.frozenBy = update.frozenBy;
  if (update.refresh !== undefined) next.refresh = update.refresh;
  return next;
}
