// etcd's Election service (v3electionpb) over a Concord member, built as etcd's server builds it: on
// the key-value store and leases, with the recipe of clientv3's concurrency.Election.
//
// A candidate's key is `name/<lease in hex>`, created with its lease and its proposed value; the
// leader is the candidate whose key has the lowest create revision. Campaign waits until every
// older candidate's key is gone (PredecessorWaits, shared with the Lock service); Proclaim changes
// the leader's value and Resign deletes its key, both only while the key is still the one created
// at the LeaderKey's revision; Leader reads the current leader; Observe streams the leader's key
// every time it changes (a new leader, or a new value), as etcd's Observe does.
//
// Every write runs as the calling user, as etcd's election server does; Leader and Observe, which
// only read, need read permission on the election's prefix.
//
// One difference from etcd, for safety: a Campaign whose own key disappears while it waits (its
// lease expired or was revoked) fails, where etcd would answer as if it had been elected.

import { status } from '@grpc/grpc-js';
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { bytesEqual, prefixRangeEnd } from '../../kv/key-range.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';
import type { AuthGate } from './auth-gate.ts';
import type { ApplyResult } from '../../kv/state-machine.ts';
import type { KeyValue } from '../../kv/types.ts';
import { grpcError, toServiceError } from './grpc-errors.ts';
import {
  PredecessorWaits,
  concat,
  firstCreatedRequest,
  onlyKv,
  sessionLeasesOf,
  txn,
} from './lock-service.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { bigintFromWire, header, keyValueToWire, numberFromWire } from './wire.ts';
import type { WireInt64 } from './wire.ts';

/** Observe streams at once per member; more are refused with "too many requests". */
export const MAX_OBSERVE_STREAMS = 10_000;
/** Leader changes queued for an observer that does not read them; past this the stream ends. */
export const MAX_OBSERVE_QUEUED_MESSAGES = 1_000;

const SLASH = new Uint8Array([0x2f]);
const EMPTY = new Uint8Array(0);

// etcd's texts (concurrency.ErrElectionNoLeader, ErrElectionNotLeader, v3election.ErrMissingLeaderKey).
// etcd returns them as plain errors, which gRPC sends with the status UNKNOWN; so does Concord.
const NO_LEADER = 'election: no leader';
const NOT_LEADER = 'election: not leader';
const MISSING_LEADER_KEY = '"leader" field must be provided';

interface WireLeaderKey {
  name?: Uint8Array;
  key?: Uint8Array;
  rev?: WireInt64;
  lease?: WireInt64;
}

/** A candidate's key as the caller holds it: the key and the revision that created it. */
interface LeaderKey {
  key: Uint8Array;
  revision: number;
  lease: bigint;
}

