// A store member: the Raft run loop (RaftMember) applying etcd commands to the MVCC state machine
// (KvStateMachine), with the WAL and snapshot files underneath. It implements the KvBackend the
// etcd API services use.

import { encodeCommandView } from '../kv/command-codec.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import type { ApplyResult } from '../kv/state-machine.ts';
import type { KvCommand, KvCommandResponse, RangeRequest, RangeResponse } from '../kv/types.ts';
import type { Requester } from '../kv/auth/auth-types.ts';
import type { KvBackend } from '../api/etcd/kv-backend.ts';
import type { ServerMetrics } from '../observe/server-metrics.ts';
import type { RaftMember, StateMachine } from './raft-member.ts';

/** The replicated state machine adapter: decodes each entry's command and applies it. */
export class KvReplicatedStateMachine implements StateMachine<ApplyResult> {
  kv: KvStateMachine;
  private readonly options: ConstructorParameters<typeof KvStateMachine>[0];
  private readonly appliedListeners = new Set<(result: ApplyResult) => void>();
  private readonly restoredListeners = new Set<(machine: KvStateMachine) => void>();

  constructor(options: ConstructorParameters<typeof KvStateMachine>[0]) {
    this.options = options;
    this.kv = new KvStateMachine(options);
  }

  apply(payload: Uint8Array, index: number): ApplyResult {
    const result = this.kv.applyEncoded(payload, index);
    for (const listener of this.appliedListeners) listener(result);
    return result;
  }

  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }

  captureSnapshot(prefixBytes: number): { step(maxKeys: number): Uint8Array | undefined } {
    return this.kv.captureSnapshot(prefixBytes);
  }

  restore(data: Uint8Array): void {
    this.kv = KvStateMachine.restore(data, this.options);
    for (const listener of this.restoredListeners) listener(this.kv);
  }

  onApplied(listener: (result: ApplyResult) => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  onRestored(listener: (machine: KvStateMachine) => void): () => void {
    this.restoredListeners.add(listener);
    return () => this.restoredListeners.delete(listener);
  }
}

export class StoreBackend implements KvBackend {
  private readonly member: RaftMember<ApplyResult>;
  private readonly machine: KvReplicatedStateMachine;
  private readonly maxRequestBytes: number;
  private readonly metrics: ServerMetrics;
  /** The 'read-without-read-index' defect (concord server --bug): reads skip the ReadIndex round. */
  private readonly skipReadIndex: boolean;

  constructor(member: RaftMember<ApplyResult>, machine: KvReplicatedStateMachine, maxRequestBytes: number, metrics: ServerMetrics, skipReadIndex = false) {
    this.member = member;
    this.machine = machine;
    this.maxRequestBytes = maxRequestBytes;
    this.metrics = metrics;
    this.skipReadIndex = skipReadIndex;
  }

  // Written with then rather than async/await: one promise per write instead of three (writes are the
  // member's hot path, and each promise is garbage to collect).
  write(command: KvCommand, requester: Requester): Promise<KvCommandResponse> {
    let proposal: Promise<ApplyResult>;
    try {
      proposal = this.member.propose(encodeCommandView({ ...command, requester }, { maxRequestBytes: this.maxRequestBytes }));
    } catch (error) {
      this.metrics.proposalsFailed.inc();
      return Promise.reject(error);
    }
    return proposal.then((result) => this.committed(result), (error: unknown) => {
      this.metrics.proposalsFailed.inc();
      throw error;
    });
  }

  private committed(result: ApplyResult): KvCommandResponse {
    this.metrics.proposalsCommitted.inc();
    if (result.status === 'failed') throw result.error;
    if (result.status === 'skipped') throw new Error(`entry ${result.index} was applied twice`);
    return result.response;
  }

  readBarrier(): Promise<void> {
    if (this.skipReadIndex) return Promise.resolve();
    return this.member.readBarrier();
  }

  range(request: RangeRequest): RangeResponse {
    return this.machine.kv.range(request);
  }
}
