// The leader's side of leases (etcd's primary lessor and its revokeExpiredLeases loop): it tracks
// every lease's deadline while this member leads, renews leases on keep-alives, and every
// LEASE_EXPIRY_CHECK_INTERVAL_MS proposes a revoke for each lease past its deadline. Expiry is
// decided here but carried out as a replicated leaseRevoke command, so every member deletes the
// same keys at the same revision. Deadlines themselves are never replicated: a new leader gives
// every lease its full TTL again, extended by the election timeout (LeaseExpiryTracker.promote).

import type { EtcdServiceContext } from '../api/etcd/service-context.ts';
import { KvError, isKvError } from '../kv/errors.ts';
import { LeaseExpiryTracker } from '../kv/lease-expiry.ts';
import type { ApplyResult, KvStateMachine } from '../kv/state-machine.ts';
import { MemberError } from './raft-member.ts';
import { MEMBER_REQUESTER } from '../kv/auth/auth-types.ts';

/** How often the leader looks for expired leases (etcd checks every 500 ms too). */
export const LEASE_EXPIRY_CHECK_INTERVAL_MS = 500;
/** etcd revokes at most 1000 leases per second (leaseRevokeRate); two checks a second take half each. */
export const MAX_REVOKES_PER_CHECK = 500;
/** Revoke proposals in flight at once (etcd's maxPendingRevokes). */
export const MAX_REVOKES_IN_FLIGHT = 16;

export interface LeaseKeeperOptions {
  /** Default LEASE_EXPIRY_CHECK_INTERVAL_MS. */
  expiryCheckIntervalMs?: number;
}

/** What the keeper uses of the member: a subset of the services' context. */
export type LeaseKeeperContext = Pick<EtcdServiceContext, 'backend' | 'stateMachine' | 'member' | 'events' | 'config' | 'metrics' | 'clock'>;

export class LeaseKeeper {
  private readonly context: LeaseKeeperContext;
  private readonly tracker = new LeaseExpiryTracker();
  readonly expiryCheckIntervalMs: number;
  private readonly unsubscribes: (() => void)[] = [];
  /** Callers of waitUntilPrimary(), woken by a promotion or by stop(). */
  private readonly primaryWaiters = new Set<(primary: boolean) => void>();
  private timer: unknown;
  /** A batch of revokes is in flight; the next check waits for it rather than piling up proposals. */
  private revoking = false;
  private stopped = false;

  constructor(context: LeaseKeeperContext, options: LeaseKeeperOptions = {}) {
    this.context = context;
    this.expiryCheckIntervalMs = options.expiryCheckIntervalMs ?? LEASE_EXPIRY_CHECK_INTERVAL_MS;
    if (!Number.isSafeInteger(this.expiryCheckIntervalMs) || this.expiryCheckIntervalMs < 1) {
      throw new RangeError(`expiryCheckIntervalMs must be a positive integer of milliseconds, got ${this.expiryCheckIntervalMs}`);
    }
  }

  start(): void {
    const { events, clock } = this.context;
    this.unsubscribes.push(
      events.onLeaderChange((leader) => this.leaderChanged(leader)),
      events.onApplied((result) => this.applied(result)),
      events.onRestored((machine) => this.restored(machine)),
    );
    this.context.metrics.leases.set(this.context.stateMachine().leaseIds().length);
    if (this.context.member.isLeader()) this.promote();
    this.timer = clock.setInterval(() => void this.revokeExpired(), this.expiryCheckIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.context.clock.clearInterval(this.timer);
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    this.tracker.demote();
    for (const wake of [...this.primaryWaiters]) wake(false);
  }

  /** True while this member leads and tracks lease deadlines. */
  get isPrimary(): boolean {
    return this.tracker.isPrimary;
  }

  /**
   * A keep-alive: the lease's full TTL again. Throws LEASE_NOT_FOUND for a lease that is gone or
   * past its deadline, LEASE_NOT_PRIMARY on a member that does not lead.
   */
  renew(id: bigint): number {
    if (!this.tracker.isPrimary) throw new KvError('CONCORD_E_LEASE_NOT_PRIMARY', `member ${this.context.member.memberId.toString(16)} does not lead`);
    // The replicated state is the authority on existence: a revoke applied from another member's
    // proposal does not say which lease it removed, so the tracker may still hold its deadline.
    if (this.context.stateMachine().lease(id) === undefined) {
      this.tracker.revoked(id);
      throw new KvError('CONCORD_E_LEASE_NOT_FOUND', `lease ${id}`);
    }
    return this.tracker.renew(id, this.context.clock.nowMs());
  }

  /** Whole seconds left; undefined if this member does not lead or does not know the lease. */
  remainingTtlSeconds(id: bigint): number | undefined {
    if (this.context.stateMachine().lease(id) === undefined) return undefined;
    return this.tracker.remainingTtlSeconds(id, this.context.clock.nowMs());
  }

  /**
   * The IDs ordered as etcd's LeaseLeases lists them, soonest expiry first (by whole seconds left,
   * then by ID); leases this member does not track (it does not lead) keep ascending ID order last.
   */
  byExpiry(ids: readonly bigint[]): bigint[] {
    const now = this.context.clock.nowMs();
    const remaining = new Map(ids.map((id) => [id, this.tracker.remainingTtlSeconds(id, now) ?? Number.POSITIVE_INFINITY]));
    return [...ids].sort((a, b) => remaining.get(a)! - remaining.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
  }

  /** A revoke of `id` applied (known to the caller, e.g. the LeaseRevoke service): stop tracking it. */
  revoked(id: bigint): void {
    this.tracker.revoked(id);
  }

  /** Resolves true once this member leads (at once if it does), false after timeoutMs or on stop. */
  waitUntilPrimary(timeoutMs: number): Promise<boolean> {
    if (this.tracker.isPrimary) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (primary: boolean) => {
        clearTimeout(timer);
        this.primaryWaiters.delete(wake);
        resolve(primary);
      };
      const timer = setTimeout(() => wake(false), timeoutMs);
      this.primaryWaiters.add(wake);
    });
  }

