// `concord snapshot restore`: seeds a new data dir from a snapshot file, the file that
// `etcdctl snapshot save` writes from Concord's Maintenance service (its format is described in
// maintenance-service.ts). The file is verified first: its SHA-256 trailer (unless
// --skip-hash-check), its framing, and the key-value state's own CRC-32C and invariants.
//
// As etcd's restore does, the new data dir gets a fresh cluster identity derived from the restore
// flags (--name, --initial-cluster, --initial-cluster-token, --initial-advertise-peer-urls, read as
// `concord server` reads them, so a server started with the same flags opens it): it is bootstrapped
// as a member of a new cluster (data-dir-bootstrap.ts) whose initial state is the saved key-value
// state, with its applied index rebased to 1, as etcd resets its consistent index, so that the new
// log's entries apply. Restore every member of the new cluster from the same file, each with its
// own --name. Keys, revisions, leases and alarms are kept.

import { KvStateMachine } from '../kv/state-machine.ts';
import { KvError } from '../kv/errors.ts';
import { ByteReader, DecodeError } from '../storage/binary-codec.ts';
import { isStorageError } from '../storage/errors.ts';
import { NodeFileSystem } from '../storage/file-system.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { SNAPSHOT_STORE_DEFAULTS } from '../storage/snapshot-store.ts';
import { initialClusterIds } from './member-ids.ts';
import { ConfigError } from './server-config.ts';
import type { ServerConfig } from './server-config.ts';
import { BOOTSTRAP_SNAPSHOT_INDEX, DataDirNotEmptyError, rebaseKvSnapshot, writeBootstrappedDataDir } from './data-dir-bootstrap.ts';
import {
  SNAPSHOT_FILE_ALIGN_BYTES,
  SNAPSHOT_FILE_CHECKSUM_BYTES,
  SNAPSHOT_FILE_FORMAT_VERSION,
  SNAPSHOT_FILE_HEADER_BYTES,
  SNAPSHOT_FILE_MAGIC,
  sha256,
} from '../api/etcd/maintenance-service.ts';

/** The largest snapshot file restore reads: the restored state must fit one snapshot file anyway. */
export const SNAPSHOT_FILE_MAX_BYTES = SNAPSHOT_STORE_DEFAULTS.maxSnapshotBytes;
/** The Raft position of the restored state in the new log. */
export const RESTORED_SNAPSHOT_INDEX = BOOTSTRAP_SNAPSHOT_INDEX;

export type SnapshotRestoreErrorCode =
  /** The file is not a complete, intact Concord snapshot file. */
  | 'CONCORD_E_RESTORE_FILE_INVALID'
  /** The file was written by a newer Concord. */
  | 'CONCORD_E_RESTORE_FILE_NEWER_FORMAT'
  | 'CONCORD_E_RESTORE_FILE_TOO_LARGE'
  /** --data-dir exists and holds files: restore never overwrites a data dir. */
  | 'CONCORD_E_RESTORE_DATA_DIR_NOT_EMPTY';

