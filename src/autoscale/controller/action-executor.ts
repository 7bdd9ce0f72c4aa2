// Executes a decision's actions, each as: intent -> provider -> outcome.
//
// * Intent: a fenced transaction that also requires no kill-switch key. A launch or terminate
//   writes its action record (`.../actions/<request id>`); a drain is only a record change (the
//   proxies stop sending it requests), so its intent is the whole action.
// * Provider: the launch or terminate, carrying the fencing token. The provider refuses a token
//   older than one it has seen, so a leader deposed after its intent (paused right here, the
//   classic hazard) cannot act: the new leader fenced the provider when it took over.
// * Outcome: a fenced transaction that records the result (the instance record, an event) and
//   removes the action record. If it fails, the action happened but is unrecorded: the next
//   leader finds the instance in the provider's list and adopts it.
//
// A refused intent stops the remaining actions: deposed (an error) or frozen (a quiet stop: the
// freeze is reported by the next decision).

import type { TxnOp } from '../../coord/coord-store.ts';
import type { TimelineEvent } from '../../control/events.ts';
import type { Action, Decision } from '../policy/types.ts';
import { ProviderError } from '../providers/provider.ts';
import { actionKey, instanceKey } from '../state/keys.ts';
import type { ActionRecord, InstanceState } from '../state/records.ts';
import { ControllerError } from './fence.ts';
import type { PeriodContext } from './pool-period.ts';

/** Test hooks at the points where a pause matters (a long GC, SIGSTOP, a VM migration). */
export interface ActionHooks {
  /** After the decision is committed, before the first action's intent. */
  beforeIntent?(action: Action, fencingToken: bigint): Promise<void>;
  /** After an action's intent is committed, before the provider is asked. */
  beforeProviderCall?(action: Action, fencingToken: bigint): Promise<void>;
}

export type ExecutionOutcome = 'done' | 'frozen';
type ActionOutcome = 'done' | 'failed' | 'frozen';

export interface Execution {
  outcome: ExecutionOutcome;
  /** The actions not carried out: refused by a freeze, failed at the provider, or after either. */
  missed: Action[];
}

/**
 * Executes the actions in order until a freeze refuses one (a failed launch or terminate is
 * recorded and the rest go on). Throws CONCORD_E_CONTROLLER_DEPOSED when this leader turns out to
 * be deposed; `onDone` has every action carried out so far either way.
 */
export async function executeActions(
  context: PeriodContext, decision: Decision, instances: Map<string, InstanceState>, hooks: ActionHooks = {}, onDone: (action: Action) => void = () => {},
): Promise<Execution> {
  if (decision.dryRun) return { outcome: 'done', missed: [] };
  const missed: Action[] = [];
  for (const [index, action] of decision.actions.entries()) {
    await hooks.beforeIntent?.(action, context.fence.token);
    const outcome = await executeAction(context, action, instances, hooks);
    if (outcome === 'frozen') return { outcome, missed: [...missed, ...decision.actions.slice(index)] };
    if (outcome === 'done') onDone(action);
    else missed.push(action);
  }
  return { outcome: 'done', missed };
}

function event(context: PeriodContext, kind: string, message: string, data?: unknown): Omit<TimelineEvent, 'by'> {
  return { atMs: context.clock(), source: 'autoscaler', kind, pool: context.setup.name, message, ...(data === undefined ? {} : { data }) };
}

async function executeAction(context: PeriodContext, action: Action, instances: Map<string, InstanceState>, hooks: ActionHooks): Promise<ActionOutcome> {
  switch (action.kind) {
    case 'drain':
      return drain(context, action, instances);
    case 'launch':
    case 'terminate':
      return providerAction(context, action, instances, hooks);
  }
}

