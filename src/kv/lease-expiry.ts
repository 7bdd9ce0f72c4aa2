// Lease deadlines, tracked by the leader only (etcd's "primary lessor"). Deadlines are local and
// never replicated: a new leader does not know how long its predecessor had left, so on promotion
// it gives every lease its full TTL plus an extension (etcd extends by the election timeout), and
// a lease can only outlive its TTL, never expire early. Time is passed in as milliseconds.

import { KvError } from './errors.ts';

/** etcd's defaultExpiredleaseRetryInterval: re-propose a revoke that has not applied after this long. */
export const DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS = 3000;
/** etcd's leaseRevokeRate: expired leases handed out per second; the caller bounds each batch with it. */
export const DEFAULT_MAX_REVOKES_PER_BATCH = 1000;

interface Deadline {
  ttlSeconds: number;
  deadlineMs: number;
  /** Set once the lease was handed out for revoking: when to hand it out again. */
  retryAtMs?: number;
}

export interface LeaseExpiryTrackerOptions {
  expiredLeaseRetryIntervalMs?: number;
}

export class LeaseExpiryTracker {
  private readonly deadlines = new Map<bigint, Deadline>();
  private primary = false;
  readonly expiredLeaseRetryIntervalMs: number;

  constructor(options: LeaseExpiryTrackerOptions = {}) {
    this.expiredLeaseRetryIntervalMs = options.expiredLeaseRetryIntervalMs ?? DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get trackedCount(): number {
    return this.deadlines.size;
  }

  /**
   * On becoming leader: every lease gets deadline = now + its TTL + extendMs (etcd's Promote with
   * the election timeout as the extension).
   */
  promote(leases: Iterable<{ id: bigint; ttlSeconds: number }>, nowMs: number, extendMs: number): void {
    this.primary = true;
    this.deadlines.clear();
    for (const { id, ttlSeconds } of leases) {
      this.deadlines.set(id, { ttlSeconds, deadlineMs: nowMs + extendMs + ttlSeconds * 1000 });
    }
  }

  /** On losing leadership: followers track nothing (etcd sets every expiry to "forever"). */
  demote(): void {
    this.primary = false;
    this.deadlines.clear();
  }

  /** A grant applied on the leader starts the lease's clock. Ignored on followers. */
  granted(id: bigint, ttlSeconds: number, nowMs: number): void {
    if (!this.primary) return;
    this.deadlines.set(id, { ttlSeconds, deadlineMs: nowMs + ttlSeconds * 1000 });
  }

  /** A revoke applied (or the lease found gone): stop tracking it. */
  revoked(id: bigint): void {
    this.deadlines.delete(id);
  }

  /**
   * A keep-alive: deadline = now + TTL; returns the TTL. A lease past its deadline is as good as
   * revoked (etcd answers "not found" once the revoke applies), and only the leader renews.
   */
  renew(id: bigint, nowMs: number): number {
    if (!this.primary) throw new KvError('CONCORD_E_LEASE_NOT_PRIMARY');
    const deadline = this.deadlines.get(id);
    if (deadline === undefined || nowMs >= deadline.deadlineMs) throw new KvError('CONCORD_E_LEASE_NOT_FOUND', `lease ${id}`);
    this.deadlines.set(id, { ttlSeconds: deadline.ttlSeconds, deadlineMs: nowMs + deadline.ttlSeconds * 1000 });
    return deadline.ttlSeconds;
  }

  /**
   * Leases past their deadline, earliest first, at most maxCount of them (a bounded batch of
   * revokes to propose). A lease handed out is handed out again only after the retry interval, in
   * case its revoke was lost (e.g. the proposal was dropped in a leader change).
   */
  expired(nowMs: number, maxCount = DEFAULT_MAX_REVOKES_PER_BATCH): bigint[] {
    if (!this.primary) return [];
    const due: [bigint, Deadline][] = [];
    for (const entry of this.deadlines) {
      const deadline = entry[1];
      if (nowMs >= deadline.deadlineMs && (deadline.retryAtMs === undefined || nowMs >= deadline.retryAtMs)) due.push(entry);
    }
    due.sort(([idA, a], [idB, b]) => a.deadlineMs - b.deadlineMs || (idA < idB ? -1 : idA > idB ? 1 : 0));
    const batch = due.slice(0, Math.max(0, maxCount));
    for (const [, deadline] of batch) deadline.retryAtMs = nowMs + this.expiredLeaseRetryIntervalMs;
    return batch.map(([id]) => id);
  }

  /**
   * Whole seconds left, truncated as etcd's TimeToLive reports them (never negative); undefined
   * when this member does not track the lease (not the leader, or no such lease).
   */
  remainingTtlSeconds(id: bigint, nowMs: number): number | undefined {
    const deadline = this.deadlines.get(id);
    if (!this.primary || deadline === undefined) return undefined;
    return Math.max(0, Math.floor((deadline.deadlineMs - nowMs) / 1000));
  }
}
