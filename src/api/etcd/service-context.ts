// Everything an etcd API service implementation may use from the member it runs on. Services get
// this one object, so adding a service never changes the server's assembly beyond one line in
// services.ts.

import type { ApplyResult, KvStateMachine } from '../../kv/state-machine.ts';
import type { ServerConfig } from '../../server/server-config.ts';
import type { ServerMetrics } from '../../observe/server-metrics.ts';
import type { ClusterAdmin } from '../../server/cluster-admin.ts';
import type { KvBackend } from './kv-backend.ts';
import type { HeaderSource } from './wire.ts';
import type { LeaseServiceOptions } from './lease-service.ts';
import type { WatchServiceOptions } from './watch-service.ts';
import type { TokenTableLimits } from './auth-tokens.ts';

/** The Raft side of the member, read-only. */
export interface MemberView {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  isLeader(): boolean;
  /** 0n when no leader is known. */
  leaderId(): bigint;
  term(): number;
  appliedIndex(): number;
  committedIndex(): number;
  /** Voter and learner IDs of the current membership. */
  membership(): { voters: bigint[]; learners: bigint[] };
  /** Set when the disk refused a write: why writes are disabled. */
  writesDisabledReason(): string | undefined;
}

export interface StateMachineEvents {
  /** Called after every applied command, in log order (for watch fan-out, lease tracking, metrics). */
  onApplied(listener: (result: ApplyResult) => void): () => void;
  /** Called after the state machine was replaced by a snapshot from the leader. */
  onRestored(listener: (machine: KvStateMachine) => void): () => void;
  /** Called when this member gains or loses leadership (leader 0n: none known). */
  onLeaderChange(listener: (leader: bigint, term: number) => void): () => void;
}

/** Timers and the wall clock, injectable for tests. */
export interface ServiceClock {
  nowMs(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface EtcdServiceContext {
  backend: KvBackend;
  headers: HeaderSource;
  /** The live state machine (it is replaced when a snapshot is installed: do not keep it). */
  stateMachine(): KvStateMachine;
  member: MemberView;
  events: StateMachineEvents;
  config: ServerConfig;
  /** Overrides of services' intervals and limits (tests shorten them); absent: etcd's defaults. */
  serviceOptions?: { watch?: WatchServiceOptions; lease?: LeaseServiceOptions; authTokens?: Partial<TokenTableLimits> };
  metrics: ServerMetrics;
  clock: ServiceClock;
  /** Membership administration, and calls forwarded to the leader (lease keep-alives, ...). */
  cluster: ClusterAdmin;
  /** Stops background work (timers, streams) the services started, on shutdown. */
  onStop(cleanup: () => void | Promise<void>): void;
}