export function electionService(context: EtcdServiceContext, auth: AuthGate): UntypedServiceImplementation {
  const waits = new PredecessorWaits(context);
  const sessions = sessionLeasesOf(context);
  const observers = new Set<LeaderObserver>();
  context.onStop(() => {
    for (const observer of observers) observer.fail(grpcError(status.UNAVAILABLE, 'etcdserver: server stopped'));
  });
  return {
    Campaign: waits.unary(async (wire: { name?: Uint8Array; lease?: WireInt64; value?: Uint8Array }, signal, caller) => {
      const requester = auth.requester(caller);
      const name = wire.name ?? EMPTY;
      const value = wire.value ?? EMPTY;
      const prefix = concat(name, SLASH);
      const lease = await sessions.leaseFor(bigintFromWire(wire.lease, 'lease'), requester);
      const key = concat(prefix, new TextEncoder().encode(lease.toString(16)));
      const entered = await txn(context, {
        compare: [{ target: 'create', key, result: 'equal', createRevision: 0 }],
        success: [{ type: 'put', request: { key, value, lease } }],
        failure: [{ type: 'range', request: { key } }],
      }, requester);
      const candidate: LeaderKey = { key, revision: entered.header.revision, lease };
      if (!entered.succeeded) {
        // This lease campaigned before: keep its place, and propose the new value.
        const existing = onlyKv(entered.responses[0]);
        candidate.revision = existing.createRevision;
        if (!bytesEqual(existing.value, value)) {
          try {
            await proclaim(context, candidate, value, requester);
          } catch (error) {
            await resignQuietly(context, candidate, requester);
            throw error;
          }
        }
      }
      try {
        await waits.waitDeletes(prefix, candidate.revision - 1, signal);
      } catch (error) {
        if (signal.aborted) await resignQuietly(context, candidate, requester);
        throw error;
      }
      if (context.stateMachine().range({ key }).kvs[0]?.createRevision !== candidate.revision) {
        throw grpcError(status.UNKNOWN, 'concord: the campaign key was deleted while waiting (its lease expired or was revoked); campaign again with a live lease');
      }
      return {
        header: header(context.headers, entered.header.revision),
        leader: { name, key, rev: String(candidate.revision), lease: lease.toString() },
      };
    }),
    Proclaim: waits.unary(async (wire: { leader?: WireLeaderKey | null; value?: Uint8Array }, _signal, caller) => {
      const revision = await proclaim(context, leaderKeyFromWire(wire.leader), wire.value ?? EMPTY, auth.requester(caller));
      return { header: header(context.headers, revision) };
    }),
    Resign: waits.unary(async (wire: { leader?: WireLeaderKey | null }, _signal, caller) => {
      const leader = leaderKeyFromWire(wire.leader);
      // Deletes the key only if it is still the one the campaign created; either way etcd succeeds.
      const resigned = await txn(context, {
        compare: [{ target: 'create', key: leader.key, result: 'equal', createRevision: leader.revision }],
        success: [{ type: 'deleteRange', request: { key: leader.key } }],
      }, auth.requester(caller));
      return { header: header(context.headers, resigned.header.revision) };
    }),
    Leader: waits.unary(async (wire: { name?: Uint8Array }, _signal, caller) => {
      const prefix = concat(wire.name ?? EMPTY, SLASH);
      await context.backend.readBarrier();
      auth.checkRead(caller, prefix, prefixRangeEnd(prefix));
      const leader = context.stateMachine().range(firstCreatedRequest(prefix));
      const kv = leader.kvs[0];
      if (kv === undefined) throw grpcError(status.UNKNOWN, NO_LEADER);
      return { header: header(context.headers, leader.header.revision), kv: keyValueToWire(kv) };
    }),
    Observe: (stream: ServerWritableStream<{ name?: Uint8Array }, unknown>) => {
      if (observers.size >= MAX_OBSERVE_STREAMS) {
        stream.emit('error', grpcError(status.RESOURCE_EXHAUSTED, `etcdserver: too many requests (more than ${MAX_OBSERVE_STREAMS} observers)`));
        return;
      }
      const prefix = concat(stream.request.name ?? EMPTY, SLASH);
      const authorize = () => auth.checkRead(stream, prefix, prefixRangeEnd(prefix));
      const observer = new LeaderObserver(context, stream, prefix, authorize, () => observers.delete(observer));
      observers.add(observer);
      observer.start();
    },
  };
}

function leaderKeyFromWire(wire: WireLeaderKey | null | undefined): LeaderKey {
  if (wire === null || wire === undefined) throw grpcError(status.UNKNOWN, MISSING_LEADER_KEY);
  return { key: wire.key ?? EMPTY, revision: numberFromWire(wire.rev, 'leader.rev'), lease: bigintFromWire(wire.lease, 'leader.lease') };
}

/** Puts a new value on the leader's key if it is still the one its campaign created; returns the revision. */
async function proclaim(context: EtcdServiceContext, leader: LeaderKey, value: Uint8Array, requester: Requester): Promise<number> {
  const proclaimed = await txn(context, {
    compare: [{ target: 'create', key: leader.key, result: 'equal', createRevision: leader.revision }],
    success: [{ type: 'put', request: { key: leader.key, value, lease: leader.lease } }],
  }, requester);
  if (!proclaimed.succeeded) throw grpcError(status.UNKNOWN, NOT_LEADER);
  return proclaimed.header.revision;
}

async function resignQuietly(context: EtcdServiceContext, leader: LeaderKey, requester: Requester): Promise<void> {
  try {
    await txn(context, {
      compare: [{ target: 'create', key: leader.key, result: 'equal', createRevision: leader.revision }],
      success: [{ type: 'deleteRange', request: { key: leader.key } }],
    }, requester);
  } catch {
    // The key stays until its lease ends; the caller's error is reported instead.
  }
}

// ---- Observe ----

type ObserverState =
  /** Waiting for the first read: changes applied meanwhile are in that read. */
  | { kind: 'starting' }
  /** No candidate: the next key put under the prefix leads. */
  | { kind: 'awaitingLeader' }
  /** Following the leader's key until it is deleted. */
  | { kind: 'following'; key: Uint8Array }
  | { kind: 'closed' };

