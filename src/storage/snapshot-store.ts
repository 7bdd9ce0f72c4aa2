// Snapshot files under <dataDir>/member/snap/, named <term>-<index>.snap (16 hex digits each, as in
// etcd). A snapshot is written to <name>.tmp, fsynced, renamed into place and the directory fsynced:
// a file with its final name is complete, and a crash leaves at most a .tmp file, which is ignored
// and removed on start-up.
//
// File format, little-endian:
//
//   offset  size  field
//   0       4     magic "CSNP"
//   4       4     format version (1)
//   8       8     payload length in bytes
//   16      4     CRC32C of bytes [4, 16) and the payload
//   20      n     payload: u64 index, u64 term, u32 voter count, voters (u64 each),
//                 u32 learner count, learners (u64 each), then the state machine data
//
// loadNewest() returns the newest snapshot that reads back intact. A newer one that does not (bit
// rot, a disk that lied about a flush) is skipped with a warning in the result, as etcd does, so
// the member can still start from an older snapshot and the WAL.

import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Snapshot } from '../consensus/types.ts';
import { ByteReader, ByteWriter, DecodeError } from './binary-codec.ts';
import { StorageError, checkPositiveLimit, isStorageError } from './errors.ts';
import type { FileSystem } from './file-system.ts';
import type { SnapshotMarker } from './wal-record.ts';

export const SNAPSHOT_FORMAT_VERSION = 1;
const MAGIC = new Uint8Array([0x43, 0x53, 0x4e, 0x50]); // "CSNP"
export const SNAPSHOT_HEADER_BYTES = 20;
const GiB = 1024 * 1024 * 1024;

export interface SnapshotStoreOptions {
  /** How many snapshot files to keep; older ones are deleted after each save. Default 5. */
  retainCount?: number;
  /** The largest snapshot file accepted, header included. Default 2 GiB. */
  maxSnapshotBytes?: number;
}

export const SNAPSHOT_STORE_DEFAULTS = { retainCount: 5, maxSnapshotBytes: 2 * GiB } as const;

export interface SnapshotFile extends SnapshotMarker {
  path: string;
}

export interface SkippedSnapshot {
  path: string;
  reason: string;
}

export interface SnapshotLoadResult {
  snapshot: Snapshot | undefined;
  path: string | undefined;
  /** Newer snapshots that were passed over, with why (corrupt, or not accepted by the caller). */
  skipped: SkippedSnapshot[];
  /** One message per corrupt snapshot skipped, for the operator's log. */
  warnings: string[];
}

const SNAPSHOT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TEMP_SUFFIX = '.tmp';

export function snapshotFileName(term: number, index: number): string {
  return `${term.toString(16).padStart(16, '0')}-${index.toString(16).padStart(16, '0')}.snap`;
}

export function parseSnapshotFileName(name: string): SnapshotMarker | undefined {
  const match = SNAPSHOT_NAME.exec(name);
  if (!match) return undefined;
  const term = Number.parseInt(match[1]!, 16);
  const index = Number.parseInt(match[2]!, 16);
  return Number.isSafeInteger(term) && Number.isSafeInteger(index) ? { index, term } : undefined;
}

/**
 * The file's bytes before the state machine data: the header (its checksum already covering the
 * data) and the metadata. The data follows as it is: the state can be hundreds of MB, and a copy of
 * it into one file buffer stopped the member's thread for a second and more.
 */
export function encodeSnapshotHead(snapshot: Snapshot): Uint8Array {
  const { index, term, confState } = snapshot.metadata;
  const metadataBytes = 8 + 8 + 4 + 8 * confState.voters.length + 4 + 8 * confState.learners.length;
  const bodyBytes = metadataBytes + snapshot.data.byteLength;
  const writer = new ByteWriter(SNAPSHOT_HEADER_BYTES + metadataBytes).raw(MAGIC).u32(SNAPSHOT_FORMAT_VERSION).u53(bodyBytes).u32(0)
    .u53(index)
    .u53(term)
    .u32(confState.voters.length);
  for (const voter of confState.voters) writer.u64(voter);
  writer.u32(confState.learners.length);
  for (const learner of confState.learners) writer.u64(learner);
  const head = writer.finish();
  if (head.byteLength !== SNAPSHOT_HEADER_BYTES + metadataBytes) throw new Error(`snapshot encoding: ${head.byteLength} bytes, expected ${SNAPSHOT_HEADER_BYTES + metadataBytes}`);
  const crc = crc32c(snapshot.data, crc32c(head.subarray(SNAPSHOT_HEADER_BYTES), crc32c(head.subarray(4, 16))));
  new DataView(head.buffer, head.byteOffset).setUint32(16, crc, true);
  return head;
}

