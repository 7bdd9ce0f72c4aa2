// The replicated state machine every member runs: committed Raft entries are decoded into
// KvCommands and applied here in log order. It composes the MVCC store, the leases and the alarms,
// and enforces the space quota the way etcd's appliers do:
// * a write whose cost would reach quotaBackendBytes fails with NOSPACE and raises the NOSPACE
//   alarm (here, deterministically on every member, instead of on the member that noticed);
// * while NOSPACE is active, puts, txns containing puts and lease grants fail with NOSPACE
//   (etcd's applierV3Capped); reads, deletes, compactions and lease revokes still work;
// * while CORRUPT is active, everything fails with CORRUPT (etcd's applierV3Corrupt).
// Before any of that, a command is authorized for the client that asked for it against the auth
// state at this log position (auth/command-authorization.ts, etcd's authApplierV3); auth commands
// change that state (auth/auth-store.ts).
// Expected failures are results, not exceptions, and the same on every member.

import type {
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  HashKvResponse,
  KvCommand,
  KvCommandResponse,
  KvEvent,
  LeaseGrantResponse,
  LeaseRevokeResponse,
  RangeRequest,
  RangeResponse,
} from './types.ts';
import { MvccStore } from './mvcc.ts';
import type { ValueOwnership } from './mvcc.ts';
import { decodeCommand } from './command-codec.ts';
import type { LeaseInfo } from './lease.ts';
import { DEFAULT_MIN_LEASE_TTL_SECONDS, LeaseStore } from './lease.ts';
import { AlarmList } from './alarms.ts';
import { KvBugError, KvError } from './errors.ts';
import { DEFAULT_MAX_TXN_OPS } from './request-check.ts';
import { DEFAULT_QUOTA_BACKEND_BYTES, LEASE_OVERHEAD_BYTES, costPut, costTxn, fitsQuota } from './quota.ts';
import { SnapshotEncoder, decodeSnapshot, encodeSnapshot } from './kv-snapshot.ts';
import { crc32cUpdate } from './crc32c.ts';
import type { Crc32cUpdate } from './crc32c.ts';
import { AuthStore } from './auth/auth-store.ts';
import type { AuthCommand, AuthLimits, Requester } from './auth/auth-types.ts';
import { MEMBER_REQUESTER } from './auth/auth-types.ts';
import { authorizeCommand } from './auth/command-authorization.ts';

export interface KvStateMachineOptions {
  /** etcd's --quota-backend-bytes: negative disables the quota, 0 means the default (2 GiB). */
  quotaBackendBytes?: number;
  /** Shorter lease TTLs are raised to this. Must be the same on every member. Default 2 s. */
  minLeaseTtlSeconds?: number;
  /** etcd's --max-txn-ops. Must be the same on every member. Default 128. */
  maxTxnOps?: number;
  /** Bounds on users, roles and permissions. Must be the same on every member. Default DEFAULT_AUTH_LIMITS. */
  authLimits?: Partial<AuthLimits>;
  /** The CRC-32C implementation for snapshots (see Crc32cUpdate). Default: the plain TypeScript one. */
  checksum?: Crc32cUpdate;
}

/**
 * The member ID recorded for alarms the state machine raises itself. The quota check runs on
 * every member with the same result, so the alarm belongs to no single member.
 */
export const STATE_MACHINE_ALARM_MEMBER_ID = 0n;

export type ApplyResult =
  /** `events` are the changes of `revision` if the command created it, else empty. */
  | { status: 'applied'; index: number; response: KvCommandResponse; revision: number; events: readonly KvEvent[] }
  | { status: 'failed'; index: number; error: KvError; revision: number }
  /** The entry was applied before (its index is at or below the applied index): nothing happened. */
  | { status: 'skipped'; index: number };

