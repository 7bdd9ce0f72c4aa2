// The merged-interval permission check against an independent model of etcd's own rule (its
// interval tree's Intersects for one key, Contains for a range: the intervals that overlap the
// request, taken in order of their start, must leave no gap and reach both ends), on random
// permissions and requests over a small alphabet, so that touching, nested and open-ended
// intervals meet often.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UserPermissions, mergeIntervals } from '../../src/kv/auth/permission-ranges.ts';
import type { KeyInterval } from '../../src/kv/auth/permission-ranges.ts';
import type { Permission } from '../../src/kv/auth/auth-types.ts';
import { toByteString } from '../../src/kv/key-range.ts';

const byte = fc.constantFrom(0x00, 0x61, 0x62, 0xff);
const key = fc.array(byte, { minLength: 1, maxLength: 3 }).map((bytes) => Uint8Array.from(bytes));
const FROM_KEY = new Uint8Array([0]);

/** A valid grant (an empty key or an inverted range is refused before it is stored). */
const permission: fc.Arbitrary<Permission> = fc
  .record({ permType: fc.constantFrom('read' as const, 'write' as const, 'readwrite' as const), key, end: fc.oneof(fc.constant('single'), fc.constant('fromKey'), key) })
  .map(({ permType, key, end }) => {
    if (end === 'single') return { permType, key, rangeEnd: new Uint8Array(0) };
    if (end === 'fromKey') return { permType, key, rangeEnd: FROM_KEY };
    return toByteString(end) > toByteString(key) ? { permType, key, rangeEnd: end } : { permType, key, rangeEnd: new Uint8Array(0) };
  });

/** A request: one key, from a key on, or a range that is not inverted. */
const request = fc.record({ key, end: fc.oneof(fc.constant(undefined), fc.constant(FROM_KEY), key) }).filter(
  ({ key, end }) => end === undefined || end.length === 1 && end[0] === 0 || toByteString(end) > toByteString(key),
);

// --- the model ---------------------------------------------------------------------------------

type End = string | undefined; // undefined: +infinity

function less(a: End, b: End): boolean {
  return a !== undefined && (b === undefined || a < b);
}

function modelInterval(p: Permission): { start: string; end: End } {
  const start = toByteString(p.key);
  if (p.rangeEnd.length === 0) return { start, end: `${start}\u0000` };
  if (p.rangeEnd.length === 1 && p.rangeEnd[0] === 0) return { start, end: undefined };
  return { start, end: toByteString(p.rangeEnd) };
}

function modelAllows(granted: { start: string; end: End }[], key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
  const start = toByteString(key);
  if (rangeEnd === undefined) return granted.some((g) => g.start <= start && less(start, g.end));
  const end: End = rangeEnd.length === 1 && rangeEnd[0] === 0 ? undefined : toByteString(rangeEnd);
  const overlapping = granted.filter((g) => less(g.start, end) && less(start, g.end)).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  if (overlapping.length === 0) return false;
  let reach = overlapping[0]!.end;
  for (const g of overlapping.slice(1)) {
    if (less(reach, g.start)) return false;
    if (less(reach, g.end)) reach = g.end;
  }
  return overlapping[0]!.start <= start && !less(reach, end);
}

test('property: read and write checks agree with the model of etcd\'s interval rule', () => {
  fc.assert(
    fc.property(fc.array(permission, { maxLength: 6 }), fc.array(request, { minLength: 1, maxLength: 8 }), (permissions, requests) => {
      const checker = new UserPermissions(permissions);
      const readable = permissions.filter((p) => p.permType !== 'write').map(modelInterval);
      const writable = permissions.filter((p) => p.permType !== 'read').map(modelInterval);
      for (const { key, end } of requests) {
        assert.equal(checker.mayRead(key, end), modelAllows(readable, key, end), `read ${toByteString(key)} .. ${end && toByteString(end)}`);
        assert.equal(checker.mayWrite(key, end), modelAllows(writable, key, end), `write ${toByteString(key)} .. ${end && toByteString(end)}`);
      }
    }),
    { numRuns: 500 },
  );
});

test('property: merged intervals are sorted, disjoint, not touching, and cover exactly what was granted', () => {
  fc.assert(
    fc.property(fc.array(permission, { maxLength: 8 }), fc.array(key, { maxLength: 10 }), (permissions, probes) => {
      const intervals: KeyInterval[] = permissions.map(modelInterval);
      const merged = mergeIntervals(intervals);
      for (let i = 1; i < merged.length; i++) assert.ok(less(merged[i - 1]!.end, merged[i]!.start), 'disjoint and not touching, in order');
      for (const probe of probes) {
        const point = toByteString(probe);
        const inMerged = merged.some((m) => m.start <= point && less(point, m.end));
        const inGranted = intervals.some((g) => g.start <= point && less(point, g.end));
        assert.equal(inMerged, inGranted);
      }
    }),
    { numRuns: 300 },
  );
});

test('the model can tell: a gap between two grants denies the range that spans it', () => {
  const grants = [{ start: 'a', end: 'b' }, { start: 'c', end: 'd' }];
  assert.equal(modelAllows(grants, new TextEncoder().encode('a'), new TextEncoder().encode('d')), false);
  assert.equal(modelAllows([...grants, { start: 'b', end: 'c' }], new TextEncoder().encode('a'), new TextEncoder().encode('d')), true);
  const checker = new UserPermissions([
    { permType: 'read', key: new TextEncoder().encode('a'), rangeEnd: new TextEncoder().encode('b') },
    { permType: 'read', key: new TextEncoder().encode('c'), rangeEnd: new TextEncoder().encode('d') },
  ]);
  assert.equal(checker.mayRead(new TextEncoder().encode('a'), new TextEncoder().encode('d')), false);
});
