// The postmortem's arithmetic on hand-made timelines (src/control/postmortem.ts): the cases the
// end-to-end CLI test does not reach.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TimelineEvent } from '../../src/control/events.ts';
import { buildPostmortem, formatPostmortem } from '../../src/control/postmortem.ts';

const T0 = 1_700_000_000_000;

function event(atMs: number, source: string, by: string, kind: string, extra: Partial<TimelineEvent> = {}): TimelineEvent {
  return { atMs: T0 + atMs, source, by, kind, pool: 'web', message: `10.0.0.9:80: ${kind}`, data: { backend: '10.0.0.9:80' }, ...extra };
}

test('a passive ejection alone: began when ejected, traffic moved when the last proxy ejected it; an outage still open at the end of the window', () => {
  const report = buildPostmortem([
    event(5_000, 'proxy', 'proxy-a', 'ejected'),
    event(5_300, 'proxy', 'proxy-b', 'ejected'),
    event(5_100, 'proxy', 'proxy-a', 'ejected'), // the same proxy again: not a later mover
  ], T0, T0 + 60_000);
  assert.equal(report.failures.length, 1);
  const [failure] = report.failures;
  assert.deepEqual([failure!.beganAtMs - T0, failure!.detectionMs, failure!.trafficMovedAfterMs, failure!.recoveredAtMs, failure!.outageMs], [5_000, 0, 300, undefined, 55_000]);
  assert.match(formatPostmortem(report), /not recovered by the end of the window \(55\.0 s so far\)/);
});

test('episodes: proxies\' shedding merges into one pool episode that lasts while any proxy sheds; a panic still on at the end is open; events outside the window are left out', () => {
  const pool = (atMs: number, by: string, kind: string) => event(atMs, 'proxy', by, kind, { data: { backend: '*' } });
  const report = buildPostmortem([
    pool(1_000, 'proxy-a', 'shed-started'), pool(2_000, 'proxy-b', 'shed-started'), pool(9_000, 'proxy-a', 'shed-stopped'), pool(12_000, 'proxy-b', 'shed-stopped'),
    pool(20_000, 'proxy-a', 'panic-started'),
    pool(-5_000, 'proxy-a', 'panic-started'), pool(200_000, 'proxy-a', 'panic-ended'),
  ], T0, T0 + 30_000);
  assert.equal(report.events, 5);
  assert.deepEqual(report.episodes.map((episode) => [episode.kind, episode.startedAtMs - T0, episode.endedAtMs === undefined ? undefined : episode.endedAtMs - T0, episode.durationMs]), [
    ['shedding', 1_000, 12_000, 11_000],
    ['panic', 20_000, undefined, 10_000],
  ]);
  assert.equal(report.failures.length, 0, 'pool-wide events are not backend failures');
});

test('two failures of one backend are two failures; a recovery closes only the open one', () => {
  const report = buildPostmortem([
    event(1_000, 'health', 'member-a', 'marked-down', { data: { backend: '10.0.0.9:80', detectionMs: 400 } }),
    event(3_000, 'health', 'member-a', 'marked-up'),
    event(10_000, 'health', 'member-b', 'marked-down', { data: { backend: '10.0.0.9:80', detectionMs: 900 } }),
    event(12_000, 'health', 'member-b', 'marked-up'),
  ], T0, T0 + 20_000);
  assert.deepEqual(report.failures.map((failure) => [failure.beganAtMs - T0, failure.detectionMs, failure.outageMs]), [[600, 400, 2_400], [9_100, 900, 2_900]]);
});