/** Added to a snapshot's reservation for what the size estimate leaves out (auth state, alarms, the header). */
const SNAPSHOT_RESERVATION_MARGIN_BYTES = 1024 * 1024;
/** A snapshot reserves this fraction more than estimated: address space costs little, a move past the reservation copies everything. */
const SNAPSHOT_RESERVATION_SLACK = 1 / 8;

export class KvStateMachine {
  private store: MvccStore;
  private leases: LeaseStore;
  private alarmList = new AlarmList();
  private authStore: AuthStore;
  /** The keys of a lease, for the checks of puts and revokes (none for a lease that does not exist). */
  private readonly leaseKeys = { keysOf: (id: bigint) => this.leases.get(id)?.keys ?? [] };
  private applied = 0;
  readonly quotaBackendBytes: number;
  readonly minLeaseTtlSeconds: number;
  readonly maxTxnOps: number;
  private readonly checksum: Crc32cUpdate;

  constructor(options: KvStateMachineOptions = {}) {
    this.quotaBackendBytes = options.quotaBackendBytes ?? DEFAULT_QUOTA_BACKEND_BYTES;
    this.minLeaseTtlSeconds = options.minLeaseTtlSeconds ?? DEFAULT_MIN_LEASE_TTL_SECONDS;
    this.maxTxnOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.checksum = options.checksum ?? crc32cUpdate;
    this.leases = new LeaseStore({ minTtlSeconds: this.minLeaseTtlSeconds });
    this.authStore = new AuthStore(options.authLimits);
    this.store = this.newStore();
  }

  /** Users, roles and permissions, for the checks the API layer makes (reads, watches, admin calls). */
  get auth(): AuthStore {
    return this.authStore;
  }

