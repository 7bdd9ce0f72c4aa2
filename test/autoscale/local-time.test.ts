// Wall-clock fields in a time zone, for scheduled capacity, across a daylight-saving change.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localTimes, wallClockAt } from '../../src/autoscale/local-time.ts';

test('wall-clock fields in several time zones at one instant', () => {
  const instant = Date.UTC(2024, 2, 4, 7, 30); // Monday 2024-03-04 07:30 UTC
  assert.deepEqual(localTimes(instant, ['UTC', 'Europe/Paris', 'America/New_York']), {
    UTC: { year: 2024, month: 3, day: 4, hour: 7, minute: 30, weekday: 1 },
    'Europe/Paris': { year: 2024, month: 3, day: 4, hour: 8, minute: 30, weekday: 1 },
    'America/New_York': { year: 2024, month: 3, day: 4, hour: 2, minute: 30, weekday: 1 },
  });
});

test('across a daylight-saving change and midnight', () => {
  // Paris moved to summer time on 2024-03-31 at 02:00 local (01:00 UTC).
  assert.equal(wallClockAt(Date.UTC(2024, 2, 31, 0, 59), 'Europe/Paris').hour, 1);
  assert.equal(wallClockAt(Date.UTC(2024, 2, 31, 1, 0), 'Europe/Paris').hour, 3);
  assert.deepEqual(wallClockAt(Date.UTC(2024, 11, 31, 23, 30), 'Asia/Tokyo'), { year: 2025, month: 1, day: 1, hour: 8, minute: 30, weekday: 3 });
});
