// One place that turns any failure inside a request into the gRPC status etcd would send for the
// same condition, so etcd clients (which match on codes and message texts) react as they do
// against etcd. Unexpected errors become INTERNAL with the message, never a crash.

import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { KV_ERRORS, KvError } from '../../kv/errors.ts';
import type { KvErrorCode } from '../../kv/errors.ts';
import { MemberError } from '../../server/raft-member.ts';
import type { MemberErrorCode } from '../../server/raft-member.ts';
import { ClusterError, isClusterErrorCode } from '../../server/cluster-errors.ts';
import { WireError } from './wire.ts';

/** An error that ends a call with this status and text, as it is. */
export function grpcError(code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

/** A status built on purpose (grpcError), which a call ends with unchanged. */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' && 'metadata' in error;
}

/** etcd's texts for the member-level conditions (rpctypes), so clients retry the same way. */
const MEMBER_ERRORS: Record<MemberError['code'], { code: status; details: string }> = {
  CONCORD_E_TIMEOUT: { code: status.UNAVAILABLE, details: 'etcdserver: request timed out' },
  CONCORD_E_NO_LEADER: { code: status.UNAVAILABLE, details: 'etcdserver: no leader' },
  CONCORD_E_NOT_LEADER: { code: status.FAILED_PRECONDITION, details: 'etcdserver: not leader' },
  CONCORD_E_LEADER_TRANSFER_TIMEOUT: { code: status.UNAVAILABLE, details: 'etcdserver: request timed out, leader transfer took too long' },
  // etcd's raft drops such a change silently and the client times out; Concord says why at once.
  CONCORD_E_MEMBERSHIP_CHANGE_REFUSED: { code: status.FAILED_PRECONDITION, details: '' },
  CONCORD_E_TOO_MANY_PENDING: { code: status.RESOURCE_EXHAUSTED, details: 'etcdserver: too many requests' },
  CONCORD_E_STOPPED: { code: status.UNAVAILABLE, details: 'etcdserver: server stopped' },
  CONCORD_E_WRITES_DISABLED: { code: status.UNAVAILABLE, details: '' },
};

export function toServiceError(error: unknown): ServiceError {
  if (isServiceError(error)) return error;
  if (error instanceof KvError) return grpcError(error.grpcCode, error.message);
  if (error instanceof ClusterError) return grpcError(error.grpcCode, error.message);
  if (error instanceof WireError) return grpcError(status.INVALID_ARGUMENT, `concord: ${error.message}`);
  if (error instanceof MemberError) {
    const known = MEMBER_ERRORS[error.code];
    if (error.code === 'CONCORD_E_MEMBERSHIP_CHANGE_REFUSED') return grpcError(known.code, `concord: membership change refused: ${error.message}`);
    // A disk that refused a write is Concord's own condition: say what happened and what to do.
    return grpcError(known.code, known.details || `concord: ${error.message}; free disk space and restart the member`);
  }
  return grpcError(status.INTERNAL, `concord: internal error: ${(error as Error).message ?? String(error)}`);
}

/**
 * Rebuilds a member-side error from the code and message that crossed the peer transport (a
 * request forwarded to the leader), so the client sees what it would have seen on the leader.
 */
export function errorFromPeer(code: string, message: string): Error {
  if (isClusterErrorCode(code)) return new ClusterError(code);
  if (code in MEMBER_ERRORS) return new MemberError(code as MemberErrorCode, message);
  if (Object.hasOwn(KV_ERRORS, code)) return new KvError(code as KvErrorCode);
  return new MemberError('CONCORD_E_TIMEOUT', message);
}
