// The JSON records the autoscaler keeps in the store (layout in keys.ts), and their parsers. The
// store is outside input (anyone with etcdctl can write these keys), so every record read back is
// checked field by field; a record that does not parse is reported with the problem, never trusted.

import type { FreezeRecord, PolicyMemory } from '../policy/types.ts';

/** What the store remembers about one instance beyond what the provider lists. */
export interface InstanceState {
  id: string;
  /** host:port the instance serves on. */
  address: string;
  launchVersion: string;
  launchedAtMs: number;
  /** The launch request that created it; absent for an instance adopted from the provider's list. */
  launchRequestId?: string;
  /** When it first passed its health checks. */
  readyAtMs?: number;
  /** The health checker's last verdict (false until one arrives). */
  healthy: boolean;
  /** Start of the current run of failed checks, once it had been ready. */
  failingSinceMs?: number;
  /** Set by a drain: the proxies send it no new requests. */
  drainingSinceMs?: number;
  /** Draining, and the proxies report nothing in flight. */
  drained?: boolean;
}

/** A launch or terminate recorded before the provider is asked, removed once the outcome is recorded. */
export interface ActionRecord {
  kind: 'launch' | 'terminate';
  requestId: string;
  instanceId?: string;
  /** Decimal: bigints do not survive JSON. */
  fencingToken: string;
  leader: string;
  startedAtMs: number;
}

/** The value of a leader's election key: who leads. */
export interface LeaderRecord {
  name: string;
  host?: string;
  pid?: number;
  sinceMs: number;
}

/** The leader's last decision for a pool, summarized for `concord autoscale status`. */
export interface PoolStatus {
  pool: string;
  leader: string;
  fencingToken: string;
  atMs: number;
  sequence: number;
  /** Capacity the pool should have after the decision's actions. */
  desired: number;
  /** Capacity counted by the policy (not draining). */
  current: number;
  /** Every instance the provider has, draining ones included. */
  actual: number;
  launchVersion: string;
  dryRun: boolean;
  frozen?: { scope: string; by: string; reason: string };
  /** The decision's reasons, one line per stage that changed the count. */
  reasons: string[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

type Shape = Record<string, 'string' | 'number' | 'boolean' | 'string?' | 'number?' | 'boolean?'>;

function parseObject(text: string, what: string, shape: Shape): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: `${what} is not JSON` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: `${what} is not a JSON object` };
  const record = value as Record<string, unknown>;
  for (const [field, type] of Object.entries(shape)) {
    const optional = type.endsWith('?');
    const expected = optional ? type.slice(0, -1) : type;
    const present = record[field];
    if (present === undefined || present === null) {
      if (!optional) return { ok: false, problem: `${what}: ${field} is missing` };
      continue;
    }
    if (typeof present !== expected || (expected === 'number' && !Number.isFinite(present))) {
      return { ok: false, problem: `${what}: ${field} must be a ${expected}` };
    }
  }
  return { ok: true, value: record };
}

const INSTANCE_SHAPE: Shape = {
  id: 'string',
  address: 'string',
  launchVersion: 'string',
  launchedAtMs: 'number',
  launchRequestId: 'string?',
  readyAtMs: 'number?',
  healthy: 'boolean',
  failingSinceMs: 'number?',
  drainingSinceMs: 'number?',
  drained: 'boolean?',
};

export function parseInstanceState(text: string, key: string): Parsed<InstanceState> {
  const parsed = parseObject(text, `instance record ${key}`, INSTANCE_SHAPE);
  if (!parsed.ok) return parsed;
  return { ok: true, value: pick(parsed.value, INSTANCE_SHAPE) as unknown as InstanceState };
}

const ACTION_SHAPE: Shape = { kind: 'string', requestId: 'string', instanceId: 'string?', fencingToken: 'string', leader: 'string', startedAtMs: 'number' };

export function parseActionRecord(text: string, key: string): Parsed<ActionRecord> {
  const parsed = parseObject(text, `action record ${key}`, ACTION_SHAPE);
  if (!parsed.ok) return parsed;
  if (parsed.value.kind !== 'launch' && parsed.value.kind !== 'terminate') return { ok: false, problem: `action record ${key}: kind must be launch or terminate` };
  return { ok: true, value: pick(parsed.value, ACTION_SHAPE) as unknown as ActionRecord };
}

const LEADER_SHAPE: Shape = { name: 'string', host: 'string?', pid: 'number?', sinceMs: 'number' };

export function parseLeaderRecord(text: string): Parsed<LeaderRecord> {
  const parsed = parseObject(text, 'leader record', LEADER_SHAPE);
  if (!parsed.ok) return parsed;
  return { ok: true, value: pick(parsed.value, LEADER_SHAPE) as unknown as LeaderRecord };
}

const STATUS_SHAPE: Shape = {
  pool: 'string',
  leader: 'string',
  fencingToken: 'string',
  atMs: 'number',
  sequence: 'number',
  desired: 'number',
  current: 'number',
  actual: 'number',
  launchVersion: 'string',
  dryRun: 'boolean',
};

export function parsePoolStatus(text: string, key: string): Parsed<PoolStatus> {
  const parsed = parseObject(text, `status ${key}`, STATUS_SHAPE);
  if (!parsed.ok) return parsed;
  const value = parsed.value as unknown as PoolStatus;
  return { ok: true, value: { ...value, reasons: Array.isArray(value.reasons) ? value.reasons.filter((line) => typeof line === 'string') : [] } };
}

/**
 * A kill-switch key's value. `concord autoscale freeze` writes `{"by", "reason", "atMs"}`; an
 * operator with etcdctl may write any text, which is then the reason (by "unknown", at 0: the time
 * is not known). An empty value freezes too: the key's existence is the switch.
 */
export function parseFreezeValue(text: string): FreezeRecord {
  const parsed = parseObject(text, 'freeze', { by: 'string', reason: 'string?', atMs: 'number?' });
  if (parsed.ok) {
    const record = parsed.value as { by: string; reason?: string; atMs?: number };
    return { by: record.by, reason: record.reason ?? '(no reason given)', atMs: record.atMs ?? 0 };
  }
  const reason = text.trim();
  return { by: 'unknown', reason: reason === '' ? '(no reason given)' : reason, atMs: 0 };
}

function pick(record: Record<string, unknown>, shape: Shape): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const field of Object.keys(shape)) if (record[field] !== undefined && record[field] !== null) result[field] = record[field];
  return result;
}

/**
 * The policy's memory as stored. It is the policy's own plain JSON; the check here is structural
 * (the fields the policy reads have the right types), enough to refuse a value someone typed by
 * hand. A memory that fails it is replaced by a fresh one, which only makes the policy cautious
 * (no scale-in for a whole stabilization window).
 */
export function parsePolicyMemory(text: string, key: string): Parsed<PolicyMemory> {
  const parsed = parseObject(text, `policy memory ${key}`, {
    sequence: 'number',
    unexplainedGrowthPeriods: 'number',
    replacementHeld: 'boolean',
    owedLaunches: 'number',
    metricsOutageSinceMs: 'number?',
    frozenBy: 'string?',
  });
  if (!parsed.ok) return parsed;
  for (const field of ['recommendations', 'scalings', 'runawaySamples', 'dependencyDegraded']) {
    if (!Array.isArray(parsed.value[field])) return { ok: false, problem: `policy memory ${key}: ${field} must be an array` };
  }
  return { ok: true, value: parsed.value as unknown as PolicyMemory };
}
