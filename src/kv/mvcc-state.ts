// The MVCC store's replicated state as snapshots carry it, and the checks that state from outside
// must pass before a store is rebuilt from it: keys sorted and unique, each key's changes in
// revision order within the store's revisions, puts shaped as puts, and nothing retained below
// the compact revision except the one change still visible there. The watch log is not stored:
// it is rebuilt from the retained changes, which hold everything it needs.

import type { KeyHistory, KeyRevision } from './key-index.ts';
import type { RevisionChanges } from './change-log.ts';
import { toByteString } from './key-range.ts';
import { KvError } from './errors.ts';

/** etcd's store starts at revision 1, so the first write gets revision 2. */
export const INITIAL_REVISION = 1;

export interface MvccState {
  revision: number;
  compactRevision: number;
  /** Ascending by key; each key's retained changes in revision order. */
  keys: { key: Uint8Array; revisions: KeyRevision[] }[];
}

/**
 * Which keys each revision from logStart on changed (see change-log.ts), checking that every
 * revision has its sub-revisions 0, 1, ... exactly once.
 */
export function rebuildLog(
  changesByRevision: Map<number, { change: KeyRevision; history: KeyHistory }[]>,
  logStart: number,
  revision: number,
): RevisionChanges[] {
  const log: RevisionChanges[] = [];
  for (let main = logStart; main <= revision; main++) {
    const changes = (changesByRevision.get(main) ?? []).sort((a, b) => a.change.sub - b.change.sub);
    if (changes.length === 0 || changes.some(({ change }, sub) => change.sub !== sub)) {
      throw new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', `revision ${main} has missing or repeated sub-revisions`);
    }
    log.push(changes.length === 1 ? changes[0]!.history : changes.map(({ history }) => history));
  }
  return log;
}

function invalid(detail: string): KvError {
  return new KvError('CONCORD_E_KV_SNAPSHOT_INVALID', detail);
}

/** The invariants of KeyIndex and of compaction, checked on state that arrives from outside. */
export function checkStateShape(state: MvccState): void {
  const { revision, compactRevision } = state;
  if (!Number.isSafeInteger(revision) || revision < INITIAL_REVISION) throw invalid(`revision ${revision}`);
  if (!Number.isSafeInteger(compactRevision) || compactRevision < 0 || compactRevision > revision) {
    throw invalid(`compact revision ${compactRevision} with revision ${revision}`);
  }
  let previousKey: string | undefined;
  for (const { key, revisions } of state.keys) {
    const keyString = toByteString(key);
    if (key.length === 0 || (previousKey !== undefined && keyString <= previousKey)) {
      throw invalid('keys are empty, unsorted or repeated');
    }
    previousKey = keyString;
    checkKeyRevisions(keyString, revisions, revision, compactRevision);
  }
}

function checkKeyRevisions(key: string, revisions: readonly KeyRevision[], revision: number, compactRevision: number): void {
  if (revisions.length === 0) throw invalid(`key ${JSON.stringify(key)} has no revisions`);
  let lastMain = 0;
  let beforeCompaction = 0;
  for (const change of revisions) {
    const { main, kv } = change;
    if (!Number.isSafeInteger(main) || main <= lastMain || main > revision || main <= INITIAL_REVISION) {
      throw invalid(`key ${JSON.stringify(key)}: revision ${main} out of order or range`);
    }
    lastMain = main;
    if (main < compactRevision) beforeCompaction++;
    if (toByteString(kv.key) !== key || kv.modRevision !== main) throw invalid(`key ${JSON.stringify(key)}: change ${main} names another key or revision`);
    const putShape = kv.version >= 1 && kv.createRevision >= 1 && kv.createRevision <= main;
    if (!change.tombstone && !putShape) throw invalid(`key ${JSON.stringify(key)}: put at ${main} has version ${kv.version}, created ${kv.createRevision}`);
  }
  // Compaction keeps at most one change below the compact revision: a live one, still visible then.
  const first = revisions[0]!;
  const replacedAtCompaction = revisions[1]?.main === compactRevision;
  if (beforeCompaction > 1 || (beforeCompaction === 1 && (first.tombstone || replacedAtCompaction))) {
    throw invalid(`key ${JSON.stringify(key)} keeps history below the compact revision ${compactRevision}`);
  }
}
