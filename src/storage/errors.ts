// The error catalog of the storage shell. Operating errors (a full disk, a corrupt file, a data dir
// that belongs to another cluster) are StorageErrors with stable codes and messages that tell the
// operator what to do; broken invariants inside this folder are StorageBugErrors.

export type StorageErrorCode =
  /** The disk (or the user's quota) is full. The WAL turns read-only; free space and restart. */
  | 'CONCORD_E_NO_SPACE'
  /** The OS reported an I/O error (EIO and anything else unexpected). */
  | 'CONCORD_E_IO'
  | 'CONCORD_E_FILE_NOT_FOUND'
  | 'CONCORD_E_FILE_EXISTS'
  /** EACCES, EPERM or EROFS: the process may not write where it was told to. */
  | 'CONCORD_E_ACCESS_DENIED'
  /** A WAL record failed its checksum or framing somewhere other than the torn tail. */
  | 'CONCORD_E_WAL_CORRUPT'
  | 'CONCORD_E_WAL_NOT_FOUND'
  | 'CONCORD_E_WAL_EXISTS'
  | 'CONCORD_E_WAL_CLOSED'
  /** One log entry is larger than maxRecordBytes allows. */
  | 'CONCORD_E_WAL_RECORD_TOO_LARGE'
  /** The WAL does not hold the entries that follow the snapshot recovery had to use. */
  | 'CONCORD_E_WAL_MISSING_ENTRIES'
  | 'CONCORD_E_SNAPSHOT_CORRUPT'
  | 'CONCORD_E_SNAPSHOT_TOO_LARGE'
  | 'CONCORD_E_DATA_DIR_FOREIGN_CLUSTER'
  | 'CONCORD_E_DATA_DIR_FOREIGN_MEMBER'
  | 'CONCORD_E_DATA_DIR_NEWER_FORMAT'
  | 'CONCORD_E_DATA_DIR_LOCKED'
  | 'CONCORD_E_STORAGE_CONFIG_INVALID';

export interface StorageErrorDetails {
  /** The file the error is about, when there is one. */
  path?: string;
  /** For corruption: the byte offset of the first bad record in `path`. */
  offsetBytes?: number;
  /** The OS error code (ENOSPC, EIO, ...) when the error came from the OS. */
  osCode?: string;
  cause?: unknown;
}

export class StorageError extends Error {
  override name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly path: string | undefined;
  readonly offsetBytes: number | undefined;
  readonly osCode: string | undefined;

  constructor(code: StorageErrorCode, message: string, details: StorageErrorDetails = {}) {
    super(`${code}: ${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.offsetBytes = details.offsetBytes;
    this.osCode = details.osCode;
  }
}

/** An assertion inside the storage shell failed: a programming error, never an operating condition. */
export class StorageBugError extends Error {
  override name = 'StorageBugError';
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

export function assertStorage(condition: boolean, message: string): asserts condition {
  if (!condition) throw new StorageBugError(message);
}

/** Checks a limit from the options up front, with a message that names it and its unit. */
export function checkPositiveLimit(value: number, name: string, maxValue = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value <= 0 || value > maxValue) {
    throw new StorageError('CONCORD_E_STORAGE_CONFIG_INVALID', `${name} must be an integer in [1, ${maxValue}], got ${value}`);
  }
}
