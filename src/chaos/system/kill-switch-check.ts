// The kill switch honoured, whoever leads: no launch or terminate intent may be committed while a
// freeze key (global or the pool's) exists. Judged in revision order from the store's history, so
// an intent committed just before the freeze (its outcome written after) is allowed, as designed:
// the freeze stops the next action, not one the provider already has.
//
// Pure: no I/O.

import { acceptedActions } from './autoscaler-fencing-check.ts';
import type { StoreChange } from './store-history.ts';

export interface KillSwitchVerdict {
  /** Freeze windows seen (a put of a freeze key to its delete). */
  freezes: number;
  violations: string[];
}

const FREEZE_KEY = /^\/concord\/autoscale\/freeze(\/[^/]+)?$/;
const ACTION_POOL = /^\/concord\/autoscale\/pools\/([^/]+)\/actions\//;

export function checkKillSwitch(history: readonly StoreChange[]): KillSwitchVerdict {
  const intents = new Map(acceptedActions(history).filter((action) => action.stage === 'intent').map((action) => [action.revision, action]));
  /** Freeze key -> revision it was set at. */
  const frozen = new Map<string, bigint>();
  let freezes = 0;
  const violations: string[] = [];
  const ordered = [...history].sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
  for (const change of ordered) {
    const freeze = FREEZE_KEY.exec(change.key);
    if (freeze !== null) {
      if (change.type === 'put') {
        if (!frozen.has(change.key)) freezes++;
        frozen.set(change.key, change.revision);
      } else frozen.delete(change.key);
      continue;
    }
    const intent = change.type === 'put' ? intents.get(change.revision) : undefined;
    const pool = ACTION_POOL.exec(change.key)?.[1];
    if (intent === undefined || pool === undefined) continue;
    for (const [key, since] of frozen) {
      if (key === '/concord/autoscale/freeze' || key === `/concord/autoscale/freeze/${pool}`) {
        violations.push(`${intent.kind} ${intent.requestId} of pool ${pool} (fencing token ${intent.fencingToken}, ${intent.leader ?? 'unknown leader'}) committed at revision ${change.revision} while ${key} was set (since revision ${since})`);
      }
    }
  }
  return { freezes, violations };
}
