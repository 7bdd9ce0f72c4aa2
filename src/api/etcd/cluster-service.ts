// etcd's Cluster service over a Concord member. MemberList answers from the member's view of the
// membership; this build runs single-member clusters, so the membership changes (MemberAdd,
// MemberRemove, MemberUpdate, MemberPromote) are refused with UNIMPLEMENTED and a message that says
// so, instead of pretending to change anything.

import { Metadata, status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdServiceContext } from './service-context.ts';
import { toServiceError } from './grpc-errors.ts';
import { header } from './wire.ts';
import type { WireHeader } from './wire.ts';

interface WireMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function clusterService(context: EtcdServiceContext): UntypedServiceImplementation {
  return {
    MemberList: unary(async () => ({ header: clusterHeader(context), members: wireMembers(context) })),
    MemberAdd: refuseMembershipChange('MemberAdd'),
    MemberRemove: refuseMembershipChange('MemberRemove'),
    MemberUpdate: refuseMembershipChange('MemberUpdate'),
    MemberPromote: refuseMembershipChange('MemberPromote'),
  };
}

/** The members sorted by ID, as etcd lists them. */
function wireMembers(context: EtcdServiceContext): WireMember[] {
  return [...context.memberUrls()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, member]) => ({
      ID: id.toString(),
      name: member.name,
      peerURLs: [...member.peerUrls],
      clientURLs: [...member.clientUrls],
      isLearner: member.isLearner,
    }));
}

/**
 * etcd 3.4's cluster server fills the header without a revision (it answers from the membership
 * store, not the key-value store), so etcdctl prints none; Concord does the same, so that
 * `member list -w json` prints the same fields as against etcd.
 */
function clusterHeader(context: EtcdServiceContext): WireHeader {
  return header(context.headers, 0);
}

function refuseMembershipChange(method: string): (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void {
  return (_call, callback) => {
    callback(grpcError(
      status.UNIMPLEMENTED,
      `concord: ${method} is not supported yet: this build runs single-member clusters, and membership changes arrive with clustering`,
    ));
  };
}

function grpcError(code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

function unary(handle: () => Promise<unknown>): (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void {
  return (_call, callback) => {
    handle().then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}
