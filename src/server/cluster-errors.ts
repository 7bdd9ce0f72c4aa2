// The membership errors of the Cluster service, each with etcd's exact wire text and gRPC status
// (rpctypes), so etcdctl and etcd clients report and retry them as they do against etcd. `hint`
// says what the operator can do; it goes into the logs, not on the wire.

import { GRPC_STATUS_CODES } from '../kv/errors.ts';
import type { GrpcStatusName } from '../kv/errors.ts';

const UNAVAILABLE = 14;

export const CLUSTER_ERRORS = {
  CONCORD_E_MEMBER_NOT_FOUND: {
    message: 'etcdserver: member not found',
    status: GRPC_STATUS_CODES.NOT_FOUND,
    hint: 'List the members with `etcdctl member list`; a removed member cannot be changed.',
  },
  CONCORD_E_MEMBER_EXISTS: {
    message: 'etcdserver: member ID already exist',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'The member is already in the cluster.',
  },
  CONCORD_E_PEER_URL_EXISTS: {
    message: 'etcdserver: Peer URLs already exists',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'Another member advertises that peer URL; give the new member its own.',
  },
  CONCORD_E_MEMBER_BAD_URLS: {
    message: 'etcdserver: given member URLs are invalid',
    status: GRPC_STATUS_CODES.INVALID_ARGUMENT,
    hint: 'Peer URLs look like http://HOST:PORT or https://HOST:PORT.',
  },
  CONCORD_E_MEMBER_NOT_LEARNER: {
    message: 'etcdserver: can only promote a learner member',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'The member is a voter already.',
  },
  CONCORD_E_LEARNER_NOT_READY: {
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'Wait until the learner has caught up with the leader\'s log, then promote it again.',
  },
  CONCORD_E_TOO_MANY_LEARNERS: {
    message: 'etcdserver: too many learner members in cluster',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'Promote or remove the current learner first (one learner at a time, as etcd).',
  },
  CONCORD_E_NOT_ENOUGH_STARTED_MEMBERS: {
    message: 'etcdserver: re-configuration failed due to not enough started members',
    status: GRPC_STATUS_CODES.FAILED_PRECONDITION,
    hint: 'Too few voters have started (published their name) to carry the change; start the added members first.',
  },
  CONCORD_E_UNHEALTHY_CLUSTER: {
    message: 'etcdserver: unhealthy cluster',
    status: UNAVAILABLE,
    hint: 'The change would leave the cluster without a quorum of connected voters; bring members back first.',
  },
} as const satisfies Record<string, { message: string; status: number; hint: string }>;

export type ClusterErrorCode = keyof typeof CLUSTER_ERRORS;

export class ClusterError extends Error {
  override name = 'ClusterError';
  readonly code: ClusterErrorCode;
  /** What the member knows beyond etcd's text, for its log. */
  readonly detail: string;
  constructor(code: ClusterErrorCode, detail = '') {
    super(CLUSTER_ERRORS[code].message);
    this.code = code;
    this.detail = detail;
  }

  get grpcCode(): number {
    return CLUSTER_ERRORS[this.code].status;
  }
}

export function isClusterErrorCode(code: string): code is ClusterErrorCode {
  return Object.hasOwn(CLUSTER_ERRORS, code);
}

export type { GrpcStatusName };
