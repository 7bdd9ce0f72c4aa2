// Cron expressions for scheduled capacity, evaluated on local wall-clock fields that the shell
// computes in the schedule's time zone (so the core needs no time-zone database). Five fields:
// minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC) day-of-week (0-7 or
// SUN-SAT, 0 and 7 both Sunday); each field is *, a value, a range a-b, a step */n or a-b/n, or a
// comma-separated list of those. As in Vixie cron, when both day fields are restricted a day
// matches if either does.

import type { WallClock } from './types.ts';

export interface CronExpression {
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  daysOfWeek: ReadonlySet<number>;
  dayOfMonthRestricted: boolean;
  dayOfWeekRestricted: boolean;
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

/** Parses a five-field cron expression; throws an Error whose message names the bad field. */
export function parseCron(expression: string): CronExpression {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) {
    throw new Error(`cron '${expression}' has ${parts.length} fields; write five: minute hour day-of-month month day-of-week (e.g. '0 8 * * 1-5')`);
  }
  const sets = parts.map((part, index) => parseField(part, FIELDS[index]!));
  const daysOfWeek = new Set([...sets[4]!].map((day) => day % 7));
  return {
    minutes: sets[0]!,
    hours: sets[1]!,
    daysOfMonth: sets[2]!,
    months: sets[3]!,
    daysOfWeek,
    dayOfMonthRestricted: parts[2] !== '*',
    dayOfWeekRestricted: parts[4] !== '*',
  };
}

function parseField(text: string, spec: FieldSpec): Set<number> {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    const match = /^(\*|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:\/(\d+))?$/.exec(item);
    if (match === null) throw new Error(`cron ${spec.name} field '${text}': '${item}' is not *, a value, a range a-b or a step x/n`);
    const step = match[4] === undefined ? 1 : Number(match[4]);
    if (step < 1) throw new Error(`cron ${spec.name} field '${text}': the step must be at least 1`);
    let low = spec.min;
    let high = spec.max;
    if (match[1] !== '*') {
      low = fieldValue(match[2]!, spec, text);
      high = match[3] === undefined ? (match[4] === undefined ? low : spec.max) : fieldValue(match[3], spec, text);
      if (high < low) throw new Error(`cron ${spec.name} field '${text}': range ${low}-${high} runs backwards`);
    }
    for (let value = low; value <= high; value += step) values.add(value);
  }
  return values;
}

function fieldValue(token: string, spec: FieldSpec, text: string): number {
  const byName = spec.names?.indexOf(token.toUpperCase()) ?? -1;
  const value = byName >= 0 ? byName + (spec.name === 'month' ? 1 : 0) : /^\d+$/.test(token) ? Number(token) : Number.NaN;
  if (!Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw new Error(`cron ${spec.name} field '${text}': '${token}' is outside ${spec.min}-${spec.max}`);
  }
  return value;
}

export function cronMatches(cron: CronExpression, at: WallClock): boolean {
  if (!cron.minutes.has(at.minute) || !cron.hours.has(at.hour) || !cron.months.has(at.month)) return false;
  const dayOfMonth = cron.daysOfMonth.has(at.day);
  const dayOfWeek = cron.daysOfWeek.has(at.weekday);
  if (cron.dayOfMonthRestricted && cron.dayOfWeekRestricted) return dayOfMonth || dayOfWeek;
  return dayOfMonth && dayOfWeek;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The wall-clock minute before `at` (calendar arithmetic; a daylight-saving jump is not modelled). */
export function minuteBefore(at: WallClock): WallClock {
  if (at.minute > 0) return { ...at, minute: at.minute - 1 };
  if (at.hour > 0) return { ...at, hour: at.hour - 1, minute: 59 };
  const weekday = (at.weekday + 6) % 7;
  if (at.day > 1) return { ...at, day: at.day - 1, hour: 23, minute: 59, weekday };
  const month = at.month > 1 ? at.month - 1 : 12;
  const year = at.month > 1 ? at.year : at.year - 1;
  return { year, month, day: daysInMonth(year, month), hour: 23, minute: 59, weekday };
}