/** The whole file in one buffer (for tests and tools; save() writes head and data without joining them). */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const head = encodeSnapshotHead(snapshot);
  const file = new Uint8Array(head.byteLength + snapshot.data.byteLength);
  file.set(head);
  file.set(snapshot.data, head.byteLength);
  return file;
}

/** Thrown for a snapshot file that does not read back intact; the message says why. */
function corruptSnapshot(path: string, problem: string): StorageError {
  return new StorageError('CONCORD_E_SNAPSHOT_CORRUPT', `snapshot ${path} is corrupt: ${problem}`, { path });
}

function decodeSnapshotBody(path: string, body: Uint8Array): Snapshot {
  try {
    const reader = new ByteReader(body);
    const index = reader.u53('index');
    const term = reader.u53('term');
    const voters = readIds(reader, 'voter');
    const learners = readIds(reader, 'learner');
    const data = reader.raw(reader.remainingBytes, 'data');
    return { metadata: { index, term, confState: { voters, learners } }, data };
  } catch (error) {
    if (error instanceof DecodeError) throw corruptSnapshot(path, `it passes its checksum but does not decode (${error.message})`);
    throw error;
  }
}

function readIds(reader: ByteReader, what: string): bigint[] {
  const count = reader.u32(`${what} count`);
  if (count * 8 > reader.remainingBytes) throw new DecodeError(`${what} count ${count} exceeds the file`);
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) ids.push(reader.u64(what));
  return ids;
}

export class SnapshotStore {
  readonly dir: string;
  private readonly fs: FileSystem;
  private readonly retainCount: number;
  private readonly maxSnapshotBytes: number;

  constructor(fs: FileSystem, dir: string, options: SnapshotStoreOptions = {}) {
    this.fs = fs;
    this.dir = dir;
    this.retainCount = options.retainCount ?? SNAPSHOT_STORE_DEFAULTS.retainCount;
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? SNAPSHOT_STORE_DEFAULTS.maxSnapshotBytes;
    checkPositiveLimit(this.retainCount, 'snapshot retainCount');
    checkPositiveLimit(this.maxSnapshotBytes, 'maxSnapshotBytes');
  }

