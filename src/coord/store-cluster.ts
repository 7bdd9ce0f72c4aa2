// The store's membership, through the etcd v3 Cluster and Maintenance APIs (both the embedded
// Concord store and etcd serve them): list, add (as a voter or a learner), remove and promote
// members, and who leads. `concord member ...` and the control plane's overview use this; it is
// thin on purpose, so what it shows is exactly what etcdctl member list shows.

import type { Etcd3, IMember } from 'etcd3';

export interface StoreMember {
  id: bigint;
  /** As etcdctl prints it: 16 hex digits. */
  idHex: string;
  /** Empty while a member added to the cluster has not started yet. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

type Call = <T>(what: string, run: () => Promise<T>) => Promise<T>;

export function memberIdHex(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

/** A member ID as etcdctl prints it (hex, padded or not) or in decimal with a 0x-less leading digit check. */
export function parseMemberId(text: string): bigint | undefined {
  const trimmed = text.trim().toLowerCase();
  if (!/^[0-9a-f]{1,16}$/.test(trimmed)) return undefined;
  const id = BigInt(`0x${trimmed}`);
  return id === 0n ? undefined : id;
}

function memberOf(member: IMember): StoreMember {
  const id = BigInt(member.ID);
  return { id, idHex: memberIdHex(id), name: member.name ?? '', peerUrls: member.peerURLs ?? [], clientUrls: member.clientURLs ?? [], isLearner: member.isLearner === true };
}

export class StoreCluster {
  private readonly client: Etcd3;
  private readonly call: Call;

  constructor(client: Etcd3, call: Call) {
    this.client = client;
    this.call = call;
  }

  async members(): Promise<StoreMember[]> {
    const response = await this.call('member list', () => this.client.cluster.memberList({}));
    return (response.members ?? []).map(memberOf);
  }

  /** The leader's ID as the answering member sees it; undefined when it knows none. */
  async leaderId(): Promise<bigint | undefined> {
    const status = await this.call('status', () => this.client.maintenance.status());
    const leader = BigInt(status.leader ?? 0);
    return leader === 0n ? undefined : leader;
  }

  async add(peerUrls: string[], isLearner: boolean): Promise<{ member: StoreMember; members: StoreMember[] }> {
    const response = await this.call('member add', () => this.client.cluster.memberAdd({ peerURLs: peerUrls, isLearner }));
    return { member: memberOf(response.member), members: (response.members ?? []).map(memberOf) };
  }

  async remove(id: bigint): Promise<StoreMember[]> {
    const response = await this.call('member remove', () => this.client.cluster.memberRemove({ ID: id.toString() }));
    return (response.members ?? []).map(memberOf);
  }

  async promote(id: bigint): Promise<StoreMember[]> {
    const response = await this.call('member promote', () => this.client.cluster.memberPromote({ ID: id.toString() }));
    return (response.members ?? []).map(memberOf);
  }
}