  /** The MVCC store, for reads and as the watch hub's source. Replaced by restore(). */
  get mvcc(): MvccStore {
    return this.store;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get currentRevision(): number {
    return this.store.currentRevision;
  }

  /**
   * Applies the command encoded in a log entry's payload. The store keeps put values as views of
   * `payload` rather than copies (see ValueOwnership), so `payload` must never change afterwards:
   * a log entry's bytes never do.
   */
  applyEncoded(payload: Uint8Array, raftIndex: number): ApplyResult {
    return this.apply(decodeCommand(payload, { shareBytes: true }), raftIndex, 'adopt');
  }

  /** `values` says whether the store may keep the command's put values without copying them. */
  apply(command: KvCommand, raftIndex: number, values: ValueOwnership = 'copy'): ApplyResult {
    if (!Number.isSafeInteger(raftIndex) || raftIndex < 1) throw new KvBugError(`bad raft index ${raftIndex}`);
    if (raftIndex <= this.applied) return { status: 'skipped', index: raftIndex };
    this.applied = raftIndex;
    const before = this.store.currentRevision;
    try {
      authorizeCommand(this.authStore, this.leaseKeys, command, command.requester ?? MEMBER_REQUESTER, this.maxTxnOps);
      const response = this.dispatch(command, values);
      const revision = this.store.currentRevision;
      const events = revision > before ? this.store.eventsAt(revision) : [];
      return { status: 'applied', index: raftIndex, response, revision, events };
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      return { status: 'failed', index: raftIndex, error, revision: this.store.currentRevision };
    }
  }

  /** An entry without a key-value command (an empty entry, a membership change) was applied. */
  markApplied(raftIndex: number): void {
    if (raftIndex > this.applied) this.applied = raftIndex;
  }

  range(request: RangeRequest): RangeResponse {
    this.refuseIfCorrupt();
    return this.store.range(request);
  }

  hashKv(revision = 0): HashKvResponse {
    return this.store.hashKv(revision);
  }

  /** Estimated size for the quota and the db size metric: history plus leases (etcd's cost model). */
  sizeBytes(): number {
    return this.store.sizeBytes() + this.leases.count * LEASE_OVERHEAD_BYTES;
  }

  alarms(): AlarmMember[] {
    return this.alarmList.list();
  }

  lease(id: bigint): LeaseInfo | undefined {
    return this.leases.get(id);
  }

  get leaseCount(): number {
    return this.leases.count;
  }

  leaseIds(): bigint[] {
    return this.leases.list();
  }

  /** ID and granted TTL of every lease, for LeaseExpiryTracker.promote. */
  leaseTtls(): { id: bigint; ttlSeconds: number }[] {
    return this.leases.exportState();
  }

  snapshot(): Uint8Array {
    return encodeSnapshot({
      appliedIndex: this.applied,
      mvcc: this.store.exportState(),
      leases: this.leases.exportState(),
      alarms: this.alarmList.list(),
      auth: this.authStore.exportState(),
    }, this.checksum);
  }

  /**
   * Captures the state now, cheaply, and returns an encoder that writes it out in slices while the
   * state machine goes on applying: after `prefixBytes` bytes left for the caller, the bytes are
   * exactly what snapshot() would have returned now. They are encoded into one buffer that grows in
   * place, reserved from the quota's size estimate, which is larger than the encoding (a change is
   * estimated at 256 bytes plus key and value; it encodes in at most 65 plus key and value).
   */
  captureSnapshot(prefixBytes = 0): SnapshotEncoder {
    const reservedBytes = prefixBytes + this.sizeBytes() + SNAPSHOT_RESERVATION_MARGIN_BYTES;
    return new SnapshotEncoder({
      appliedIndex: this.applied,
      ...this.store.captureState(),
      leases: this.leases.exportState(),
      alarms: this.alarmList.list(),
      auth: this.authStore.exportState(),
    }, { prefixBytes, growInPlaceBytes: Math.floor(reservedBytes * (1 + SNAPSHOT_RESERVATION_SLACK)), checksum: this.checksum });
  }

  /** Rebuilds a state machine from snapshot(); the options must match the cluster's. */
  static restore(bytes: Uint8Array, options: KvStateMachineOptions = {}): KvStateMachine {
    const state = decodeSnapshot(bytes, options.checksum);
    const machine = new KvStateMachine(options);
    machine.leases = LeaseStore.fromState(state.leases, { minTtlSeconds: machine.minLeaseTtlSeconds });
    machine.store = MvccStore.fromState(state.mvcc, { maxTxnOps: machine.maxTxnOps, leaseExists: (id) => machine.leases.has(id) });
    machine.reattachLeases();
    for (const alarm of state.alarms) machine.alarmList.activate(alarm.memberId, alarm.alarm);
    machine.authStore = AuthStore.fromState(state.auth, machine.authStore.limits);
    machine.applied = state.appliedIndex;
    return machine;
  }

  // --- commands -------------------------------------------------------------------------------

  private dispatch(command: KvCommand, values: ValueOwnership): KvCommandResponse {
    switch (command.type) {
      case 'put':
        this.refuseIfFull(costPut(command.request));
        return { type: 'put', response: this.write(() => this.store.put(command.request, values)) };
      case 'deleteRange':
        this.refuseIfCorrupt();
        return { type: 'deleteRange', response: this.write(() => this.store.deleteRange(command.request)) };
      case 'txn':
        this.refuseIfFull(costTxn(command.request));
        return { type: 'txn', response: this.write(() => this.store.txn(command.request, values)) };
      case 'compact':
        this.refuseIfCorrupt();
        return { type: 'compact', response: this.store.compact(command.request.revision) };
      case 'leaseGrant':
        return { type: 'leaseGrant', response: this.grantLease(command.request.id, command.request.ttl) };
      case 'leaseRevoke':
        return { type: 'leaseRevoke', response: this.revokeLease(command.request.id) };
      case 'alarm':
        return { type: 'alarm', response: this.applyAlarm(command.request) };
      default:
        return this.applyAuth(command, command.requester ?? MEMBER_REQUESTER);
    }
  }

  /** Auth commands change no key: the header carries the current revision, as etcd's does. */
  private applyAuth(command: AuthCommand, requester: Requester): KvCommandResponse {
    return this.authStore.apply(command, requester, { revision: this.store.currentRevision });
  }

  /** Runs a key-value write and moves lease attachments to follow the keys it changed. */
  private write<T>(body: () => T): T {
    const before = this.store.currentRevision;
    const result = body();
    if (this.store.currentRevision > before) this.followLeases(this.store.eventsAt(this.store.currentRevision));
    return result;
  }

  private followLeases(events: readonly KvEvent[]): void {
    for (const event of events) {
      const before = event.prevKv?.lease ?? 0n;
      const after = event.type === 'put' ? event.kv.lease : 0n;
      if (before === after) continue;
      if (before !== 0n) this.leases.detach(before, event.kv.key);
      if (after !== 0n) this.leases.attach(after, event.kv.key);
    }
  }

  private grantLease(id: bigint, ttlSeconds: number): LeaseGrantResponse {
    this.refuseIfFull(LEASE_OVERHEAD_BYTES);
    const granted = this.leases.grant(id, ttlSeconds);
    return { header: { revision: this.store.currentRevision }, id: granted.id, ttl: granted.ttlSeconds };
  }

  /** etcd deletes a revoked lease's keys in one transaction: one revision for all of them. */
  private revokeLease(id: bigint): LeaseRevokeResponse {
    this.refuseIfCorrupt();
    const keys = this.leases.keysOf(id);
    this.write(() => this.store.deleteKeys(keys));
    this.leases.remove(id);
    return { header: { revision: this.store.currentRevision } };
  }

  /** etcd's applier: activate and deactivate answer with the alarm concerned, get with the list. */
  private applyAlarm(request: AlarmRequest): AlarmResponse {
    const header = { revision: this.store.currentRevision };
    switch (request.action) {
      case 'get':
        return { header, alarms: this.alarmList.list(request.alarm) };
      case 'activate': {
        const member = this.alarmList.activate(request.memberId, request.alarm);
        return { header, alarms: member === undefined ? [] : [{ ...member }] };
      }
      case 'deactivate': {
        const member = this.alarmList.deactivate(request.memberId, request.alarm);
        return { header, alarms: member === undefined ? [] : [{ ...member }] };
      }
    }
  }

  // --- quota and alarms -----------------------------------------------------------------------

  private refuseIfCorrupt(): void {
    if (this.alarmList.isActive('corrupt')) throw new KvError('CONCORD_E_KV_CORRUPT');
  }

  /** A write costing `costBytes` (0 for one that adds nothing) must fit the quota. */
  private refuseIfFull(costBytes: number): void {
    this.refuseIfCorrupt();
    if (costBytes === 0) return;
    if (this.alarmList.isActive('nospace')) throw new KvError('CONCORD_E_KV_NO_SPACE', 'the NOSPACE alarm is active');
    if (!fitsQuota(this.sizeBytes(), costBytes, this.quotaBackendBytes)) {
      this.alarmList.activate(STATE_MACHINE_ALARM_MEMBER_ID, 'nospace');
      throw new KvError('CONCORD_E_KV_NO_SPACE', `${this.sizeBytes()} bytes used, ${costBytes} more requested, quota ${this.quotaBackendBytes}`);
    }
  }

  private newStore(): MvccStore {
    return new MvccStore({ maxTxnOps: this.maxTxnOps, leaseExists: (id) => this.leases.has(id) });
  }

  /** Lease attachments are not in snapshots; every live key names its lease, as etcd recovers them. */
  private reattachLeases(): void {
    const everything = this.store.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
    for (const kv of everything.kvs) {
      if (kv.lease === 0n) continue;
      if (!this.leases.has(kv.lease)) {
        throw new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', `a key is attached to lease ${kv.lease}, which does not exist`);
      }
      this.leases.attach(kv.lease, kv.key);
    }
  }
}
