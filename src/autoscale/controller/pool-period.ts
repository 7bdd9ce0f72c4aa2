// One control period of one pool, up to the decision: read the pool's state from the store in one
// consistent snapshot, list the provider, sample the metrics, reconcile, decide, and commit the
// decision (memory, status, instance records, events, a runaway freeze) in fenced transactions.
// The actions come after (action-executor.ts): what the decision commits is what they act on.

import type { CoordStore, KeyValue, TxnOp } from '../../coord/coord-store.ts';
import type { EventTimeline, TimelineEvent } from '../../control/events.ts';
import { localTimes } from '../local-time.ts';
import { initialMemory } from '../policy/defaults.ts';
import { decide } from '../policy/policy.ts';
import { settleMemory } from '../policy/settle.ts';
import type { Action, Decision, FreezeRecord, PolicyConfig, PolicyMemory, PoolObservation } from '../policy/types.ts';
import type { Provider, ProviderEvent } from '../providers/provider.ts';
import { actionKey, actionsPrefix, GLOBAL_FREEZE_KEY, instanceKey, instancesPrefix, memoryKey, poolFreezeKey, poolPrefix, statusKey } from '../state/keys.ts';
import { reconcile, type PoolSample } from '../state/reconcile.ts';
import { parseActionRecord, parseFreezeValue, parseInstanceState, parsePolicyMemory, type ActionRecord, type InstanceState, type PoolStatus } from '../state/records.ts';
import type { Fence } from './fence.ts';
import type { MetricsSource } from './metrics-source.ts';

/** One pool as the controller runs it. */
export interface PoolSetup {
  name: string;
  config: PolicyConfig;
  /** The launch configuration's version: instances of another version are refreshed. */
  launchVersion: string;
  /** Makes the pool's provider (when this controller first leads, and again after it closed one); `onEvent` gets its events. */
  createProvider: (onEvent: (event: ProviderEvent) => void) => Provider;
  /**
   * Its instances live and die with this controller (a process provider of its own): when another
   * controller leads instead, it cannot manage them, so this one stops them.
   */
  instancesDieWithController: boolean;
  /** A launched instance the provider does not list yet is kept this long (0 for a provider whose list is exact). */
  listGraceMs: number;
}

/** What the store holds for a pool at the start of a period. */
export interface PoolState {
  memory: PolicyMemory;
  instances: InstanceState[];
  pendingActions: ActionRecord[];
  freeze: PoolObservation['freeze'];
  /** Records that did not parse (each is reported as an event and ignored). */
  problems: string[];
}

/** Operations per transaction, well under etcd's default --max-txn-ops (128). */
export const MAX_OPS_PER_TXN = 64;

export interface PeriodContext {
  store: CoordStore;
  fence: Fence;
  timeline: EventTimeline;
  setup: PoolSetup;
  provider: Provider;
  metrics: MetricsSource;
  /** The period's start on the wall clock (records and decisions carry wall-clock times: they move between machines). */
  nowMs: number;
  clock: () => number;
  leaderName: string;
}

export interface PeriodDecision {
  decision: Decision;
  /** The policy's memory assuming every action happens (settle it with what did). */
  memory: PolicyMemory;
  /** The pool's instance records after reconciliation, by id (the actions update them). */
  instances: Map<string, InstanceState>;
}

export async function readPoolState(store: CoordStore, pool: string): Promise<PoolState> {
  const snapshot = await store.txn({
    compare: [],
    success: [
      { kind: 'range', key: poolPrefix(pool), prefix: true },
      { kind: 'range', key: GLOBAL_FREEZE_KEY },
      { kind: 'range', key: poolFreezeKey(pool) },
    ],
  });
  const [records, global, own] = snapshot.results.map((result) => (result.kind === 'range' ? result.result.kvs : []));
  const state: PoolState = { memory: initialMemory(), instances: [], pendingActions: [], freeze: {}, problems: [] };
  for (const kv of records ?? []) readRecord(pool, kv, state);
  if (global?.[0] !== undefined) state.freeze.global = parseFreezeValue(global[0].value);
  if (own?.[0] !== undefined) state.freeze.pool = parseFreezeValue(own[0].value);
  return state;
}

