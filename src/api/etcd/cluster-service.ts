// etcd's Cluster service over a Concord member: MemberList answers from the replicated member list;
// MemberAdd, MemberRemove and MemberPromote are decided by the leader (ClusterAdmin forwards them
// from any other member); MemberUpdate proposes the member's new peer URLs.
//
// With auth on, changing the membership needs the root role, checked by the member the request
// arrives at, before it is forwarded (etcd's checkMembershipOperationPermission); MemberList needs
// nothing, as in etcd.

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { AuthGate } from './auth-gate.ts';
import type { MemberInfo } from '../../server/member-registry.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { bigintFromWire, header } from './wire.ts';
import type { WireHeader, WireInt64 } from './wire.ts';
import { unary } from './unary-handler.ts';

interface WireMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

interface MemberAddWire {
  peerURLs?: string[];
  isLearner?: boolean;
}

interface MemberIdWire {
  ID?: WireInt64;
  peerURLs?: string[];
}

export function clusterService(context: EtcdServiceContext, auth: AuthGate): UntypedServiceImplementation {
  const admin = context.cluster;
  const answer = (members: MemberInfo[]) => ({ header: clusterHeader(context), members: members.map(wireMember) });
  return {
    MemberList: unary(async () => answer(admin.members())),
    MemberAdd: unary(async (request: MemberAddWire, caller) => {
      auth.checkAdmin(caller);
      const { added, members } = await admin.addMember(request.peerURLs ?? [], request.isLearner ?? false);
      return { header: clusterHeader(context), member: wireMember(added), members: members.map(wireMember) };
    }),
    MemberRemove: unary(async (request: MemberIdWire, caller) => {
      auth.checkAdmin(caller);
      return answer(await admin.removeMember(memberIdFromWire(request.ID)));
    }),
    MemberUpdate: unary(async (request: MemberIdWire, caller) => {
      auth.checkAdmin(caller);
      return answer(await admin.updateMember(memberIdFromWire(request.ID), request.peerURLs ?? []));
    }),
    MemberPromote: unary(async (request: MemberIdWire, caller) => {
      auth.checkAdmin(caller);
      return answer(await admin.promoteMember(memberIdFromWire(request.ID)));
    }),
  };
}

function memberIdFromWire(value: WireInt64 | undefined): bigint {
  const id = bigintFromWire(value, 'ID');
  // uint64 on the wire; a negative value means the client sent a signed form of a large ID.
  return id < 0n ? id + (1n << 64n) : id;
}

function wireMember(member: MemberInfo): WireMember {
  return {
    ID: member.id.toString(),
    name: member.name,
    peerURLs: [...member.peerUrls],
    clientURLs: [...member.clientUrls],
    isLearner: member.isLearner,
  };
}

/**
 * etcd 3.4's cluster server fills the header without a revision (it answers from the membership
 * store, not the key-value store), so etcdctl prints none; Concord does the same, so that
 * `member list -w json` prints the same fields as against etcd.
 */
function clusterHeader(context: EtcdServiceContext): WireHeader {
  return header(context.headers, 0);
}

