// The two policies the simulator compares, behind the same SimPolicy face: Concord's policy
// (src/autoscale/policy) and the HPA-equivalent baseline (src/autoscale/hpa). Each adapter turns
// the simulator's view into the policy's own inputs and its decision into launches and drains.

import { hpaDecide, initialHpaMemory, type HpaConfig, type HpaPod } from '../hpa/hpa-policy.ts';
import { initialMemory } from '../policy/defaults.ts';
import { decide } from '../policy/policy.ts';
import type { InstanceObservation, PolicyConfig, PoolObservation } from '../policy/types.ts';
import type { SimCommand, SimInstanceView, SimPolicy, SimView } from './simulation.ts';

const LAUNCH_VERSION = 'v1';
/** Stages that pace the pool rather than guard it. */
const PACING_STAGES = new Set(['stabilization', 'cooldown', 'rate-limit']);

export function concordSimPolicy(config: PolicyConfig): SimPolicy {
  let memory = initialMemory();
  return {
    name: 'concord',
    decide(view: SimView): SimCommand {
      const observation: PoolObservation = {
        nowMs: view.nowMs,
        launchVersion: LAUNCH_VERSION,
        instances: view.instances.map(toInstanceObservation),
        metrics: view.poolMetrics,
        freeze: view.freeze === undefined ? {} : { pool: view.freeze },
        dependencyHealthy: Object.fromEntries(config.dependencies.map((d) => [d.name, view.dependencyHealthy])),
        localTime: {},
      };
      const result = decide(config, memory, observation);
      memory = result.memory;
      const { decision } = result;
      const stages = new Set<string>(decision.steps.map((step) => step.stage));
      stages.delete('target-tracking');
      const pacing = [...stages].filter((stage) => PACING_STAGES.has(stage));
      const guards = [...stages].filter((stage) => !PACING_STAGES.has(stage));
      return {
        launch: decision.actions.filter((a) => a.kind === 'launch').length,
        drain: decision.actions.flatMap((a) => (a.kind === 'drain' ? [a.instanceId] : [])),
        terminate: decision.actions.flatMap((a) => (a.kind === 'terminate' ? [a.instanceId] : [])),
        freezeRequest: decision.freezeRequest,
        guards,
        pacing,
      };
    },
  };
}

function toInstanceObservation(instance: SimInstanceView): InstanceObservation {
  const observation: InstanceObservation = {
    id: instance.id,
    launchedAtMs: instance.launchedAtMs,
    launchVersion: LAUNCH_VERSION,
    healthy: instance.readyAtMs !== undefined,
  };
  if (instance.readyAtMs !== undefined) observation.readyAtMs = instance.readyAtMs;
  if (instance.drainingSinceMs !== undefined) {
    observation.drainingSinceMs = instance.drainingSinceMs;
    observation.drained = instance.drained;
  }
  if (instance.metrics !== undefined) observation.metrics = instance.metrics;
  return observation;
}

export function hpaSimPolicy(config: HpaConfig): SimPolicy {
  let memory = initialHpaMemory();
  return {
    name: 'hpa',
    decide(view: SimView): SimCommand {
      const terminate = view.instances.filter((i) => i.drainingSinceMs !== undefined && i.drained).map((i) => i.id);
      const live = view.instances.filter((i) => i.drainingSinceMs === undefined);
      const pods: HpaPod[] = live.map((i) => ({ id: i.id, pending: i.readyAtMs === undefined, deleting: false, metric: i.metrics?.inflight }));
      const result = hpaDecide(config, memory, { nowMs: view.nowMs, currentReplicas: live.length, pods });
      memory = result.memory;
      const delta = result.decision.desiredReplicas - live.length;
      return {
        launch: Math.max(0, delta),
        drain: delta < 0 ? replicaSetDeletionOrder(live).slice(0, -delta).map((i) => i.id) : [],
        terminate,
        guards: [],
      };
    },
  };
}

/** A ReplicaSet deletes pods not yet ready first, then those ready for the shortest time, newest first. */
function replicaSetDeletionOrder(pods: readonly SimInstanceView[]): SimInstanceView[] {
  const rank = (pod: SimInstanceView) => (pod.readyAtMs === undefined ? 0 : 1);
  return [...pods].sort((a, b) => rank(a) - rank(b) || (b.readyAtMs ?? 0) - (a.readyAtMs ?? 0) || b.launchedAtMs - a.launchedAtMs || (a.id < b.id ? 1 : -1));
}