function readRecord(pool: string, kv: KeyValue, state: PoolState): void {
  if (kv.key === memoryKey(pool)) {
    const parsed = parsePolicyMemory(kv.value, kv.key);
    if (parsed.ok) state.memory = parsed.value;
    else state.problems.push(`${parsed.problem}: starting from a fresh memory`);
  } else if (kv.key.startsWith(instancesPrefix(pool))) {
    const parsed = parseInstanceState(kv.value, kv.key);
    if (parsed.ok) state.instances.push(parsed.value);
    else state.problems.push(`${parsed.problem}: ignored (the provider's list decides what exists)`);
  } else if (kv.key.startsWith(actionsPrefix(pool))) {
    const parsed = parseActionRecord(kv.value, kv.key);
    if (parsed.ok) state.pendingActions.push(parsed.value);
    else state.problems.push(`${parsed.problem}: ignored`);
  }
}

/** Reads, reconciles, decides and commits the decision; the caller then executes its actions and commits the memory (commitMemory). */
export async function decidePeriod(context: PeriodContext): Promise<PeriodDecision> {
  const { store, setup, provider, metrics, nowMs } = context;
  const state = await readPoolState(store, setup.name);
  const listed = await provider.list();
  const sample = await metrics.sample(setup.name, listed.map((instance) => instance.address)).catch((): PoolSample | undefined => undefined);
  const reconciled = reconcile(nowMs, state.instances, listed, sample, { listGraceMs: setup.listGraceMs });
  for (const instance of reconciled.states) provider.reportReadiness(instance.id, instance.readyAtMs !== undefined && instance.healthy);

  const observation: PoolObservation = {
    nowMs,
    launchVersion: setup.launchVersion,
    instances: reconciled.instances,
    freeze: state.freeze,
    dependencyHealthy: sample?.dependencyHealthy ?? {},
    localTime: localTimes(nowMs, new Set(setup.config.schedules.map((schedule) => schedule.timeZone))),
  };
  if (reconciled.metrics !== undefined) observation.metrics = reconciled.metrics;
  const { decision, memory } = decide(setup.config, state.memory, observation);

  const events: Omit<TimelineEvent, 'by'>[] = [
    ...state.problems.map((message) => ({ atMs: nowMs, source: 'autoscaler', kind: 'store-record-invalid', pool: setup.name, message })),
    ...reconciled.events.map((event) => ({ atMs: nowMs, source: 'autoscaler', kind: event.kind, pool: setup.name, message: event.message })),
    ...state.pendingActions.map((action) => ({
      atMs: nowMs,
      source: 'autoscaler',
      kind: 'action-outcome-unknown',
      pool: setup.name,
      message: `${action.kind} ${action.requestId} by ${action.leader} (fencing token ${action.fencingToken}) was recorded but not its outcome; the provider's list decides (an instance that exists is adopted)`,
    })),
    ...decision.events.map((event) => ({ atMs: event.atMs, source: 'autoscaler', kind: event.kind, pool: setup.name, message: event.message })),
    decisionEvent(decision, context),
  ];
  const recordOps: TxnOp[] = [
    ...reconciled.changed.map((instance): TxnOp => ({ kind: 'put', key: instanceKey(setup.name, instance.id), value: JSON.stringify(instance) })),
    ...reconciled.removed.map((instance): TxnOp => ({ kind: 'delete', key: instanceKey(setup.name, instance.id) })),
    ...state.pendingActions.map((action): TxnOp => ({ kind: 'delete', key: actionKey(setup.name, action.requestId) })),
  ];
  // The decision's sequence is taken now (launch request ids derive from it, so no later decision
  // reuses them, even if this leader dies before the actions); the rest of the memory follows the actions.
  const decisionOps: TxnOp[] = [
    { kind: 'put', key: memoryKey(setup.name), value: JSON.stringify({ ...state.memory, sequence: decision.sequence }) },
    { kind: 'put', key: statusKey(setup.name), value: JSON.stringify(statusOf(decision, context, listed.length)) },
  ];
  if (decision.freezeRequest !== undefined) decisionOps.push(freezeRequestOp(setup.name, decision.freezeRequest));
  await commitInChunks(context, recordOps, events, decisionOps);
  return { decision, memory, instances: new Map(reconciled.states.map((instance) => [instance.id, instance])) };
}

