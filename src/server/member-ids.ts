// Member and cluster IDs: 64-bit, non-zero, derived deterministically from what the operator
// configured, so every member of a new cluster computes the same IDs without talking first.
// (etcd derives them from the peer URLs and the cluster token in the same spirit; ours are not
// bit-for-bit etcd's, and need not be: clients only ever echo them back.)

import { createHash } from 'node:crypto';

function sha256Prefix64(text: string): bigint {
  const digest = createHash('sha256').update(text).digest();
  const id = digest.readBigUInt64BE(0);
  return id === 0n ? 1n : id; // 0 means "no member" in Raft
}

export function memberIdFor(peerUrls: readonly URL[], clusterToken: string): bigint {
  const urls = peerUrls.map((url) => url.href).sort();
  return sha256Prefix64(`member|${clusterToken}|${urls.join(',')}`);
}

export function clusterIdFor(memberIds: readonly bigint[], clusterToken: string): bigint {
  const ids = memberIds.map(String).sort();
  return sha256Prefix64(`cluster|${clusterToken}|${ids.join(',')}`);
}

/** The IDs of every initial member, keyed by name, and the cluster's ID. */
export function initialClusterIds(initialCluster: ReadonlyMap<string, readonly URL[]>, clusterToken: string) {
  const members = new Map<string, bigint>();
  for (const [name, urls] of initialCluster) members.set(name, memberIdFor(urls, clusterToken));
  return { members, clusterId: clusterIdFor([...members.values()], clusterToken) };
}
