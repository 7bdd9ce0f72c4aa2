// Shared fixtures for the storage tests: identities, entries with recognisable payloads, and a
// matcher for coded errors.

import type { Entry, HardState } from '../../src/consensus/types.ts';
import { StorageError } from '../../src/storage/errors.ts';
import type { StorageErrorCode } from '../../src/storage/errors.ts';
import type { WalIdentity, WalOpenOptions } from '../../src/storage/wal.ts';
import { PowerLossFileSystem } from './power-loss-file-system.ts';

/** Ids above 2^53, as real etcd ids are. */
export const IDENTITY: WalIdentity = { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn };
export const WAL_DIR = '/data/member/wal';

/** A power-loss file system in which /data/member already exists durably, as a disk's folders do. */
export function newFileSystem(): PowerLossFileSystem {
  return new PowerLossFileSystem(['/data/member']);
}

/**
 * Preallocation in the storage tests: small, so that segments run past their zeros and preallocate
 * again many times, and a crash lands in every phase of it (the default 1 MiB is tested on its own).
 */
export const TEST_PREALLOCATE_BYTES = 256;

/** WAL options for tests: warnings collected instead of printed, and a small preallocation. */
export function quietOptions(extra: WalOpenOptions = {}, warnings: string[] = []): WalOpenOptions {
  return { onWarning: (message) => warnings.push(message), preallocateBytes: TEST_PREALLOCATE_BYTES, ...extra };
}

/** An entry whose payload names its index and term, so a misplaced entry is visible in a diff. */
export function entry(index: number, term: number, extraBytes = 0): Entry {
  const text = `e${index}t${term}`;
  const data = new Uint8Array(text.length + extraBytes);
  data.set(new TextEncoder().encode(text));
  for (let i = text.length; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, type: index % 7 === 0 ? 'confChange' : 'normal', data };
}

export function entries(from: number, to: number, term: number, extraBytes = 0): Entry[] {
  const result: Entry[] = [];
  for (let index = from; index <= to; index++) result.push(entry(index, term, extraBytes));
  return result;
}

export function hardState(term: number, commit: number, vote = 1n): HardState {
  return { term, vote, commit };
}

export function storageError(code: StorageErrorCode, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    if (!(error instanceof StorageError) || error.code !== code) return false;
    if (pattern && !pattern.test(error.message)) throw new Error(`message ${JSON.stringify(error.message)} does not match ${pattern}`);
    return true;
  };
}

/** Index/term pairs, which is what most assertions about recovered entries compare. */
export function indexTerms(list: readonly Entry[]): [number, number][] {
  return list.map((e) => [e.index, e.term]);
}
