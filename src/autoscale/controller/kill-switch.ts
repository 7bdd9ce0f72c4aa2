// The kill switch and the autoscaler's status, as operations on the store (the CLI's
// `concord autoscale freeze|unfreeze|status`, and anything else that wants them). The keys are
// plain (state/keys.ts): `etcdctl put /concord/autoscale/freeze "reason"` freezes too, and
// `etcdctl del` unfreezes. Either way the leader sees it at its next period (and the next action's
// intent is refused at once, fence.ts), whichever controller leads by then.

import type { CoordStore, KeyValue } from '../../coord/coord-store.ts';
import { EventTimeline } from '../../control/events.ts';
import type { FreezeRecord } from '../policy/types.ts';
import { AUTOSCALE_PREFIX, GLOBAL_FREEZE_KEY, LEADER_ELECTION_PREFIX, POOL_NAME_PATTERN, poolFreezeKey } from '../state/keys.ts';
import {
  parseActionRecord,
  parseFreezeValue,
  parseInstanceState,
  parseLeaderRecord,
  parsePoolStatus,
  type ActionRecord,
  type InstanceState,
  type LeaderRecord,
  type PoolStatus,
} from '../state/records.ts';

/** The name events written by the CLI carry. */
export const CLI_WRITER = 'concord-cli';
/** Limits on what an operator types. */
export const MAX_FREEZE_REASON_LENGTH = 1_000;
export const MAX_FREEZE_BY_LENGTH = 200;

export class KillSwitchError extends Error {
  override name = 'KillSwitchError';
  readonly code = 'CONCORD_E_FREEZE_INVALID';
}

export interface FreezeRequest {
  /** One pool; absent: every pool. */
  pool?: string;
  /** Who freezes (an operator, a tool). */
  by: string;
  reason: string;
  atMs: number;
}

function keyFor(pool: string | undefined): string {
  if (pool === undefined) return GLOBAL_FREEZE_KEY;
  if (!POOL_NAME_PATTERN.test(pool)) throw new KillSwitchError(`'${pool}' is not a pool name (letters, digits, '.', '_', '-', at most 63)`);
  return poolFreezeKey(pool);
}

function previousOf(kvs: KeyValue[] | undefined): FreezeRecord | undefined {
  return kvs?.[0] === undefined ? undefined : parseFreezeValue(kvs[0].value);
}

/** Sets the kill switch (and records the flip as an event in the same transaction); returns the freeze it replaced, if any. */
export async function freeze(store: CoordStore, request: FreezeRequest): Promise<{ key: string; replaced?: FreezeRecord }> {
  const reason = request.reason.trim();
  if (reason === '') throw new KillSwitchError('a freeze needs a reason (--reason TEXT): the next person to look will want to know why');
  if (reason.length > MAX_FREEZE_REASON_LENGTH) throw new KillSwitchError(`the reason is ${reason.length} characters; at most ${MAX_FREEZE_REASON_LENGTH}`);
  const by = request.by.trim();
  if (by === '' || by.length > MAX_FREEZE_BY_LENGTH) throw new KillSwitchError(`--by must be 1 to ${MAX_FREEZE_BY_LENGTH} characters`);
  const key = keyFor(request.pool);
  const record: FreezeRecord = { by, reason, atMs: request.atMs };
  const scope = request.pool === undefined ? 'every pool' : `pool ${request.pool}`;
  const timeline = new EventTimeline(store, CLI_WRITER);
  const result = await store.txn({
    compare: [],
    success: [
      { kind: 'range', key },
      { kind: 'put', key, value: JSON.stringify(record) },
      timeline.op({ atMs: request.atMs, source: 'cli', kind: 'freeze-set', message: `${by} froze the autoscaler for ${scope}: ${reason}`, ...(request.pool === undefined ? {} : { pool: request.pool }), data: { key, by, reason } }),
    ],
  });
  const replaced = previousOf(result.results[0]?.kind === 'range' ? result.results[0].result.kvs : undefined);
  return replaced === undefined ? { key } : { key, replaced };
}

