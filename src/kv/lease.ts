// Leases in the replicated state (etcd's lessor, server/lease/lessor.go): each lease has an ID, the
// TTL it was granted and the keys attached to it. Every member holds the same leases; only the
// leader tracks deadlines (lease-expiry.ts) and proposes revokes when they pass. Revoking a lease
// deletes its keys in one revision (the state machine does that with MvccStore.deleteKeys).

import type { LeaseTimeToLiveRequest, LeaseTimeToLiveResponse } from './types.ts';
import { KvError } from './errors.ts';
import { fromByteString, toByteString } from './key-range.ts';

/** etcd's MaxLeaseTTL, in seconds: a longer TTL fails with LEASE_TTL_TOO_LARGE. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

/**
 * The minimum TTL with etcd's default timing (100 ms heartbeat, 1000 ms election timeout):
 * see minLeaseTtlSeconds.
 */
export const DEFAULT_MIN_LEASE_TTL_SECONDS = 2;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * etcd grants no lease shorter than 1.5 election timeouts, rounded up to whole seconds
 * (etcdserver: minTTL = (3 * electionTicks / 2) * heartbeat), so a lease cannot expire during a
 * leader election. Integer division of the ticks, as in etcd.
 */
export function minLeaseTtlSeconds(electionTicks: number, heartbeatMs: number): number {
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatMs) / 1000);
}

export interface LeaseInfo {
  id: bigint;
  /** The TTL the lease was granted, in seconds (after raising it to the minimum). */
  ttlSeconds: number;
  /** Attached keys, ascending. */
  keys: Uint8Array[];
}

interface Lease {
  id: bigint;
  ttlSeconds: number;
  /** Attached keys as byte strings. */
  keys: Set<string>;
}

export interface LeaseStoreOptions {
  /** Requests for shorter TTLs are granted this one. Default 2 (etcd's default timing). */
  minTtlSeconds?: number;
}

export class LeaseStore {
  private readonly leases = new Map<bigint, Lease>();
  readonly minTtlSeconds: number;

