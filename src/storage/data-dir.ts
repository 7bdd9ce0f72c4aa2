// The data dir: its layout, the lock that keeps two servers out of one data dir, and recovery of
// what the server needs to rebuild its Raft storage on start-up.
//
//   <dataDir>/concord.lock      held while a server runs (see DataDirLock)
//   <dataDir>/member/wal/       WAL segments (wal.ts)
//   <dataDir>/member/snap/      snapshot files (snapshot-store.ts)

import { dirname, join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { MemoryStorage, EMPTY_CONF_STATE } from '../consensus/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../consensus/types.ts';
import { StorageError, isStorageError } from './errors.ts';
import type { FileSystem } from './file-system.ts';
import { SnapshotStore } from './snapshot-store.ts';
import type { SnapshotStoreOptions, SkippedSnapshot } from './snapshot-store.ts';
import { Wal } from './wal.ts';
import type { SegmentMetadata, SnapshotMarker, TornTail, WalIdentity, WalOptions } from './wal.ts';
import { ZERO_MARKER } from './wal-replay.ts';

export interface DataDirLayout {
  dataDir: string;
  memberDir: string;
  walDir: string;
  snapDir: string;
  lockPath: string;
}

export function dataDirLayout(dataDir: string): DataDirLayout {
  const memberDir = join(dataDir, 'member');
  return { dataDir, memberDir, walDir: join(memberDir, 'wal'), snapDir: join(memberDir, 'snap'), lockPath: join(dataDir, 'concord.lock') };
}

/** Creates the data dir's folders (if missing) and makes their names durable. */
export async function prepareDataDir(fs: FileSystem, dataDir: string): Promise<DataDirLayout> {
  const layout = dataDirLayout(dataDir);
  await mkdirDurable(fs, layout.walDir);
  await mkdirDurable(fs, layout.snapDir);
  return layout;
}

/**
 * mkdir -p, then an fsync of the parent of every directory it created, top down: a new directory
 * is durable only once its parent is fsynced, like a new file.
 */
async function mkdirDurable(fs: FileSystem, path: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path; !(await dirExists(fs, at)); at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  if (missing.length === 0) return;
  await fs.mkdirp(path);
  for (const created of missing) await fs.syncDir(dirname(created));
}

async function dirExists(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.readdir(path);
    return true;
  } catch (error) {
    if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return false;
    throw error;
  }
}

export interface LockOptions {
  /** Default: process.pid. */
  pid?: number;
  /** Default: os.hostname(). */
  hostname?: string;
  /** Whether a process with this pid runs on this host. Default: process.kill(pid, 0). */
  isProcessAlive?: (pid: number) => boolean;
  /**
   * How long an empty or unreadable lock file gets to become readable before it is taken as the
   * leftover of a crash (its creator writes it right after creating it). Default 500 ms.
   */
  unreadableLockGraceMs?: number;
}

export const LOCK_DEFAULTS = { unreadableLockGraceMs: 500 } as const;

interface LockContent {
  pid: number;
  hostname: string;
}

function defaultIsProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return typeof error === 'object' && error !== null && 'code' in error && error.code === 'EPERM';
  }
}

/**
 * Keeps a second server out of a data dir that one is using.
 *
 * The lock is a file created with an exclusive create (O_EXCL), which is atomic on a local file
 * system: of two servers starting at once, exactly one creates it. It holds the owner's pid and
 * host name and is deleted on a clean shutdown.
 *
 * The stale-lock story: a server that dies without shutting down (kill -9, a crash, a power
 * failure) leaves the file behind. The next server to start reads it: if it names this host and
 * no process with that pid is alive, the lock is stale and is replaced. Three cases remain for the
 * operator, and the error says what to do in each: the pid was reused by an unrelated process
 * (we refuse although nobody holds the lock), or the file names another host (the data dir was
 * moved, or sits on a network file system; we cannot check, so we refuse). Deleting the file after
 * checking that no server uses the data dir is the fix. An empty or unreadable lock file (a crash
 * between creating and writing it, as a power failure can leave) is given unreadableLockGraceMs to
 * become readable, then replaced. One race is left: two servers that find the same stale lock in
 * the same instant can both replace it; an flock(2) would close it, but Node has none. Data dirs
 * belong on local disks, where O_EXCL is reliable. The lock file is not fsynced: after a power
 * failure nobody holds the lock, so losing it is harmless.
 */
