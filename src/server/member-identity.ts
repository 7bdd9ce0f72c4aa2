// Who this member is, decided before its data dir is opened:
// * a data dir with a WAL: the member restarts as whoever the WAL says (for a member of a new
//   cluster, the IDs its flags give must match, so a data dir of another cluster is refused);
// * no WAL and --initial-cluster-state new: the IDs follow from --initial-cluster and the token,
//   and the data dir is bootstrapped with every initial member (data-dir-bootstrap.ts);
// * no WAL and --initial-cluster-state existing: the member asks the members it was given for the
//   membership and finds itself by its advertised peer URLs (it was added with MemberAdd first).

import { z } from 'zod';
import { dataDirHasWal } from '../storage/data-dir.ts';
import type { FileSystem } from '../storage/file-system.ts';
import type { WalIdentity } from '../storage/wal-record.ts';
import { requestJoinInfo } from '../transport/join-request.ts';
import type { PeerDialTls } from '../transport/peer-connection.ts';
import { emptyKvSnapshot, writeBootstrappedDataDir } from './data-dir-bootstrap.ts';
import { initialClusterIds } from './member-ids.ts';
import { normalizeUrl } from './member-registry.ts';
import type { ServerConfig } from './server-config.ts';
import { ConfigError } from './server-config.ts';

/** A member as a join answer lists it. */
export interface JoinAnswerMember {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What a member answers a join request with. */
export interface JoinAnswer {
  clusterId: string;
  members: JoinAnswerMember[];
  removed: string[];
}

export interface ResolvedIdentity {
  /** What recovery must find in the WAL; undefined: whatever the existing WAL says. */
  expected: WalIdentity | undefined;
  /** For a member joining an existing cluster: the members to talk to until its first snapshot. */
  joinedMembers?: JoinAnswerMember[];
}

export interface IdentityOptions {
  fs: FileSystem;
  dialTls?: PeerDialTls;
  /** How long to keep asking the given members before giving up on a join. */
  joinTimeoutMs: number;
  log(message: string): void;
}

export async function resolveIdentity(config: ServerConfig, options: IdentityOptions): Promise<ResolvedIdentity> {
  if (await dataDirHasWal(options.fs, config.dataDir)) {
    if (config.initialClusterState === 'existing') return { expected: undefined };
    return { expected: newClusterIdentity(config) };
  }
  if (config.initialClusterState === 'new') {
    const identity = newClusterIdentity(config);
    const ids = initialClusterIds(config.initialCluster, config.initialClusterToken);
    const members = [...config.initialCluster].map(([name, urls]) => ({ id: ids.members.get(name)!, name, peerUrls: urls.map((url) => url.origin) }));
    await writeBootstrappedDataDir(options.fs, config.dataDir, identity, members, emptyKvSnapshot());
    options.log(`bootstrapped a new cluster ${hex(identity.clusterId)} of ${members.length} member(s) in ${config.dataDir}`);
    return { expected: identity };
  }
  return joinExistingCluster(config, options);
}

function newClusterIdentity(config: ServerConfig): WalIdentity {
  const ids = initialClusterIds(config.initialCluster, config.initialClusterToken);
  return { clusterId: ids.clusterId, memberId: ids.members.get(config.name)! };
}

async function joinExistingCluster(config: ServerConfig, options: IdentityOptions): Promise<ResolvedIdentity> {
  const ownUrls = config.initialAdvertisePeerUrls.map((url) => url.origin);
  const others = [...config.initialCluster].filter(([name]) => name !== config.name).flatMap(([, urls]) => urls);
  if (others.length === 0) {
    throw new ConfigError('--initial-cluster-state existing: --initial-cluster must name at least one running member besides this one, to ask for the membership');
  }
  const deadline = Date.now() + options.joinTimeoutMs;
  const problems: string[] = [];
  for (let round = 0; Date.now() < deadline; round++) {
    for (const url of others) {
      let answer: JoinAnswer;
      try {
        answer = parseJoinAnswer(await requestJoinInfo({ url, peerUrls: ownUrls, tls: options.dialTls, timeoutMs: 2_000 }));
      } catch (error) {
        problems.push(`${url.host}: ${(error as Error).message}`);
        continue;
      }
      const wanted = new Set(ownUrls.map(normalizeUrl));
      const me = answer.members.find((member) => member.peerUrls.some((peerUrl) => wanted.has(normalizeUrl(peerUrl))));
      if (!me) {
        throw new ConfigError(`the cluster at ${url.host} has no member with peer URL ${ownUrls.join(', ')}: ` +
          `add this member first (etcdctl member add ${config.name} --peer-urls=${ownUrls.join(',')}), then start it`);
      }
      if (me.name !== '' && me.name !== config.name) {
        throw new ConfigError(`the cluster lists peer URL ${ownUrls.join(', ')} for member '${me.name}', but this member is named '${config.name}' (--name)`);
      }
      options.log(`joining cluster ${hex(BigInt(answer.clusterId))} as member ${hex(BigInt(me.id))} (asked ${url.host})`);
      return { expected: { clusterId: BigInt(answer.clusterId), memberId: BigInt(me.id) }, joinedMembers: answer.members };
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** round)));
  }
  throw new ConfigError(`--initial-cluster-state existing: no member answered within ${options.joinTimeoutMs} ms (${problems.slice(-others.length).join('; ')})`);
}

/** A 64-bit ID in decimal, as join answers carry them (JSON numbers cannot hold them). */
const idText = z.string().regex(/^[0-9]{1,20}$/, 'must be a decimal ID').refine((text) => BigInt(text) < 1n << 64n, 'must fit in 64 bits');
/** Bounds what a peer's answer can make this member hold; a real cluster has a handful of members. */
const MAX_JOIN_ANSWER_MEMBERS = 1_000;
const urlList = z.array(z.string().max(1024).refine((text) => URL.canParse(text), 'must be a URL')).max(16);
const joinAnswerSchema = z.object({
  clusterId: idText.refine((text) => text !== '0', 'must not be 0'),
  members: z.array(z.object({ id: idText, name: z.string().max(1024), peerUrls: urlList, clientUrls: urlList, isLearner: z.boolean() })).max(MAX_JOIN_ANSWER_MEMBERS),
  removed: z.array(idText).max(MAX_JOIN_ANSWER_MEMBERS),
});

/**
 * The answer comes from another process over the network: every field is checked before it is
 * used (a member entry without peerUrls used to throw a TypeError out of the server's start-up).
 */
function parseJoinAnswer(document: unknown): JoinAnswer {
  const parsed = joinAnswerSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`the answer to the join request is malformed: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

function hex(id: bigint): string {
  return id.toString(16);
}
