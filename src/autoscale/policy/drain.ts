// Every removal drains first: the decision says "drain X" (the proxies stop sending X new
// requests and let its in-flight ones finish), and only once X reports drained, or the drain
// deadline passed, does a later decision say "terminate X". Terminate request ids are derived from
// the instance id, so repeating a terminate is harmless.

import type { Action, InstanceObservation, PolicyConfig } from './types.ts';

export function terminateRequestId(pool: string, instanceId: string): string {
  return `${pool}/terminate/${instanceId}`;
}

/** Terminate actions for the draining instances that finished draining or ran out of time. */
export function finishDrains(config: PolicyConfig, draining: readonly InstanceObservation[], nowMs: number): Action[] {
  const actions: Action[] = [];
  for (const instance of draining) {
    const elapsedMs = nowMs - instance.drainingSinceMs!;
    if (!instance.drained && elapsedMs < config.drainDeadlineMs) continue;
    const reason = instance.drained ? 'drained' : `drain deadline (${config.drainDeadlineMs} ms) passed with requests still in flight`;
    actions.push({ kind: 'terminate', instanceId: instance.id, requestId: terminateRequestId(config.pool, instance.id), reason, purpose: 'finish-drain' });
  }
  return actions;
}