/** Clears the kill switch; returns the freeze it removed (undefined: it was not set). */
export async function unfreeze(store: CoordStore, request: { pool?: string; by: string; atMs: number }): Promise<{ key: string; removed?: FreezeRecord }> {
  const key = keyFor(request.pool);
  const scope = request.pool === undefined ? 'every pool' : `pool ${request.pool}`;
  const timeline = new EventTimeline(store, CLI_WRITER);
  const result = await store.txn({
    compare: [{ key, target: 'version', result: '>', value: 0n }],
    success: [
      { kind: 'range', key },
      { kind: 'delete', key },
      timeline.op({ atMs: request.atMs, source: 'cli', kind: 'freeze-cleared', message: `${request.by} unfroze the autoscaler for ${scope}`, ...(request.pool === undefined ? {} : { pool: request.pool }), data: { key, by: request.by } }),
    ],
  });
  if (!result.succeeded) return { key };
  const removed = previousOf(result.results[0]?.kind === 'range' ? result.results[0].result.kvs : undefined);
  return removed === undefined ? { key } : { key, removed };
}

export interface PoolReport {
  pool: string;
  freeze?: FreezeRecord;
  /** The leader's last decision, summarized; absent until a leader has decided for the pool. */
  status?: PoolStatus;
  instances: InstanceState[];
  /** Launches and terminates recorded but not finished. */
  pendingActions: ActionRecord[];
}

export interface AutoscaleReport {
  leader?: LeaderRecord & { fencingToken: string; key: string };
  globalFreeze?: FreezeRecord;
  pools: PoolReport[];
  /** Records that did not parse. */
  problems: string[];
}

/** Everything under /concord/autoscale/, read in one revision. */
export async function autoscaleReport(store: CoordStore): Promise<AutoscaleReport> {
  const snapshot = await store.txn({
    compare: [],
    success: [
      { kind: 'range', key: AUTOSCALE_PREFIX, prefix: true },
      { kind: 'range', key: LEADER_ELECTION_PREFIX, prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 },
    ],
  });
  const [all, leaders] = snapshot.results.map((result) => (result.kind === 'range' ? result.result.kvs : []));
  const report: AutoscaleReport = { pools: [], problems: [] };
  const leaderKv = leaders?.[0];
  if (leaderKv !== undefined) {
    const parsed = parseLeaderRecord(leaderKv.value);
    if (parsed.ok) report.leader = { ...parsed.value, fencingToken: leaderKv.createRevision.toString(), key: leaderKv.key };
    else report.problems.push(`${leaderKv.key}: ${parsed.problem}`);
  }
  const pools = new Map<string, PoolReport>();
  const poolReport = (pool: string) => {
    let entry = pools.get(pool);
    if (entry === undefined) pools.set(pool, (entry = { pool, instances: [], pendingActions: [] }));
    return entry;
  };
  for (const kv of all ?? []) readKey(kv, report, poolReport);
  report.pools = [...pools.values()].sort((a, b) => (a.pool < b.pool ? -1 : 1));
  return report;
}

function readKey(kv: KeyValue, report: AutoscaleReport, poolReport: (pool: string) => PoolReport): void {
  if (kv.key === GLOBAL_FREEZE_KEY) {
    report.globalFreeze = parseFreezeValue(kv.value);
    return;
  }
  const frozen = /^\/concord\/autoscale\/freeze\/(.+)$/.exec(kv.key);
  if (frozen !== null) {
    poolReport(frozen[1]!).freeze = parseFreezeValue(kv.value);
    return;
  }
  const match = /^\/concord\/autoscale\/pools\/([^/]+)\/(status|instances\/.+|actions\/.+|memory)$/.exec(kv.key);
  if (match === null) return;
  const entry = poolReport(match[1]!);
  const what = match[2]!;
  const parsed = what === 'status' ? parsePoolStatus(kv.value, kv.key) : what.startsWith('instances/') ? parseInstanceState(kv.value, kv.key) : what.startsWith('actions/') ? parseActionRecord(kv.value, kv.key) : undefined;
  if (parsed === undefined) return;
  if (!parsed.ok) {
    report.problems.push(parsed.problem);
    return;
  }
  if (what === 'status') entry.status = parsed.value as PoolStatus;
  else if (what.startsWith('instances/')) entry.instances.push(parsed.value as InstanceState);
  else entry.pendingActions.push(parsed.value as ActionRecord);
}