  constructor(options: LeaseStoreOptions = {}) {
    this.minTtlSeconds = options.minTtlSeconds ?? DEFAULT_MIN_LEASE_TTL_SECONDS;
    if (!Number.isSafeInteger(this.minTtlSeconds) || this.minTtlSeconds < 1) {
      throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `minTtlSeconds must be a positive integer, got ${this.minTtlSeconds}`);
    }
  }

  get count(): number {
    return this.leases.size;
  }

  has(id: bigint): boolean {
    return this.leases.has(id);
  }

  /**
   * Grants lease `id`. As etcd's lessor: ID 0 is "no lease" and cannot be granted (the proposer
   * picks an ID when the client sends 0); a TTL above 9e9 s is refused; a short TTL is raised.
   */
  grant(id: bigint, ttlSeconds: number): { id: bigint; ttlSeconds: number } {
    checkLeaseId(id);
    if (id === 0n) throw new KvError('CONCORD_E_LEASE_NOT_FOUND', 'lease ID 0 means "no lease"');
    if (!Number.isSafeInteger(ttlSeconds)) {
      throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `lease TTL must be an integer, got ${ttlSeconds}`);
    }
    if (ttlSeconds > MAX_LEASE_TTL_SECONDS) throw new KvError('CONCORD_E_LEASE_TTL_TOO_LARGE', `${ttlSeconds} s`);
    if (this.leases.has(id)) throw new KvError('CONCORD_E_LEASE_EXISTS', `lease ${id}`);
    const granted = Math.max(ttlSeconds, this.minTtlSeconds);
    this.leases.set(id, { id, ttlSeconds: granted, keys: new Set() });
    return { id, ttlSeconds: granted };
  }

  /** The lease's keys, ascending, for the revoke that deletes them; LEASE_NOT_FOUND if absent. */
  keysOf(id: bigint): Uint8Array[] {
    return [...this.mustGet(id).keys].sort().map(fromByteString);
  }

  /** Forgets the lease; its keys must already be deleted (they detach themselves). */
  remove(id: bigint): void {
    this.mustGet(id);
    this.leases.delete(id);
  }

  get(id: bigint): LeaseInfo | undefined {
    const lease = this.leases.get(id);
    if (lease === undefined) return undefined;
    return { id, ttlSeconds: lease.ttlSeconds, keys: [...lease.keys].sort().map(fromByteString) };
  }

  /** Every lease ID, ascending (the order is ours; etcd's LeaseLeases promises none). */
  list(): bigint[] {
    return [...this.leases.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  attach(id: bigint, key: Uint8Array): void {
    this.mustGet(id).keys.add(toByteString(key));
  }

  /** Detaching from a lease that is gone is a no-op, as etcd logs and carries on. */
  detach(id: bigint, key: Uint8Array): void {
    this.leases.get(id)?.keys.delete(toByteString(key));
  }

  /** ID and TTL of every lease; attachments are rebuilt from the keys' lease fields on restore. */
  exportState(): { id: bigint; ttlSeconds: number }[] {
    return this.list().map((id) => ({ id, ttlSeconds: this.leases.get(id)!.ttlSeconds }));
  }

  static fromState(state: readonly { id: bigint; ttlSeconds: number }[], options: LeaseStoreOptions = {}): LeaseStore {
    const store = new LeaseStore(options);
    for (const { id, ttlSeconds } of state) {
      if (id === 0n || store.leases.has(id) || !Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
        throw new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', `lease ${id} with TTL ${ttlSeconds}`);
      }
      store.leases.set(id, { id, ttlSeconds, keys: new Set() });
    }
    return store;
  }

  private mustGet(id: bigint): Lease {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new KvError('CONCORD_E_LEASE_NOT_FOUND', `lease ${id}`);
    return lease;
  }
}

/**
 * etcd's LeaseTimeToLive answer, from the replicated lease (granted TTL, keys) and the leader's
 * remaining TTL. A lease that does not exist is not an error: etcd answers with TTL -1.
 */
export function leaseTimeToLive(
  lease: LeaseInfo | undefined,
  remainingTtlSeconds: number | undefined,
  request: LeaseTimeToLiveRequest,
  revision: number,
): LeaseTimeToLiveResponse {
  const header = { revision };
  if (lease === undefined || remainingTtlSeconds === undefined) return { header, id: request.id, ttl: -1, grantedTtl: 0, keys: [] };
  return {
    header,
    id: lease.id,
    ttl: remainingTtlSeconds,
    grantedTtl: lease.ttlSeconds,
    keys: request.keys === true ? lease.keys : [],
  };
}

export function checkLeaseId(id: bigint): void {
  if (id < INT64_MIN || id > INT64_MAX) {
    throw new KvError('CONCORD_E_KV_INVALID_ARGUMENT', `lease ID must be a 64-bit integer, got ${id}`);
  }
}

const MEMBER_BITS = 16n;
const TIMESTAMP_BITS = 40n;
const COUNTER_BITS = 8n;
const SUFFIX_BITS = TIMESTAMP_BITS + COUNTER_BITS;
const INT63_MASK = (1n << 63n) - 1n;

/**
 * Picks lease IDs for grants that asked for ID 0, as etcd's leader does with its request ID
 * generator (pkg/idutil): 16 bits of member ID, then 40 bits of the start time in milliseconds and
 * 8 bits of counter that together count up; masked to a positive int64 as etcd's LeaseGrant does.
 * Different members and restarts give different IDs without coordination; the ID travels in the
 * replicated command, so every member grants the same one.
 */
export class LeaseIdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & ((1n << MEMBER_BITS) - 1n)) << SUFFIX_BITS;
    const millis = BigInt(Math.max(0, Math.floor(nowMs))) & ((1n << TIMESTAMP_BITS) - 1n);
    this.suffix = millis << COUNTER_BITS;
  }

  next(): bigint {
    for (;;) {
      this.suffix = (this.suffix + 1n) & ((1n << SUFFIX_BITS) - 1n);
      const id = (this.prefix | this.suffix) & INT63_MASK;
      if (id !== 0n) return id;
    }
  }
}