/** Commits record changes and events in chunks, and the sequence and status last. */
async function commitInChunks(context: PeriodContext, recordOps: TxnOp[], events: Omit<TimelineEvent, 'by'>[], decisionOps: TxnOp[]): Promise<void> {
  const eventOps = events.map((event) => context.timeline.op(event));
  const all = [...recordOps, ...eventOps];
  const room = MAX_OPS_PER_TXN - decisionOps.length;
  const last = all.splice(Math.max(0, all.length - room));
  for (let start = 0; start < all.length; start += MAX_OPS_PER_TXN) await context.fence.commit(all.slice(start, start + MAX_OPS_PER_TXN));
  await context.fence.commit([...last, ...decisionOps]);
}

/** The runaway guard's freeze, written as the pool's kill-switch key (an operator unfreezes it like any other). */
function freezeRequestOp(pool: string, request: FreezeRecord): TxnOp {
  return { kind: 'put', key: poolFreezeKey(pool), value: JSON.stringify(request) };
}

function statusOf(decision: Decision, context: PeriodContext, actual: number): PoolStatus {
  const status: PoolStatus = {
    pool: decision.pool,
    leader: context.leaderName,
    fencingToken: context.fence.token.toString(),
    atMs: decision.atMs,
    sequence: decision.sequence,
    desired: decision.desired,
    current: decision.current,
    actual,
    launchVersion: context.setup.launchVersion,
    dryRun: decision.dryRun,
    reasons: decision.steps.map((step) => `${step.stage}: ${step.from} -> ${step.to}: ${step.reason}`),
  };
  if (decision.frozen !== undefined) status.frozen = decision.frozen;
  return status;
}

function decisionEvent(decision: Decision, context: PeriodContext): Omit<TimelineEvent, 'by'> {
  const counts = new Map<string, number>();
  for (const action of decision.actions) counts.set(action.kind, (counts.get(action.kind) ?? 0) + 1);
  const actions = counts.size === 0 ? 'no action' : [...counts].map(([kind, count]) => `${kind} x${count}`).join(', ');
  const frozen = decision.frozen === undefined ? '' : `; frozen (${decision.frozen.scope}) by ${decision.frozen.by}: ${decision.frozen.reason}`;
  const dryRun = decision.dryRun ? ' (dry run: nothing executed)' : '';
  return {
    atMs: decision.atMs,
    source: 'autoscaler',
    kind: 'decision',
    pool: decision.pool,
    message: `desired ${decision.desired} (current ${decision.current}, recommended ${decision.recommended}): ${actions}${dryRun}${frozen}`,
    data: {
      sequence: decision.sequence,
      fencingToken: context.fence.token.toString(),
      inputs: decision.inputs,
      signals: decision.signals,
      steps: decision.steps,
      actions: decision.actions,
      admitSheddable: decision.admitSheddable,
      frozen: decision.frozen,
    },
  };
}

/** The memory after the actions: what the decision assumed, less what was not carried out. */
export async function commitMemory(context: PeriodContext, period: PeriodDecision, missed: readonly Action[]): Promise<void> {
  const memory = settleMemory(period.memory, period.decision, missed);
  await context.fence.commit([{ kind: 'put', key: memoryKey(context.setup.name), value: JSON.stringify(memory) }]);
}
