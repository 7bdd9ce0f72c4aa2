// Scheduled capacity: cron parsing and matching on local wall-clock fields, windows that span
// midnight and month ends, and the bounds a window sets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cronMatches, minuteBefore, parseCron } from '../../src/autoscale/policy/cron.ts';
import { initialMemory } from '../../src/autoscale/policy/defaults.ts';
import { decide } from '../../src/autoscale/policy/policy.ts';
import { effectiveBounds, scheduleActive } from '../../src/autoscale/policy/schedule.ts';
import type { ScheduleConfig, WallClock } from '../../src/autoscale/policy/types.ts';
import { config, launches, observation, stages, warmedPool } from './helpers.ts';

const HOUR_MS = 3_600_000;
// 2024-03-04 was a Monday.
const monday = (hour: number, minute = 0): WallClock => ({ year: 2024, month: 3, day: 4, hour, minute, weekday: 1 });

test('cron errors name the field and say what is allowed', () => {
  assert.throws(() => parseCron('* * *'), /has 3 fields; write five/);
  assert.throws(() => parseCron('61 * * * *'), /minute field '61': '61' is outside 0-59/);
  assert.throws(() => parseCron('* 24 * * *'), /hour field/);
  assert.throws(() => parseCron('* * 0 * *'), /day of month field/);
  assert.throws(() => parseCron('* * * 13 *'), /month field/);
  assert.throws(() => parseCron('* * * * 8'), /day of week field/);
  assert.throws(() => parseCron('5-1 * * * *'), /runs backwards/);
  assert.throws(() => parseCron('*/0 * * * *'), /step must be at least 1/);
  assert.throws(() => parseCron('x * * * *'), /outside 0-59/);
});

test('cron matches lists, ranges, steps and names; day-of-month and day-of-week are ORed when both are set', () => {
  assert.equal(cronMatches(parseCron('0 8 * * 1-5'), monday(8)), true);
  assert.equal(cronMatches(parseCron('0 8 * * 1-5'), { ...monday(8), day: 9, weekday: 6 }), false);
  assert.equal(cronMatches(parseCron('*/15 * * * *'), monday(3, 30)), true);
  assert.equal(cronMatches(parseCron('*/15 * * * *'), monday(3, 31)), false);
  assert.equal(cronMatches(parseCron('0,30 9-17/2 * MAR mon-fri'), monday(11, 30)), true);
  assert.equal(cronMatches(parseCron('0 0 * * 7'), { year: 2024, month: 3, day: 3, hour: 0, minute: 0, weekday: 0 }), true);
  const firstOrMonday = parseCron('0 0 1 * 1');
  assert.equal(cronMatches(firstOrMonday, { year: 2024, month: 3, day: 1, hour: 0, minute: 0, weekday: 5 }), true);
  assert.equal(cronMatches(firstOrMonday, monday(0)), true);
  assert.equal(cronMatches(firstOrMonday, { year: 2024, month: 3, day: 5, hour: 0, minute: 0, weekday: 2 }), false);
});

test('minuteBefore crosses hours, days, months, years and leap days', () => {
  assert.deepEqual(minuteBefore(monday(8, 0)), monday(7, 59));
  assert.deepEqual(minuteBefore({ year: 2024, month: 3, day: 1, hour: 0, minute: 0, weekday: 5 }), { year: 2024, month: 2, day: 29, hour: 23, minute: 59, weekday: 4 });
  assert.deepEqual(minuteBefore({ year: 2023, month: 3, day: 1, hour: 0, minute: 0, weekday: 3 }), { year: 2023, month: 2, day: 28, hour: 23, minute: 59, weekday: 2 });
  assert.deepEqual(minuteBefore({ year: 2024, month: 1, day: 1, hour: 0, minute: 0, weekday: 1 }), { year: 2023, month: 12, day: 31, hour: 23, minute: 59, weekday: 0 });
});

test('a window is open from each match for its duration, across midnight too', () => {
  const business: ScheduleConfig = { name: 'business-hours', cron: '0 8 * * 1-5', durationMs: 10 * HOUR_MS, timeZone: 'Europe/Paris', min: 6 };
  assert.equal(scheduleActive(business, monday(7, 59)), false);
  assert.equal(scheduleActive(business, monday(8, 0)), true);
  assert.equal(scheduleActive(business, monday(17, 59)), true);
  assert.equal(scheduleActive(business, monday(18, 0)), false);
  const night: ScheduleConfig = { name: 'batch-night', cron: '0 22 * * *', durationMs: 4 * HOUR_MS, timeZone: 'UTC', max: 3 };
  assert.equal(scheduleActive(night, { ...monday(1, 30), day: 5, weekday: 2 }), true);
  assert.equal(scheduleActive(night, { ...monday(2, 0), day: 5, weekday: 2 }), false);
});

test('effective bounds: windows raise the minimum and lower the maximum; max wins a conflict; a missing local time is reported', () => {
  const raise: ScheduleConfig = { name: 'peak', cron: '0 8 * * *', durationMs: HOUR_MS, timeZone: 'Europe/Paris', min: 8 };
  const lower: ScheduleConfig = { name: 'quiet', cron: '0 8 * * *', durationMs: HOUR_MS, timeZone: 'UTC', max: 5 };
  const open = { 'Europe/Paris': monday(8, 30), UTC: monday(7, 30) };
  assert.deepEqual(effectiveBounds(config({ schedules: [raise] }), open), { min: 8, max: 20, activeSchedules: ['peak'], reasons: ['schedule peak raises min to 8'] });
  const both = effectiveBounds(config({ schedules: [raise, lower] }), { 'Europe/Paris': monday(8, 30), UTC: monday(8, 30) });
  assert.deepEqual([both.min, both.max], [5, 5]);
  assert.match(both.reasons.join(), /max wins/);
  const unknown = effectiveBounds(config({ schedules: [raise] }), {});
  assert.deepEqual([unknown.min, unknown.activeSchedules], [2, []]);
  assert.match(unknown.reasons[0]!, /no local time for Europe\/Paris/);
});

test('a scheduled minimum grows the pool before the peak, and the decision names the schedule', () => {
  const cfg = config({ schedules: [{ name: 'morning', cron: '30 7 * * 1-5', durationMs: 2 * HOUR_MS, timeZone: 'Europe/Paris', min: 6 }] });
  const { decision } = decide(cfg, initialMemory(), observation(warmedPool(3, 8), { localTime: { 'Europe/Paris': monday(7, 45) } }));
  assert.deepEqual(stages(decision), ['schedule 3->6']);
  assert.equal(launches(decision).length, 3);
  assert.deepEqual(decision.inputs.bounds.activeSchedules, ['morning']);
});