export class DataDirLock {
  readonly path: string;
  private readonly fs: FileSystem;
  private released = false;

  private constructor(fs: FileSystem, path: string) {
    this.fs = fs;
    this.path = path;
  }

  static async acquire(fs: FileSystem, path: string, options: LockOptions = {}): Promise<DataDirLock> {
    const mine: LockContent = { pid: options.pid ?? process.pid, hostname: options.hostname ?? osHostname() };
    const isProcessAlive = options.isProcessAlive ?? defaultIsProcessAlive;
    const graceMs = options.unreadableLockGraceMs ?? LOCK_DEFAULTS.unreadableLockGraceMs;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await fs.createExclusive(path);
        try {
          await handle.write(new TextEncoder().encode(`${JSON.stringify(mine)}\n`), 0);
        } finally {
          await handle.close();
        }
        return new DataDirLock(fs, path);
      } catch (error) {
        if (!isStorageError(error, 'CONCORD_E_FILE_EXISTS')) throw error;
      }
      let holder = await readLock(fs, path);
      if (holder === 'unreadable') {
        // Either its creator is about to write it, or a crash came between creating and writing.
        await new Promise((resolve) => setTimeout(resolve, graceMs));
        holder = await readLock(fs, path);
        if (holder === 'unreadable') {
          await fs.unlink(path);
          continue;
        }
      }
      if (holder === 'gone') continue; // released between our create and our read: try again
      if (holder.hostname !== mine.hostname) {
        throw lockedError(path, `it is held by pid ${holder.pid} on host ${holder.hostname}, which cannot be checked from ${mine.hostname}`);
      }
      if (isProcessAlive(holder.pid)) {
        throw lockedError(path, `it is held by pid ${holder.pid}, which is running; stop that server or use another --data-dir`);
      }
      await fs.unlink(path); // stale: its owner is gone
    }
    throw lockedError(path, 'it was taken by another server while a stale lock was being replaced');
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.fs.unlink(this.path);
  }
}

async function readLock(fs: FileSystem, path: string): Promise<LockContent | 'unreadable' | 'gone'> {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(await fs.readFile(path)));
    if (typeof parsed !== 'object' || parsed === null) return 'unreadable';
    const { pid, hostname } = parsed as Record<string, unknown>;
    return Number.isSafeInteger(pid) && typeof hostname === 'string' ? { pid: pid as number, hostname } : 'unreadable';
  } catch (error) {
    if (error instanceof SyntaxError) return 'unreadable';
    if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return 'gone';
    throw error;
  }
}

function lockedError(path: string, why: string): StorageError {
  return new StorageError(
    'CONCORD_E_DATA_DIR_LOCKED',
    `the data dir is in use: ${why}. If you are sure no Concord server uses it, delete ${path} and start again.`,
    { path },
  );
}

/** Whether the data dir holds a WAL, i.e. belongs to a member that has started before. */
export async function dataDirHasWal(fs: FileSystem, dataDir: string): Promise<boolean> {
  try {
    return await Wal.exists(fs, dataDirLayout(dataDir).walDir);
  } catch (error) {
    if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return false;
    throw error;
  }
}

export interface RecoverOptions {
  wal?: WalOptions;
  snapshots?: SnapshotStoreOptions;
  lock?: LockOptions;
}

/** What the server needs to rebuild its Raft storage, and the open stores to keep writing to. */
export interface RecoveredDataDir {
  layout: DataDirLayout;
  lock: DataDirLock;
  wal: Wal;
  snapshots: SnapshotStore;
  /** True if the data dir held no WAL: a new one was created for `expected` (a brand-new member). */
  fresh: boolean;
  metadata: SegmentMetadata | undefined;
  /** The newest snapshot that read back intact and that the WAL has a marker for. */
  snapshot: Snapshot | undefined;
  /** Its file, for errors about its content. */
  snapshotPath: string | undefined;
  hardState: HardState;
  /** The entries after the snapshot (or from index 1), consecutive. */
  entries: Entry[];
  /** Corrupt snapshots skipped, a torn WAL tail cut off: things the operator should see in the log. */
  warnings: string[];
  skippedSnapshots: SkippedSnapshot[];
  tornTail: TornTail | undefined;
}

