// The autoscaler's keys in the coordination store. Plain keys with JSON values, so an operator can
// read and write them with etcdctl as well as with `concord autoscale`:
//
//   /concord/autoscale/freeze                       kill switch for every pool ({by, reason, atMs})
//   /concord/autoscale/freeze/<pool>                kill switch for one pool
//   /concord/autoscale/leader/<lease ID in hex>     election: the lowest create revision leads
//   /concord/autoscale/pools/<pool>/status          the leader's last decision, summarized (desired, actual, frozen)
//   /concord/autoscale/pools/<pool>/memory          the policy's memory (PolicyMemory)
//   /concord/autoscale/pools/<pool>/instances/<id>  the actual set: one record per instance
//   /concord/autoscale/pools/<pool>/actions/<request id>   a launch or terminate in flight
//
// Pool names are restricted (see POOL_NAME_PATTERN), so a pool's keys never reach into another's.

export const AUTOSCALE_PREFIX = '/concord/autoscale/';
export const GLOBAL_FREEZE_KEY = '/concord/autoscale/freeze';
export const LEADER_ELECTION_PREFIX = '/concord/autoscale/leader/';
const POOLS_PREFIX = '/concord/autoscale/pools/';

/** Letters, digits, '.', '_' and '-', starting with a letter or digit; at most 63 characters (a DNS label's length). */
export const POOL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function poolFreezeKey(pool: string): string {
  return `${GLOBAL_FREEZE_KEY}/${pool}`;
}

export function poolPrefix(pool: string): string {
  return `${POOLS_PREFIX}${pool}/`;
}

export function statusKey(pool: string): string {
  return `${poolPrefix(pool)}status`;
}

export function memoryKey(pool: string): string {
  return `${poolPrefix(pool)}memory`;
}

export function instancesPrefix(pool: string): string {
  return `${poolPrefix(pool)}instances/`;
}

export function instanceKey(pool: string, instanceId: string): string {
  return `${instancesPrefix(pool)}${instanceId}`;
}

export function actionsPrefix(pool: string): string {
  return `${poolPrefix(pool)}actions/`;
}

export function actionKey(pool: string, requestId: string): string {
  return `${actionsPrefix(pool)}${requestId}`;
}

/** The pool a status key belongs to, or undefined for any other key. */
export function poolOfStatusKey(key: string): string | undefined {
  const match = /^\/concord\/autoscale\/pools\/([^/]+)\/status$/.exec(key);
  return match?.[1];
}