  /** Why a lease request cannot be served here, in etcd's terms: no leader at all, or another one. */
  notPrimaryError(): Error {
    const leader = this.context.member.leaderId();
    if (this.stopped) return new MemberError('CONCORD_E_STOPPED', 'the member is shutting down');
    if (leader === 0n) return new MemberError('CONCORD_E_NO_LEADER', 'no leader is known; lease requests wait for an election');
    // etcd forwards keep-alives to the leader over the peer transport, which this build has not.
    return new KvError('CONCORD_E_LEASE_NOT_PRIMARY', `member ${leader.toString(16)} leads; send lease requests to it`);
  }

  // --- leadership and applied commands ---------------------------------------------------------

  private leaderChanged(leader: bigint): void {
    if (leader === this.context.member.memberId) this.promote();
    else this.tracker.demote();
  }

  /**
   * Every known lease gets now + TTL + the election timeout, as etcd's Promote. Leases whose grant
   * applies later get now + TTL when it does: either way no lease expires before its client could
   * have kept it alive.
   */
  private promote(): void {
    if (this.stopped) return;
    const now = this.context.clock.nowMs();
    this.tracker.promote(this.context.stateMachine().leaseTtls(), now, this.context.config.electionTimeoutMs);
    for (const wake of [...this.primaryWaiters]) wake(true);
  }

  private applied(result: ApplyResult): void {
    if (result.status !== 'applied') return;
    const { response } = result;
    if (response.type === 'leaseGrant') {
      this.tracker.granted(response.response.id, response.response.ttl, this.context.clock.nowMs());
      this.context.metrics.leases.inc();
    } else if (response.type === 'leaseRevoke') {
      // An applied revoke removed exactly one lease; which one the result does not say (see renew).
      this.context.metrics.leases.dec();
    }
  }

  private restored(machine: KvStateMachine): void {
    this.context.metrics.leases.set(machine.leaseIds().length);
    if (this.tracker.isPrimary) this.promote();
  }

  // --- expiry ----------------------------------------------------------------------------------

  private async revokeExpired(): Promise<void> {
    if (this.revoking || this.stopped || !this.tracker.isPrimary) return;
    const due = this.tracker.expired(this.context.clock.nowMs(), MAX_REVOKES_PER_CHECK);
    if (due.length === 0) return;
    this.revoking = true;
    try {
      const revokeNext = async () => {
        for (let id = due.shift(); id !== undefined && !this.stopped; id = due.shift()) await this.revokeOne(id);
      };
      await Promise.all(Array.from({ length: Math.min(MAX_REVOKES_IN_FLIGHT, due.length) }, revokeNext));
    } finally {
      this.revoking = false;
    }
  }

  private async revokeOne(id: bigint): Promise<void> {
    if (this.context.stateMachine().lease(id) === undefined) {
      this.tracker.revoked(id);
      return;
    }
    try {
      // Expiry is the member's own decision, not a client's: no user's permissions apply (etcd revokes as root).
      await this.context.backend.write({ type: 'leaseRevoke', request: { id } }, MEMBER_REQUESTER);
      this.tracker.revoked(id);
    } catch (error) {
      // Revoked meanwhile by a client: nothing left to do.
      if (isKvError(error, 'CONCORD_E_LEASE_NOT_FOUND')) this.tracker.revoked(id);
      // Anything else (leadership lost, a timeout, shutdown) is retried: the tracker hands the
      // lease out again after its retry interval for as long as this member leads.
    }
  }
}