/**
 * One Observe stream, as etcd's Election.observe: send the leader's key, then every put to it;
 * when it is deleted, find the next leader (or wait for the first key put under the prefix). It is
 * driven by the applied commands, synchronously: a local read inside the listener sees exactly the
 * state after the command, so no change slips between a read and the next event.
 */
class LeaderObserver {
  private readonly context: EtcdServiceContext;
  private readonly stream: ServerWritableStream<unknown, unknown>;
  private readonly prefix: Uint8Array;
  /** Throws when the caller may not read the election (checked once the first read is linearizable). */
  private readonly authorize: () => void;
  private readonly onClosed: () => void;
  private state: ObserverState = { kind: 'starting' };
  /** The last key sent, to tell a real change from the same leader seen again after a restore. */
  private lastSent: KeyValue | undefined;
  private readonly unsubscribes: (() => void)[] = [];

  constructor(context: EtcdServiceContext, stream: ServerWritableStream<unknown, unknown>, prefix: Uint8Array, authorize: () => void, onClosed: () => void) {
    this.context = context;
    this.stream = stream;
    this.prefix = prefix;
    this.authorize = authorize;
    this.onClosed = onClosed;
  }

  start(): void {
    this.unsubscribes.push(
      this.context.events.onApplied((result) => this.applied(result)),
      this.context.events.onRestored(() => this.restored()),
    );
    this.stream.once('cancelled', () => this.close());
    this.stream.once('error', () => this.close());
    if (this.stream.cancelled) {
      this.close();
      return;
    }
    // etcd's observer starts with a linearizable read.
    this.context.backend.readBarrier().then(
      () => this.guard(() => {
        this.authorize();
        this.seek();
      }),
      (error: unknown) => this.fail(toServiceError(error)),
    );
  }

  /** Ends the stream with an error status (the server stops, or the observer fell behind). */
  fail(error: Error): void {
    if (this.state.kind === 'closed') return;
    this.close();
    this.stream.emit('error', error);
  }

  private close(): void {
    if (this.state.kind === 'closed') return;
    this.state = { kind: 'closed' };
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    this.onClosed();
  }

  /** Reads the current leader: sends it and follows it, or waits for one. */
  private seek(): void {
    const leader = this.context.stateMachine().range(firstCreatedRequest(this.prefix));
    const kv = leader.kvs[0];
    if (kv === undefined) {
      this.state = { kind: 'awaitingLeader' };
      return;
    }
    this.state = { kind: 'following', key: kv.key };
    if (this.lastSent === undefined || !bytesEqual(this.lastSent.key, kv.key) || this.lastSent.modRevision !== kv.modRevision) {
      this.send(leader.header.revision, kv);
    }
  }

  private applied(result: ApplyResult): void {
    if (result.status !== 'applied' || result.events.length === 0) return;
    this.guard(() => {
      for (const event of result.events) {
        const state = this.state;
        if (state.kind === 'awaitingLeader' && event.type === 'put' && hasPrefix(event.kv.key, this.prefix)) {
          this.state = { kind: 'following', key: event.kv.key };
          this.send(event.kv.modRevision, event.kv);
        } else if (state.kind === 'following' && bytesEqual(event.kv.key, state.key)) {
          if (event.type === 'put') {
            this.send(result.revision, event.kv);
          } else {
            // The state is already past this command: the read sees the rest of its changes.
            this.seek();
            return;
          }
        }
      }
    });
  }

  /** A snapshot replaced the state: the leader may have changed without events. */
  private restored(): void {
    if (this.state.kind === 'awaitingLeader' || this.state.kind === 'following') this.guard(() => this.seek());
  }

  private send(revision: number, kv: KeyValue): void {
    if (this.stream.writableLength >= MAX_OBSERVE_QUEUED_MESSAGES) {
      this.fail(grpcError(status.RESOURCE_EXHAUSTED,
        `concord: the observer has not read ${MAX_OBSERVE_QUEUED_MESSAGES} leader changes; observe again and keep reading`));
      return;
    }
    this.lastSent = kv;
    this.stream.write({ header: header(this.context.headers, revision), kv: keyValueToWire(kv) });
  }

  /** Runs a step unless the stream is closed; a failing read (e.g. the CORRUPT alarm) ends the stream. */
  private guard(step: () => void): void {
    if (this.state.kind === 'closed') return;
    try {
      step();
    } catch (error) {
      this.fail(toServiceError(error));
    }
  }
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.byteLength >= prefix.byteLength && bytesEqual(key.subarray(0, prefix.byteLength), prefix);
}