async function drain(context: PeriodContext, action: Extract<Action, { kind: 'drain' }>, instances: Map<string, InstanceState>): Promise<ActionOutcome> {
  const instance = instances.get(action.instanceId);
  if (instance === undefined) return 'done';
  const draining: InstanceState = { ...instance, drainingSinceMs: context.clock() };
  const outcome = await context.fence.commitUnlessFrozen(context.setup.name, [
    { kind: 'put', key: instanceKey(context.setup.name, instance.id), value: JSON.stringify(draining) },
    context.timeline.op(event(context, 'drain', `drain ${instance.id} (${instance.address}): ${action.reason}`)),
  ]);
  if (outcome === 'frozen') return 'frozen';
  instances.set(instance.id, draining);
  return 'done';
}

async function providerAction(
  context: PeriodContext,
  action: Extract<Action, { kind: 'launch' | 'terminate' }>,
  instances: Map<string, InstanceState>,
  hooks: ActionHooks,
): Promise<ActionOutcome> {
  const { setup, fence } = context;
  const record: ActionRecord = { kind: action.kind, requestId: action.requestId, fencingToken: fence.token.toString(), leader: context.leaderName, startedAtMs: context.clock() };
  if (action.kind === 'terminate') record.instanceId = action.instanceId;
  const intent = await fence.commitUnlessFrozen(setup.name, [{ kind: 'put', key: actionKey(setup.name, action.requestId), value: JSON.stringify(record) }]);
  if (intent === 'frozen') return 'frozen';
  await hooks.beforeProviderCall?.(action, fence.token);

  let outcomeOps: TxnOp[];
  let outcome: ActionOutcome = 'done';
  try {
    outcomeOps = action.kind === 'launch' ? await launch(context, action, instances) : await terminate(context, action, instances);
  } catch (error) {
    outcome = 'failed';
    outcomeOps = [context.timeline.op(event(context, 'action-failed', `${action.kind} ${action.requestId} failed: ${(error as Error).message}`, { code: (error as { code?: string }).code }))];
    if (error instanceof ProviderError && error.code === 'CONCORD_E_PROVIDER_STALE_FENCING_TOKEN') {
      // The provider has seen a newer leader: record nothing more as leader.
      await context.timeline.write([event(context, 'action-refused', `the provider refused ${action.kind} ${action.requestId}: ${error.message}`)]).catch(() => undefined);
      throw new ControllerError('CONCORD_E_CONTROLLER_DEPOSED', `the provider refused fencing token ${fence.token}: a newer leader acts now`);
    }
  }
  await fence.commit([{ kind: 'delete', key: actionKey(setup.name, action.requestId) }, ...outcomeOps]);
  return outcome;
}

async function launch(context: PeriodContext, action: Extract<Action, { kind: 'launch' }>, instances: Map<string, InstanceState>): Promise<TxnOp[]> {
  const launched = await context.provider.launch({ requestId: action.requestId, launchVersion: action.launchVersion, fencingToken: context.fence.token });
  const state: InstanceState = {
    id: launched.id,
    address: launched.address,
    launchVersion: launched.launchVersion,
    launchedAtMs: launched.launchedAtMs,
    launchRequestId: action.requestId,
    healthy: false,
  };
  instances.set(state.id, state);
  return [
    { kind: 'put', key: instanceKey(context.setup.name, state.id), value: JSON.stringify(state) },
    context.timeline.op(event(context, 'launch', `launched ${state.id} at ${state.address} (${action.requestId}): ${action.reason}`, { requestId: action.requestId, instanceId: state.id, fencingToken: context.fence.token.toString() })),
  ];
}

async function terminate(context: PeriodContext, action: Extract<Action, { kind: 'terminate' }>, instances: Map<string, InstanceState>): Promise<TxnOp[]> {
  await context.provider.terminate({ requestId: action.requestId, instanceId: action.instanceId, fencingToken: context.fence.token });
  instances.delete(action.instanceId);
  return [
    { kind: 'delete', key: instanceKey(context.setup.name, action.instanceId) },
    context.timeline.op(event(context, 'terminate', `terminated ${action.instanceId} (${action.requestId}): ${action.reason}`, { requestId: action.requestId, instanceId: action.instanceId, fencingToken: context.fence.token.toString() })),
  ];
}
