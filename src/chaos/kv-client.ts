// A plain etcd KV client for chaos workloads: one gRPC channel per member, one request per call with
// its own deadline, and no retries of its own, so the workload sees every outcome as it happened
// (a retrying client library would blur which attempt took effect).

import { credentials } from '@grpc/grpc-js';
import type { CallOptions, ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../api/etcd/proto-loader.ts';

interface RawKv {
  Range(request: object, options: CallOptions, callback: (error: ServiceError | null, response: RangeWire) => void): void;
  Put(request: object, options: CallOptions, callback: (error: ServiceError | null, response: PutWire) => void): void;
  Txn(request: object, options: CallOptions, callback: (error: ServiceError | null, response: TxnWire) => void): void;
  close(): void;
}

interface HeaderWire {
  revision: string;
}

interface RangeWire {
  header: HeaderWire;
  kvs: { key: Buffer; value: Buffer; mod_revision: string }[];
}

interface PutWire {
  header: HeaderWire;
}

interface TxnWire {
  header: HeaderWire;
  succeeded: boolean;
}

interface RawMaintenance {
  HashKV(request: object, options: CallOptions, callback: (error: ServiceError | null, response: { header: HeaderWire; hash: number }) => void): void;
  Status(request: object, options: CallOptions, callback: (error: ServiceError | null, response: StatusWire) => void): void;
  close(): void;
}

interface StatusWire {
  leader: string;
  raftAppliedIndex: string;
  raftTerm: string;
  header: HeaderWire & { member_id: string };
}

interface RawLease {
  LeaseGrant(request: object, options: CallOptions, callback: (error: ServiceError | null, response: { ID: string }) => void): void;
  close(): void;
}

export class KvClient {
  readonly endpoint: string;
  private readonly kv: RawKv;
  private readonly maintenance: RawMaintenance;
  private readonly lease: RawLease;

  constructor(endpoint: string) {
    this.endpoint = endpoint;
    const { clients } = loadEtcdProtos();
    // Short reconnect backoff: a member that comes back is used again within a second.
    const options = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500, 'grpc.use_local_subchannel_pool': 1 };
    this.kv = new clients.KV(endpoint, credentials.createInsecure(), options) as unknown as RawKv;
    this.maintenance = new clients.Maintenance(endpoint, credentials.createInsecure(), options) as unknown as RawMaintenance;
    this.lease = new clients.Lease(endpoint, credentials.createInsecure(), options) as unknown as RawLease;
  }

  /** A linearizable get (serializable when asked). The value is null when the key is absent. */
  async get(key: string, timeoutMs: number, options: { revision?: number; serializable?: boolean } = {}): Promise<{ value: string | null; modRevision: number; revision: number }> {
    const response = await call<RangeWire>((callOptions, callback) => this.kv.Range({
      key: Buffer.from(key), revision: options.revision ?? 0, serializable: options.serializable ?? false,
    }, callOptions, callback), timeoutMs);
    const kv = response.kvs[0];
    return { value: kv ? kv.value.toString() : null, modRevision: kv ? Number(kv.mod_revision) : 0, revision: Number(response.header.revision) };
  }

  /** Returns the revision of the write. */
  async put(key: string, value: string, timeoutMs: number, lease = '0'): Promise<number> {
    const response = await call<PutWire>((callOptions, callback) => this.kv.Put({ key: Buffer.from(key), value: Buffer.from(value), lease }, callOptions, callback), timeoutMs);
    return Number(response.header.revision);
  }

  /** Compare-and-set through a single-key txn: put `value` if the key holds `expected` (null: absent). */
  async cas(key: string, expected: string | null, value: string, timeoutMs: number): Promise<{ succeeded: boolean; revision: number }> {
    const compare = expected === null
      ? { key: Buffer.from(key), target: 'VERSION', result: 'EQUAL', version: 0 }
      : { key: Buffer.from(key), target: 'VALUE', result: 'EQUAL', value: Buffer.from(expected) };
    const response = await call<TxnWire>((callOptions, callback) => this.kv.Txn({
      compare: [compare],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }],
    }, callOptions, callback), timeoutMs);
    return { succeeded: response.succeeded, revision: Number(response.header.revision) };
  }

  async grantLease(ttlSeconds: number, timeoutMs: number): Promise<string> {
    const response = await call<{ ID: string }>((callOptions, callback) => this.lease.LeaseGrant({ TTL: ttlSeconds }, callOptions, callback), timeoutMs);
    return response.ID;
  }

  /** The member's HashKV at `revision` (0: its current revision) and the revision it hashed. */
  async hashKv(revision: number, timeoutMs: number): Promise<{ hash: number; revision: number }> {
    const response = await call<{ header: HeaderWire; hash: number }>((callOptions, callback) => this.maintenance.HashKV({ revision }, callOptions, callback), timeoutMs);
    return { hash: response.hash, revision: Number(response.header.revision) };
  }

  async status(timeoutMs: number): Promise<{ leader: bigint; memberId: bigint; term: number; appliedIndex: number; revision: number }> {
    const response = await call<StatusWire>((callOptions, callback) => this.maintenance.Status({}, callOptions, callback), timeoutMs);
    return {
      leader: BigInt(response.leader), memberId: BigInt(response.header.member_id), term: Number(response.raftTerm),
      appliedIndex: Number(response.raftAppliedIndex), revision: Number(response.header.revision),
    };
  }

  close(): void {
    this.kv.close();
    this.maintenance.close();
    this.lease.close();
  }
}

function call<T>(start: (options: CallOptions, callback: (error: ServiceError | null, response: T) => void) => void, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    start({ deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/**
 * Whether a failed request certainly did not take effect. Only errors raised before a proposal can
 * exist qualify; a timeout, a lost connection or a stopping member may hide an applied write.
 */
export function failedBeforeProposal(error: unknown): boolean {
  const details = String((error as ServiceError).details ?? '');
  return /too many requests|request is too large|key is not provided|ECONNREFUSED|No connection established/.test(details);
}