export class SnapshotRestoreError extends Error {
  override name = 'SnapshotRestoreError';
  readonly code: SnapshotRestoreErrorCode;
  constructor(code: SnapshotRestoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

// ---- Reading the snapshot file ----

/**
 * Checks a saved snapshot file (its SHA-256 trailer unless skipHashCheck, its framing) and returns
 * the key-value snapshot inside. `name` is the file's path, for messages.
 */
export function decodeSnapshotFile(file: Uint8Array, name: string, options: { skipHashCheck?: boolean } = {}): Uint8Array {
  const hasTrailer = file.byteLength % SNAPSHOT_FILE_ALIGN_BYTES === SNAPSHOT_FILE_CHECKSUM_BYTES;
  if (!hasTrailer && !options.skipHashCheck) {
    throw invalidFile(name, `its size (${file.byteLength} bytes) is not 32 bytes past a multiple of 512, so it has no SHA-256 trailer: ` +
      'it is not a complete `etcdctl snapshot save` file (pass --skip-hash-check to restore a file saved without one)');
  }
  const body = hasTrailer ? file.subarray(0, file.byteLength - SNAPSHOT_FILE_CHECKSUM_BYTES) : file;
  if (hasTrailer && !options.skipHashCheck) {
    const stored = Buffer.from(file.subarray(body.byteLength));
    const computed = sha256(body);
    if (!stored.equals(computed)) {
      throw invalidFile(name, `its SHA-256 is ${computed.toString('hex')} but its trailer says ${stored.toString('hex')}: the file is damaged or truncated`);
    }
  }
  return payloadOf(body, name);
}

function payloadOf(body: Uint8Array, name: string): Uint8Array {
  if (body.byteLength < SNAPSHOT_FILE_HEADER_BYTES || !SNAPSHOT_FILE_MAGIC.every((byte, i) => body[i] === byte)) {
    throw invalidFile(name, 'it does not start with "CSAV": it is not a snapshot saved from Concord ' +
      '(a snapshot saved from etcd is a bbolt database: restore it with `etcdctl snapshot restore`)');
  }
  try {
    const reader = new ByteReader(body.subarray(SNAPSHOT_FILE_MAGIC.length));
    const version = reader.u32('format version');
    if (version > SNAPSHOT_FILE_FORMAT_VERSION) {
      throw new SnapshotRestoreError('CONCORD_E_RESTORE_FILE_NEWER_FORMAT',
        `${name} has snapshot file format version ${version}, but this Concord reads up to ${SNAPSHOT_FILE_FORMAT_VERSION}: restore it with a newer Concord`);
    }
    if (version < 1) throw invalidFile(name, `format version ${version} does not exist`);
    const payloadBytes = reader.u53('payload length');
    const paddingBytes = reader.remainingBytes - payloadBytes;
    if (paddingBytes < 0 || paddingBytes >= SNAPSHOT_FILE_ALIGN_BYTES) {
      throw invalidFile(name, `its header promises ${payloadBytes} payload bytes but the file holds ${reader.remainingBytes}`);
    }
    const payload = reader.raw(payloadBytes, 'payload');
    if (reader.raw(paddingBytes, 'padding').some((byte) => byte !== 0)) throw invalidFile(name, 'its padding is not zero');
    return payload;
  } catch (error) {
    if (error instanceof DecodeError) throw invalidFile(name, error.message);
    throw error;
  }
}

function invalidFile(name: string, problem: string): SnapshotRestoreError {
  return new SnapshotRestoreError('CONCORD_E_RESTORE_FILE_INVALID', `cannot restore ${name}: ${problem}`);
}

// ---- Restore ----

export interface RestoreOptions {
  snapshotPath: string;
  /** name, dataDir, initialCluster and initialClusterToken, resolved as `concord server` resolves them. */
  config: Pick<ServerConfig, 'name' | 'dataDir' | 'initialCluster' | 'initialClusterToken'>;
  skipHashCheck?: boolean;
  fs?: FileSystem;
}

export interface RestoreSummary {
  dataDir: string;
  memberId: bigint;
  clusterId: bigint;
  /** The store's revision in the snapshot, which the restored member continues from. */
  revision: number;
  /** Live keys at that revision. */
  keyCount: number;
}

export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreSummary> {
  const fs = options.fs ?? new NodeFileSystem();
  const { config } = options;
  const ids = initialClusterIds(config.initialCluster, config.initialClusterToken);
  const memberId = ids.members.get(config.name);
  if (memberId === undefined) throw new ConfigError(`--initial-cluster has no member named '${config.name}' (--name)`);
  await refuseNonEmptyDir(fs, config.dataDir);
  const { kvSnapshot, machine } = loadState(await readSnapshotFile(fs, options.snapshotPath, options.skipHashCheck ?? false), options.snapshotPath);
  const members = [...config.initialCluster].map(([name, urls]) => ({ id: ids.members.get(name)!, name, peerUrls: urls.map((url) => url.origin) }));
  try {
    await writeBootstrappedDataDir(fs, config.dataDir, { clusterId: ids.clusterId, memberId }, members, kvSnapshot);
  } catch (error) {
    if (error instanceof DataDirNotEmptyError) throw notEmpty(config.dataDir);
    throw error;
  }
  const everything = machine.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), countOnly: true });
  return { dataDir: config.dataDir, memberId, clusterId: ids.clusterId, revision: machine.currentRevision, keyCount: everything.count };
}

async function readSnapshotFile(fs: FileSystem, path: string, skipHashCheck: boolean): Promise<Uint8Array> {
  const sizeBytes = await fs.statSizeBytes(path);
  if (sizeBytes > SNAPSHOT_FILE_MAX_BYTES) {
    throw new SnapshotRestoreError('CONCORD_E_RESTORE_FILE_TOO_LARGE',
      `${path} is ${sizeBytes} bytes, over the ${SNAPSHOT_FILE_MAX_BYTES} bytes a snapshot file may hold; it is not a Concord snapshot file`);
  }
  return decodeSnapshotFile(await fs.readFile(path), path, { skipHashCheck });
}

/**
 * The saved state with its applied index moved to the new log's snapshot index, checked by
 * restoring it as a member will (checksum, then every invariant of the store).
 */
function loadState(saved: Uint8Array, name: string): { kvSnapshot: Uint8Array; machine: KvStateMachine } {
  try {
    const kvSnapshot = rebaseKvSnapshot(saved);
    return { kvSnapshot, machine: KvStateMachine.restore(kvSnapshot) };
  } catch (error) {
    if (error instanceof KvError) throw invalidFile(name, `the key-value state inside does not decode (${error.message})`);
    throw error;
  }
}

async function refuseNonEmptyDir(fs: FileSystem, dataDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dataDir);
  } catch (error) {
    if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return;
    throw error;
  }
  if (names.length > 0) throw notEmpty(dataDir);
}

function notEmpty(dataDir: string): SnapshotRestoreError {
  return new SnapshotRestoreError('CONCORD_E_RESTORE_DATA_DIR_NOT_EMPTY',
    `--data-dir ${dataDir} exists and is not empty: restore creates a new data dir and never overwrites one; give a new --data-dir`);
}
