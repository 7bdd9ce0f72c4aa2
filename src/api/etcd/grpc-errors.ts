// One place that turns any failure inside a request into the gRPC status etcd would send for the
// same condition, so etcd clients (which match on codes and message texts) react as they do
// against etcd. Unexpected errors become INTERNAL with the message, never a crash.

import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { KvError } from '../../kv/errors.ts';
import { MemberError } from '../../server/raft-member.ts';
import { WireError } from './wire.ts';

function serviceError(code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

/** etcd's texts for the member-level conditions (rpctypes), so clients retry the same way. */
const MEMBER_ERRORS: Record<MemberError['code'], { code: status; details: string }> = {
  CONCORD_E_TIMEOUT: { code: status.UNAVAILABLE, details: 'etcdserver: request timed out' },
  CONCORD_E_NO_LEADER: { code: status.UNAVAILABLE, details: 'etcdserver: no leader' },
  CONCORD_E_TOO_MANY_PENDING: { code: status.RESOURCE_EXHAUSTED, details: 'etcdserver: too many requests' },
  CONCORD_E_STOPPED: { code: status.UNAVAILABLE, details: 'etcdserver: server stopped' },
  CONCORD_E_WRITES_DISABLED: { code: status.UNAVAILABLE, details: '' },
};

export function toServiceError(error: unknown): ServiceError {
  if (error instanceof KvError) return serviceError(error.grpcCode, error.message);
  if (error instanceof WireError) return serviceError(status.INVALID_ARGUMENT, `concord: ${error.message}`);
  if (error instanceof MemberError) {
    const known = MEMBER_ERRORS[error.code];
    // A disk that refused a write is Concord's own condition: say what happened and what to do.
    return serviceError(known.code, known.details || `concord: ${error.message}; free disk space and restart the member`);
  }
  return serviceError(status.INTERNAL, `concord: internal error: ${(error as Error).message ?? String(error)}`);
}
