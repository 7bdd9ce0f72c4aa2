// What a user may read and write, as a union of key intervals, and etcd's rule for whether a request
// is covered (auth/range_perm_cache.go, with adt's "bytes affine" intervals):
//
// * a permission for a single key k is the interval [k, k + "\0"), the key and nothing else;
// * a permission with rangeEnd "\0" is [key, +infinity); any other rangeEnd gives [key, rangeEnd);
// * a request for one key (empty rangeEnd) is allowed if some permitted interval contains the key;
// * a request for a range is allowed only if the permitted intervals cover all of it, without gaps
//   (a range request with rangeEnd "\0" reaches to +infinity).
//
// The intervals of all a user's roles are merged into disjoint, sorted ones (touching intervals
// join, as adt's Contains treats them as contiguous), so each check is one binary search.
// Keys are byte strings (key-range.ts), which compare as the bytes do.

import type { Permission, PermissionType } from './auth-types.ts';
import { toByteString } from '../key-range.ts';

/** [start, end); `end` undefined means +infinity. */
export interface KeyInterval {
  start: string;
  end: string | undefined;
}

/** The interval a permission grants. */
export function permissionInterval(permission: Permission): KeyInterval {
  const start = toByteString(permission.key);
  const { rangeEnd } = permission;
  if (rangeEnd.length === 0) return { start, end: `${start}\u0000` };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: undefined };
  return { start, end: toByteString(rangeEnd) };
}

export function grantsRead(type: PermissionType): boolean {
  return type === 'read' || type === 'readwrite';
}

export function grantsWrite(type: PermissionType): boolean {
  return type === 'write' || type === 'readwrite';
}

/** a < b, with undefined as +infinity. */
function endBefore(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined) return false;
  return b === undefined || a < b;
}

/** Sorted, disjoint, non-touching intervals covering exactly the union of the given ones. */
export function mergeIntervals(intervals: readonly KeyInterval[]): KeyInterval[] {
  // An interval that ends before it starts covers nothing (etcd refuses to grant one; older data may hold one).
  const sorted = intervals.filter((interval) => interval.end === undefined || interval.start < interval.end).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: KeyInterval[] = [];
  for (const interval of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && !endBefore(last.end, interval.start)) {
      if (endBefore(last.end, interval.end)) last.end = interval.end;
    } else {
      merged.push({ ...interval });
    }
  }
  return merged;
}

/** The merged intervals one user may read and may write. */
export class UserPermissions {
  private readonly read: KeyInterval[];
  private readonly write: KeyInterval[];

  constructor(permissions: readonly Permission[]) {
    this.read = mergeIntervals(permissions.filter((p) => grantsRead(p.permType)).map(permissionInterval));
    this.write = mergeIntervals(permissions.filter((p) => grantsWrite(p.permType)).map(permissionInterval));
  }

  /** etcd's isRangeOpPermitted for READ (rangeEnd as in a request: empty = one key, "\0" = to the end). */
  mayRead(key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
    return covers(this.read, key, rangeEnd);
  }

  mayWrite(key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
    return covers(this.write, key, rangeEnd);
  }
}

function covers(merged: readonly KeyInterval[], key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
  const start = toByteString(key);
  const containing = merged[lastStartingAtOrBefore(merged, start)];
  if (containing === undefined || !endBefore(start, containing.end)) return false;
  if (rangeEnd === undefined || rangeEnd.length === 0) return true;
  const end = rangeEnd.length === 1 && rangeEnd[0] === 0 ? undefined : toByteString(rangeEnd);
  // An inverted request range selects no keys: its start being permitted is enough.
  if (end !== undefined && end <= start) return true;
  return !endBefore(containing.end, end);
}

/** Index of the last interval whose start is <= key, or -1. */
function lastStartingAtOrBefore(merged: readonly KeyInterval[], key: string): number {
  let low = 0;
  let high = merged.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (merged[middle]!.start <= key) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}
