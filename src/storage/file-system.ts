// The file operations the WAL and the snapshot store need, and nothing more. Keeping the surface
// this small lets a test double (test/storage/power-loss-file-system.ts) model exactly what a power
// failure does to each of them: written bytes are volatile until the file is fsynced, and a created,
// renamed or unlinked name is volatile until its directory is fsynced.
//
// Every implementation reports failures as StorageErrors: ENOSPC and EDQUOT become
// CONCORD_E_NO_SPACE, EIO (and anything unexpected) CONCORD_E_IO, so callers never parse OS codes.

import { fdatasyncSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle as NodeFileHandle } from 'node:fs/promises';
import { StorageError } from './errors.ts';
import type { StorageErrorCode } from './errors.ts';

export interface FileHandle {
  readonly path: string;
  /** Writes all of `data` at byte `positionBytes` (extending the file if needed). */
  write(data: Uint8Array, positionBytes: number): Promise<void>;
  /** Reads up to `lengthBytes` from `positionBytes`; shorter only at the end of the file. */
  read(positionBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /** Makes the file's content and size durable (fdatasync). Does not make its name durable. */
  sync(): Promise<void>;
  /**
   * sync(), waiting on the calling thread instead of a helper thread: nothing else runs until the
   * disk answers (see fsync-placement.ts for when that is worth it). Throws what sync() rejects with.
   */
  syncOnThisThread(): void;
  truncate(sizeBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export interface FileSystem {
  /** Opens an existing file for reading and positional writing. */
  open(path: string): Promise<FileHandle>;
  /** Creates a new, empty file for reading and writing; CONCORD_E_FILE_EXISTS if the name is taken. */
  createExclusive(path: string): Promise<FileHandle>;
  readFile(path: string): Promise<Uint8Array>;
  /** Replaces `to` atomically. Durable only once the directory is fsynced. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a name. Durable only once the directory is fsynced. */
  unlink(path: string): Promise<void>;
  /** The names (not paths) in a directory, in no particular order. */
  readdir(path: string): Promise<string[]>;
  /** Creates a directory and any missing parents; no error if it exists. */
  mkdirp(path: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, unlinks) durable. */
  syncDir(path: string): Promise<void>;
  statSizeBytes(path: string): Promise<number>;
}

/** Maps an error thrown by node:fs to a StorageError with a code a caller can act on. */
export function storageErrorFromOs(error: unknown, operation: string, path: string): StorageError {
  if (error instanceof StorageError) return error;
  const osCode = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  const [code, advice] = classifyOsCode(osCode);
  const reason = error instanceof Error ? error.message : String(error);
  return new StorageError(code, `${operation} ${path} failed (${osCode ?? 'no OS code'}: ${reason}); ${advice}`, {
    path,
    ...(osCode === undefined ? {} : { osCode }),
    cause: error,
  });
}

function classifyOsCode(osCode: string | undefined): [StorageErrorCode, string] {
  switch (osCode) {
    case 'ENOSPC':
    case 'EDQUOT':
      return ['CONCORD_E_NO_SPACE', 'the disk is full: free space on it, then restart the server'];
    case 'ENOENT':
      return ['CONCORD_E_FILE_NOT_FOUND', 'check that the path exists'];
    case 'EEXIST':
      return ['CONCORD_E_FILE_EXISTS', 'the name is already taken'];
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return ['CONCORD_E_ACCESS_DENIED', 'give the server write access to its data dir'];
    default:
      return ['CONCORD_E_IO', 'the disk or file system reported an error: check the kernel log (dmesg) and the disk'];
  }
}

async function osCall<T>(operation: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw storageErrorFromOs(error, operation, path);
  }
}

/**
 * Writes up to this size are made with a synchronous write(2) on the calling thread; larger ones
 * go to libuv's thread pool. A small write only copies into the page cache (microseconds), while a
 * trip through the thread pool costs a completion callback that waits for the event loop's turn:
 * under load that put about 1 ms between a WAL batch's write and its fsync. The fsync itself waits
 * for the disk, in the thread pool unless the WAL asks otherwise (syncOnThisThread).
 */
export const SYNC_WRITE_MAX_BYTES = 256 * 1024;

class NodeFileHandleAdapter implements FileHandle {
  readonly path: string;
  private readonly handle: NodeFileHandle;

  constructor(path: string, handle: NodeFileHandle) {
    this.path = path;
    this.handle = handle;
  }

  write(data: Uint8Array, positionBytes: number): Promise<void> {
    if (data.byteLength <= SYNC_WRITE_MAX_BYTES) return this.writeOnThisThread(data, positionBytes);
    return osCall('write', this.path, async () => {
      let written = 0;
      // write() may write less than asked (a signal, a nearly full disk); keep going until done.
      while (written < data.byteLength) {
        const result = await this.handle.write(data, written, data.byteLength - written, positionBytes + written);
        if (result.bytesWritten === 0) throw new Error('write made no progress');
        written += result.bytesWritten;
      }
    });
  }

  private writeOnThisThread(data: Uint8Array, positionBytes: number): Promise<void> {
    try {
      let written = 0;
      while (written < data.byteLength) {
        const bytesWritten = writeSync(this.handle.fd, data, written, data.byteLength - written, positionBytes + written);
        if (bytesWritten === 0) throw new Error('write made no progress');
        written += bytesWritten;
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(storageErrorFromOs(error, 'write', this.path));
    }
  }

  read(positionBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return osCall('read', this.path, async () => {
      const buffer = new Uint8Array(lengthBytes);
      let filled = 0;
      while (filled < lengthBytes) {
        const { bytesRead } = await this.handle.read(buffer, filled, lengthBytes - filled, positionBytes + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === lengthBytes ? buffer : buffer.subarray(0, filled);
    });
  }

  sync(): Promise<void> {
    // fdatasync flushes the data and the metadata needed to read it back, which includes the file
    // size; the timestamps it skips do not matter to us.
    return osCall('fsync', this.path, () => this.handle.datasync());
  }

  syncOnThisThread(): void {
    try {
      fdatasyncSync(this.handle.fd);
    } catch (error) {
      throw storageErrorFromOs(error, 'fsync', this.path);
    }
  }

  truncate(sizeBytes: number): Promise<void> {
    return osCall('truncate', this.path, () => this.handle.truncate(sizeBytes));
  }

  sizeBytes(): Promise<number> {
    return osCall('stat', this.path, async () => (await this.handle.stat()).size);
  }

  close(): Promise<void> {
    return osCall('close', this.path, () => this.handle.close());
  }
}

/** The real file system, through node:fs/promises. */
export class NodeFileSystem implements FileSystem {
  open(path: string): Promise<FileHandle> {
    return osCall('open', path, async () => new NodeFileHandleAdapter(path, await fsp.open(path, 'r+')));
  }

  createExclusive(path: string): Promise<FileHandle> {
    return osCall('create', path, async () => new NodeFileHandleAdapter(path, await fsp.open(path, 'wx+', 0o600)));
  }

  readFile(path: string): Promise<Uint8Array> {
    return osCall('read', path, async () => {
      const buffer = await fsp.readFile(path);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return osCall('rename', `${from} -> ${to}`, () => fsp.rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return osCall('unlink', path, () => fsp.unlink(path));
  }

  readdir(path: string): Promise<string[]> {
    return osCall('list', path, () => fsp.readdir(path));
  }

  mkdirp(path: string): Promise<void> {
    return osCall('mkdir', path, async () => {
      await fsp.mkdir(path, { recursive: true, mode: 0o700 });
    });
  }

  syncDir(path: string): Promise<void> {
    // On Linux a directory opened read-only can be fsynced, which persists its entries.
    return osCall('fsync directory', path, async () => {
      const handle = await fsp.open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  statSizeBytes(path: string): Promise<number> {
    return osCall('stat', path, async () => (await fsp.stat(path)).size);
  }
}
