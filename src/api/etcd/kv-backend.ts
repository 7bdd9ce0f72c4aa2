// What the etcd API services need from a Concord member: replicated writes, a linearizable read
// barrier, and local reads. The server implements it; tests can implement it without Raft.

import type { KvCommand, KvCommandResponse, RangeRequest, RangeResponse } from '../../kv/types.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';

export interface KvBackend {
  /**
   * Replicates a command through Raft and resolves with its result; rejects with its KvError.
   * `requester` says who asked (AuthGate.requester for a client's call, MEMBER_REQUESTER for the
   * member's own work); it travels with the command and is authorized when the command is applied.
   * It is not optional, so that no client request can be proposed as the member's own.
   */
  write(command: KvCommand, requester: Requester): Promise<KvCommandResponse>;
  /** Resolves once this member has applied every write committed before the call. */
  readBarrier(): Promise<void>;
  /** Reads the local state machine (after a barrier, the read is linearizable). */
  range(request: RangeRequest): RangeResponse;
}