  /** Writes the snapshot durably, then deletes all but the newest retainCount snapshots. */
  async save(snapshot: Snapshot): Promise<string> {
    const { index, term } = snapshot.metadata;
    const head = encodeSnapshotHead(snapshot);
    const fileBytes = head.byteLength + snapshot.data.byteLength;
    if (fileBytes > this.maxSnapshotBytes) {
      throw new StorageError(
        'CONCORD_E_SNAPSHOT_TOO_LARGE',
        `the snapshot at index ${index} is ${fileBytes} bytes, over maxSnapshotBytes ${this.maxSnapshotBytes}; raise the limit or compact the keyspace`,
      );
    }
    const path = join(this.dir, snapshotFileName(term, index));
    const tempPath = `${path}${TEMP_SUFFIX}`;
    await this.unlinkIfPresent(tempPath);
    const handle = await this.fs.createExclusive(tempPath);
    try {
      await handle.write(head, 0);
      await handle.write(snapshot.data, head.byteLength);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.fs.rename(tempPath, path);
    await this.fs.syncDir(this.dir);
    await this.prune();
    return path;
  }

  /** Snapshot files, newest (highest index, then term) first. Temp files are not listed. */
  async list(): Promise<SnapshotFile[]> {
    let names: string[];
    try {
      names = await this.fs.readdir(this.dir);
    } catch (error) {
      if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return [];
      throw error;
    }
    const files: SnapshotFile[] = [];
    for (const name of names) {
      const parsed = parseSnapshotFileName(name);
      if (parsed) files.push({ ...parsed, path: join(this.dir, name) });
    }
    return files.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Reads and verifies one snapshot file. CONCORD_E_SNAPSHOT_CORRUPT if it does not read back intact. */
  async load(file: SnapshotFile): Promise<Snapshot> {
    const handle = await this.fs.open(file.path);
    let body: Uint8Array;
    let header: Uint8Array;
    try {
      const fileBytes = await handle.sizeBytes();
      header = await handle.read(0, SNAPSHOT_HEADER_BYTES);
      const payloadBytes = this.checkHeader(file.path, header, fileBytes);
      body = await handle.read(SNAPSHOT_HEADER_BYTES, payloadBytes);
    } finally {
      await handle.close();
    }
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const expected = view.getUint32(16, true);
    const actual = crc32c(body, crc32c(header.subarray(4, 16)));
    if (expected !== actual) throw corruptSnapshot(file.path, `checksum mismatch (stored ${expected}, computed ${actual})`);
    const snapshot = decodeSnapshotBody(file.path, body);
    if (snapshot.metadata.index !== file.index || snapshot.metadata.term !== file.term) {
      throw corruptSnapshot(file.path, `it holds index ${snapshot.metadata.index} term ${snapshot.metadata.term}, which does not match its name`);
    }
    return snapshot;
  }

  /**
   * The newest snapshot that reads back intact and that `accept` agrees to (recovery accepts only
   * snapshots the WAL has a marker for). A newer-format snapshot stops with an error: skipping it
   * would silently go back in time.
   */
  async loadNewest(options: { accept?: (marker: SnapshotMarker) => boolean } = {}): Promise<SnapshotLoadResult> {
    const skipped: SkippedSnapshot[] = [];
    const warnings: string[] = [];
    for (const file of await this.list()) {
      if (options.accept && !options.accept({ index: file.index, term: file.term })) {
        skipped.push({ path: file.path, reason: 'the WAL has no marker for it (a crash came between saving it and recording it)' });
        continue;
      }
      try {
        const snapshot = await this.load(file);
        return { snapshot, path: file.path, skipped, warnings };
      } catch (error) {
        if (!isStorageError(error, 'CONCORD_E_SNAPSHOT_CORRUPT')) throw error;
        skipped.push({ path: file.path, reason: error.message });
        warnings.push(
          `${error.message}. Skipped it and fell back to an older snapshot. Keep a copy of it for diagnosis, then delete it from ${this.dir}.`,
        );
      }
    }
    return { snapshot: undefined, path: undefined, skipped, warnings };
  }

  /** Removes .tmp files that a crash left behind in the middle of a save. Returns how many. */
  async removeTempFiles(): Promise<number> {
    let names: string[];
    try {
      names = await this.fs.readdir(this.dir);
    } catch (error) {
      if (isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) return 0;
      throw error;
    }
    const temps = names.filter((name) => name.endsWith(`.snap${TEMP_SUFFIX}`));
    for (const name of temps) await this.fs.unlink(join(this.dir, name));
    return temps.length;
  }

  /** Deletes all but the newest retainCount snapshots. */
  async prune(): Promise<number> {
    const stale = (await this.list()).slice(this.retainCount);
    // Oldest first, so a crash in the middle leaves the newest ones.
    for (const file of stale.reverse()) await this.fs.unlink(file.path);
    if (stale.length > 0) await this.fs.syncDir(this.dir);
    return stale.length;
  }

  private checkHeader(path: string, header: Uint8Array, fileBytes: number): number {
    if (header.byteLength < SNAPSHOT_HEADER_BYTES) throw corruptSnapshot(path, `it has only ${header.byteLength} bytes, less than a header`);
    if (!MAGIC.every((byte, i) => header[i] === byte)) throw corruptSnapshot(path, 'it does not start with the Concord snapshot magic "CSNP"');
    const reader = new ByteReader(header.subarray(4));
    const version = reader.u32('format version');
    if (version > SNAPSHOT_FORMAT_VERSION) {
      throw new StorageError(
        'CONCORD_E_DATA_DIR_NEWER_FORMAT',
        `${path} has snapshot format version ${version}, but this build reads up to ${SNAPSHOT_FORMAT_VERSION}: it was written by a newer Concord; upgrade or point --data-dir elsewhere`,
        { path },
      );
    }
    if (version === 0) throw corruptSnapshot(path, 'format version 0 does not exist');
    let payloadBytes: number;
    try {
      payloadBytes = reader.u53('payload length');
    } catch {
      throw corruptSnapshot(path, 'its payload length is not below 2^53');
    }
    if (SNAPSHOT_HEADER_BYTES + payloadBytes !== fileBytes) {
      throw corruptSnapshot(path, `its header promises ${payloadBytes} payload bytes but the file holds ${fileBytes - SNAPSHOT_HEADER_BYTES}`);
    }
    if (fileBytes > this.maxSnapshotBytes) {
      throw new StorageError(
        'CONCORD_E_SNAPSHOT_TOO_LARGE',
        `snapshot ${path} is ${fileBytes} bytes, over maxSnapshotBytes ${this.maxSnapshotBytes}; raise the limit to load it`,
        { path },
      );
    }
    return payloadBytes;
  }

  private async unlinkIfPresent(path: string): Promise<void> {
    try {
      await this.fs.unlink(path);
    } catch (error) {
      if (!isStorageError(error, 'CONCORD_E_FILE_NOT_FOUND')) throw error;
    }
  }
}
