// A new data dir for a member of a new cluster (or of a cluster restored from a snapshot): a WAL for
// the member's identity and one Raft snapshot at index 1, term 1, holding the initial membership
// (every initial member a voter, with its name and peer URLs) and the key-value state (empty, or the
// restored one). Every initial member writes the same snapshot from the same flags, so they start
// from one state without talking first; a member that joins later receives the leader's snapshot.
//
// The data dir is built under a temporary name and renamed into place, so a crash never leaves a
// half-made data dir that a server would start on.

import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KvStateMachine } from '../kv/state-machine.ts';
import { decodeSnapshot, encodeSnapshot } from '../kv/kv-snapshot.ts';
import { prepareDataDir } from '../storage/data-dir.ts';
import { isStorageError } from '../storage/errors.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { SnapshotStore } from '../storage/snapshot-store.ts';
import { Wal } from '../storage/wal.ts';
import { encodeMemberSnapshot } from './member-snapshot.ts';
import { MemberRegistry } from './member-registry.ts';
import { AppliedRequests } from './proposal-envelope.ts';

/** The Raft position of the initial state in a new log (etcd puts its bootstrap entries there too). */
export const BOOTSTRAP_SNAPSHOT_INDEX = 1;
export const BOOTSTRAP_SNAPSHOT_TERM = 1;
/** Requests remembered per member so a re-proposal after a leader change applies once. */
export const APPLIED_REQUESTS_WINDOW = 10_000;

export interface MemberIdentity {
  clusterId: bigint;
  memberId: bigint;
}

export interface InitialMember {
  id: bigint;
  name: string;
  peerUrls: string[];
}

export class DataDirNotEmptyError extends Error {
  override name = 'DataDirNotEmptyError';
}

/** The key-value state of a new cluster: empty, applied up to the bootstrap snapshot. */
export function emptyKvSnapshot(): Uint8Array {
  return rebaseKvSnapshot(new KvStateMachine().snapshot());
}

/** A key-value snapshot moved to the bootstrap index, as etcd resets its consistent index on restore. */
export function rebaseKvSnapshot(kvSnapshot: Uint8Array): Uint8Array {
  return encodeSnapshot({ ...decodeSnapshot(kvSnapshot), appliedIndex: BOOTSTRAP_SNAPSHOT_INDEX });
}

/**
 * Writes a new data dir at `dataDir`, which must not exist or be empty (DataDirNotEmptyError
 * otherwise). `kvSnapshot` must already be rebased to BOOTSTRAP_SNAPSHOT_INDEX.
 */
export async function writeBootstrappedDataDir(
  fs: FileSystem, dataDir: string, identity: MemberIdentity, members: readonly InitialMember[], kvSnapshot: Uint8Array,
): Promise<void> {
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.bootstrap-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    await writeDataDir(fs, staging, identity, members, kvSnapshot);
    await fs.rename(staging, dataDir);
    await fs.syncDir(dirname(dataDir));
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    // Something was written into the data dir meanwhile: it is no longer empty.
    if (isStorageError(error) && (error.osCode === 'ENOTEMPTY' || error.osCode === 'EEXIST')) throw new DataDirNotEmptyError(dataDir);
    throw error;
  }
}

/**
 * A data dir as a member's recovery expects it: the Raft snapshot file first, then its WAL marker,
 * then the hard state that commits it (the order persistSnapshot keeps).
 */
async function writeDataDir(fs: FileSystem, dataDir: string, identity: MemberIdentity, members: readonly InitialMember[], kvSnapshot: Uint8Array): Promise<void> {
  const layout = await prepareDataDir(fs, dataDir);
  const wal = await Wal.create(fs, layout.walDir, identity);
  const registry = MemberRegistry.bootstrap(members.map((member) => ({ ...member, clientUrls: [] })));
  try {
    await new SnapshotStore(fs, layout.snapDir).save({
      metadata: {
        index: BOOTSTRAP_SNAPSHOT_INDEX,
        term: BOOTSTRAP_SNAPSHOT_TERM,
        confState: { voters: members.map((member) => member.id), learners: [] },
      },
      data: encodeMemberSnapshot({ appliedRequests: new AppliedRequests(APPLIED_REQUESTS_WINDOW), members: registry, stateMachine: kvSnapshot }),
    });
    await wal.saveSnapshotMarker(BOOTSTRAP_SNAPSHOT_INDEX, BOOTSTRAP_SNAPSHOT_TERM);
    // No vote: with several initial members, whoever campaigns first wins term 2's election.
    await wal.save({ term: BOOTSTRAP_SNAPSHOT_TERM, vote: 0n, commit: BOOTSTRAP_SNAPSHOT_INDEX }, []);
  } finally {
    await wal.close();
  }
}
