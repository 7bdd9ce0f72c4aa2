// Auto compaction follows etcd's v3compactor (periodic.go, revision.go) and the flag parsing of
// embed's parseCompactionRetention: a plain number is hours (periodic) or revisions (revision).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeriodicCompactor, RevisionCompactor, createAutoCompactor, parseAutoCompaction, parseGoDuration } from '../../src/kv/auto-compaction.ts';
import { assertKvError } from './helpers.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

test('retention parses as etcd: integers are hours or revisions, otherwise a Go duration; 0 disables', () => {
  assert.deepEqual(parseAutoCompaction('periodic', '1'), { mode: 'periodic', retentionMs: HOUR });
  assert.deepEqual(parseAutoCompaction('periodic', '72'), { mode: 'periodic', retentionMs: 72 * HOUR });
  assert.deepEqual(parseAutoCompaction('periodic', '30m'), { mode: 'periodic', retentionMs: 30 * MINUTE });
  assert.deepEqual(parseAutoCompaction('periodic', '1h30m'), { mode: 'periodic', retentionMs: 90 * MINUTE });
  assert.deepEqual(parseAutoCompaction('revision', '1000'), { mode: 'revision', retentionRevisions: 1000 });
  assert.equal(parseAutoCompaction('periodic', '0'), undefined);
  assert.equal(parseAutoCompaction('revision', '0'), undefined);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('300ms'), 300);
  assert.equal(parseGoDuration('2h45m30.5s'), 2 * HOUR + 45 * MINUTE + 30_500);
  assert.equal(parseGoDuration('1500us'), 1.5);
  assertKvError(() => parseAutoCompaction('weekly', '1'), 'CONCORD_E_AUTO_COMPACTION_CONFIG');
  assertKvError(() => parseAutoCompaction('revision', '10m'), 'CONCORD_E_AUTO_COMPACTION_CONFIG');
  assertKvError(() => parseAutoCompaction('periodic', '1d'), 'CONCORD_E_AUTO_COMPACTION_CONFIG');
  assertKvError(() => parseAutoCompaction('periodic', '-1h'), 'CONCORD_E_AUTO_COMPACTION_CONFIG');
  assertKvError(() => parseAutoCompaction('periodic', 'h'), 'CONCORD_E_AUTO_COMPACTION_CONFIG');
});

/** Drives a compactor tick by tick; the revision at tick k is 1000 + k. Returns [tick, revision] of each compaction. */
function drive(compactor: PeriodicCompactor, ticks: number, succeeds: (tick: number) => boolean = () => true): [number, number][] {
  const compactions: [number, number][] = [];
  for (let k = 1; k <= ticks; k++) {
    const now = compactor.nextTickMs;
    const revision = compactor.tick(now, 1000 + k);
    if (revision === undefined) continue;
    compactions.push([k, revision]);
    compactor.compactionFinished(now, succeeds(k));
  }
  return compactions;
}

test('periodic 1h: samples every 6 min, first compacts after an hour to the revision of an hour ago, then hourly', () => {
  const compactor = new PeriodicCompactor(HOUR, 0, 1000);
  assert.deepEqual([compactor.retryIntervalMs, compactor.compactIntervalMs, compactor.retentions], [6 * MINUTE, HOUR, 11]);
  // etcd keeps 11 samples: after the first compaction the oldest is 66 minutes old.
  assert.deepEqual(drive(compactor, 30), [[10, 1000], [20, 1009], [30, 1019]]);
});

test('periodic 24h: waits a day for the first compaction, then compacts every hour', () => {
  const compactor = new PeriodicCompactor(24 * HOUR, 0, 1000);
  assert.deepEqual([compactor.retryIntervalMs, compactor.retentions], [6 * MINUTE, 241]);
  assert.deepEqual(drive(compactor, 260), [[240, 1000], [250, 1009], [260, 1019]]);
});

test('periodic 30m: samples every 3 minutes and compacts every 30 minutes', () => {
  const compactor = createAutoCompactor({ mode: 'periodic', retentionMs: 30 * MINUTE }, 0, 1000) as PeriodicCompactor;
  assert.equal(compactor.retryIntervalMs, 3 * MINUTE);
  assert.deepEqual(drive(compactor, 20).map(([tick]) => tick * 3), [30, 60]);
});

test('a failed periodic compaction is retried at the next sample', () => {
  const compactor = new PeriodicCompactor(HOUR, 0, 1000);
  // The window is not full yet, so the retry still targets the first sample, as etcd's does.
  assert.deepEqual(drive(compactor, 12, (tick) => tick !== 10), [[10, 1000], [11, 1000]]);
  const later = new PeriodicCompactor(HOUR, 0, 1000);
  assert.deepEqual(drive(later, 21, (tick) => tick !== 20), [[10, 1000], [20, 1009], [21, 1010]]);
});

test('a paused periodic compactor keeps sampling but does not compact', () => {
  const compactor = new PeriodicCompactor(HOUR, 0, 1000);
  compactor.pause();
  assert.deepEqual(drive(compactor, 15), []);
  compactor.resume();
  assert.deepEqual(drive(compactor, 1), [[1, 1005]], 'compacts at once to the sample of an hour ago');
});

test('ticks before the next tick time do nothing', () => {
  const compactor = new PeriodicCompactor(HOUR, 0, 1000);
  assert.equal(compactor.tick(MINUTE, 5000), undefined);
  assert.equal(compactor.nextTickMs, 6 * MINUTE);
  assert.equal(compactor.tick(6 * MINUTE, 5000), undefined, 'within the first hour a tick only samples');
  assert.equal(compactor.tick(7 * MINUTE, 5000), undefined, 'and the next is 6 minutes later');
  assert.equal(compactor.nextTickMs, 12 * MINUTE);
});

test('revision mode: every 5 minutes, compacts to current - retention unless <= 0 or unchanged', () => {
  const compactor = new RevisionCompactor(1000, 0);
  const at = (minutes: number, revision: number) => compactor.tick(minutes * MINUTE, revision);
  assert.equal(at(4, 5000), undefined, 'not before 5 minutes');
  assert.equal(at(5, 900), undefined, 'nothing to compact yet');
  assert.equal(at(10, 1500), 500);
  compactor.compactionFinished(10 * MINUTE, true);
  assert.equal(at(15, 1500), undefined, 'already compacted to 500');
  assert.equal(at(20, 2500), 1500);
  compactor.compactionFinished(20 * MINUTE, false);
  assert.equal(at(25, 2500), 1500, 'a failure is retried');
  compactor.pause();
  assert.equal(at(30, 9000), undefined);
  compactor.resume();
  assert.equal(at(35, 9000), 8000);
});
