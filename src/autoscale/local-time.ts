// Local wall-clock fields for the policy's scheduled capacity. The policy is pure and knows no
// time zones; the controller calls localTimes() each period with the time zones its schedules
// name and passes the result in the observation. Intl's time-zone data follows the runtime's ICU.

import type { WallClock } from './policy/types.ts';

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** The wall clock in `timeZone` at the instant nowMs (milliseconds since the Unix epoch). */
export function wallClockAt(nowMs: number, timeZone: string): WallClock {
  const parts = Object.fromEntries(formatter(timeZone).formatToParts(new Date(nowMs)).map((part) => [part.type, part.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    weekday: WEEKDAYS.indexOf(parts.weekday!),
  };
}

/** The observation's localTime: one wall clock per time zone the schedules use. */
export function localTimes(nowMs: number, timeZones: Iterable<string>): Record<string, WallClock> {
  const result: Record<string, WallClock> = {};
  for (const timeZone of timeZones) result[timeZone] = wallClockAt(nowMs, timeZone);
  return result;
}
