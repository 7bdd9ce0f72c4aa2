// What the etcd API services need from a Concord member: replicated writes, a linearizable read
// barrier, and local reads. The server implements it; tests can implement it without Raft.

import type { KvCommand, KvCommandResponse, RangeRequest, RangeResponse } from '../../kv/types.ts';

export interface KvBackend {
  /** Replicates a command through Raft and resolves with its result; rejects with its KvError. */
  write(command: KvCommand): Promise<KvCommandResponse>;
  /** Resolves once this member has applied every write committed before the call. */
  readBarrier(): Promise<void>;
  /** Reads the local state machine (after a barrier, the read is linearizable). */
  range(request: RangeRequest): RangeResponse;
}