/**
 * Opens a data dir for `expected` (creating it for a new member), locks it, and recovers the
 * newest usable snapshot, the hard state and the entries after the snapshot. The caller closes
 * the result with closeDataDir() on shutdown.
 */
export async function recover(fs: FileSystem, dataDir: string, expected: WalIdentity | undefined, options: RecoverOptions = {}): Promise<RecoveredDataDir> {
  const layout = await prepareDataDir(fs, dataDir);
  const lock = await DataDirLock.acquire(fs, layout.lockPath, options.lock);
  try {
    return await recoverLocked(fs, layout, lock, expected, options);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function recoverLocked(
  fs: FileSystem,
  layout: DataDirLayout,
  lock: DataDirLock,
  expected: WalIdentity | undefined,
  options: RecoverOptions,
): Promise<RecoveredDataDir> {
  const warnings: string[] = [];
  const onWarning = (message: string): void => {
    warnings.push(message);
    options.wal?.onWarning?.(message);
  };
  const walOptions: WalOptions = { ...options.wal, onWarning };
  const snapshots = new SnapshotStore(fs, layout.snapDir, options.snapshots);
  await snapshots.removeTempFiles();
  if (!(await Wal.exists(fs, layout.walDir))) {
    const existing = await snapshots.list();
    if (existing.length > 0) {
      throw new StorageError(
        'CONCORD_E_WAL_NOT_FOUND',
        `${layout.snapDir} holds ${existing.length} snapshots but ${layout.walDir} holds no WAL: the data dir is incomplete. ` +
          'Restore it from a backup, or remove this member and add it back with an empty data dir.',
        { path: layout.walDir },
      );
    }
    if (!expected) {
      throw new StorageError('CONCORD_E_WAL_NOT_FOUND', `${layout.walDir} holds no WAL, and there is no identity to create one for`, { path: layout.walDir });
    }
    const wal = await Wal.create(fs, layout.walDir, expected, walOptions);
    const hardState = { term: 0, vote: 0n, commit: 0 };
    return {
      layout, lock, wal, snapshots, fresh: true, metadata: undefined, snapshot: undefined, snapshotPath: undefined, hardState, entries: [], warnings, skippedSnapshots: [], tornTail: undefined,
    };
  }
  let snapshot: Snapshot | undefined;
  let snapshotPath: string | undefined;
  let skippedSnapshots: SkippedSnapshot[] = [];
  const chooseSnapshot = async (markers: readonly SnapshotMarker[]): Promise<SnapshotMarker> => {
    const loaded = await snapshots.loadNewest({ accept: (m) => markers.some((k) => k.index === m.index && k.term === m.term) });
    warnings.push(...loaded.warnings);
    skippedSnapshots = loaded.skipped;
    snapshot = loaded.snapshot;
    snapshotPath = loaded.path;
    return snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : ZERO_MARKER;
  };
  let opened: Awaited<ReturnType<typeof Wal.open>>;
  try {
    opened = await Wal.open(fs, layout.walDir, { ...walOptions, expected, snapshot: chooseSnapshot });
  } catch (error) {
    throw namingUnreadableSnapshots(error, skippedSnapshots);
  }
  const { wal, state } = opened;
  try {
    checkCommitReachable(layout, state.hardState.commit, snapshot, state.entries, skippedSnapshots);
  } catch (error) {
    await wal.close();
    throw error;
  }
  return {
    layout,
    lock,
    wal,
    snapshots,
    fresh: false,
    metadata: state.metadata,
    snapshot,
    snapshotPath,
    hardState: state.hardState,
    entries: state.entries,
    warnings,
    skippedSnapshots,
    tornTail: state.tornTail,
  };
}

/** Missing entries usually mean a snapshot could not be read: the error names the files skipped. */
function namingUnreadableSnapshots(error: unknown, skipped: readonly SkippedSnapshot[]): unknown {
  if (!isStorageError(error, 'CONCORD_E_WAL_MISSING_ENTRIES') || skipped.length === 0) return error;
  const message = error.message.replace(/^CONCORD_E_WAL_MISSING_ENTRIES: /, '');
  return new StorageError('CONCORD_E_WAL_MISSING_ENTRIES', `${message} (unreadable: ${skipped.map((s) => s.path).join(', ')})`, {
    ...(error.path === undefined ? {} : { path: error.path }),
    cause: error,
  });
}

/**
 * Raft refuses to start (as a bug) with a commit index beyond its log. Recovery finds one when the
 * only snapshot that held the committed state is unreadable and the WAL holds no entries to replay
 * instead: typically a data dir bootstrapped (or restored) whose snapshot file was then damaged.
 * That is a damaged data dir, so it gets the same coded error as any other gap in the WAL.
 */
function checkCommitReachable(
  layout: DataDirLayout, commit: number, snapshot: Snapshot | undefined, entries: readonly Entry[], skipped: readonly SkippedSnapshot[],
): void {
  const lastIndex = entries[entries.length - 1]?.index ?? snapshot?.metadata.index ?? 0;
  if (commit <= lastIndex) return;
  const unreadable = skipped.length === 0 ? '' : ` (unreadable: ${skipped.map((s) => s.path).join(', ')})`;
  throw new StorageError(
    'CONCORD_E_WAL_MISSING_ENTRIES',
    `the WAL in ${layout.walDir} says entries up to index ${commit} are committed, but the readable snapshots and the WAL hold entries only up to ${lastIndex}${unreadable}. ` +
      'Restore the data dir from a backup, or remove this member and add it back with an empty data dir.',
    { path: layout.walDir },
  );
}

/** Closes the WAL and releases the lock. */
export async function closeDataDir(recovered: Pick<RecoveredDataDir, 'wal' | 'lock'>): Promise<void> {
  try {
    await recovered.wal.close();
  } finally {
    await recovered.lock.release();
  }
}

/**
 * Fills a MemoryStorage with what was recovered. Without a snapshot the membership comes from
 * `initialConfState` (the bootstrap membership, as MemoryStorage.bootstrap takes it).
 */
export function toMemoryStorage(recovered: Pick<RecoveredDataDir, 'snapshot' | 'hardState' | 'entries'>, initialConfState: ConfState = EMPTY_CONF_STATE): MemoryStorage {
  const storage = MemoryStorage.bootstrap(initialConfState);
  if (recovered.snapshot && recovered.snapshot.metadata.index > 0) storage.applySnapshot(recovered.snapshot);
  storage.append(recovered.entries);
  // A commit index is fsynced only with other changes (Raft can learn it again), so the one on disk
  // may trail the snapshot, which holds only committed state: the snapshot's index is committed.
  const snapshotIndex = recovered.snapshot?.metadata.index ?? 0;
  storage.setHardState({ ...recovered.hardState, commit: Math.max(recovered.hardState.commit, snapshotIndex) });
  return storage;
}

/**
 * Makes a snapshot durable in the order recovery relies on: the snapshot file first (so a WAL
 * marker never points at a missing file), then the WAL marker, then the release of WAL segments.
 * Segments are released only below the previous snapshot, so that if the newest snapshot file is
 * ever found corrupt, recovery can still start from the one before it and replay the WAL (the
 * segment holding the previous snapshot's marker is kept, since it was written after that entry).
 */
export async function persistSnapshot(stores: { wal: Wal; snapshots: SnapshotStore }, snapshot: Snapshot): Promise<void> {
  const { index, term } = snapshot.metadata;
  await stores.snapshots.save(snapshot);
  await stores.wal.saveSnapshotMarker(index, term);
  const previous = (await stores.snapshots.list()).find((file) => file.index < index);
  if (previous) await stores.wal.releaseBefore(previous.index);
}
