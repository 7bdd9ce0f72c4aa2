// The trace file format, so operators can replay their own traffic:
//
//   # comments and blank lines are ignored
//   seconds,requests_per_second      <- optional header
//   0,120
//   60,135.5
//   120,410
//
// One point per line: seconds since the start (non-negative, non-decreasing) and offered
// requests per second (non-negative); between points the rate changes linearly, after the last it
// stays. Fields are separated by a comma (spaces around it are fine). At most TRACE_MAX_POINTS
// points; the simulation runs until the last point's time.

import type { LoadTrace, TracePoint } from './trace.ts';

export const TRACE_MAX_POINTS = 1_000_000;
/** Longest trace: 31 days. */
export const TRACE_MAX_SECONDS = 31 * 24 * 3600;

export class TraceError extends Error {
  override name = 'TraceError';
  readonly code = 'CONCORD_E_TRACE_INVALID';
}

export function parseTraceCsv(text: string, name: string): LoadTrace {
  const points: TracePoint[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const lineNumber = index + 1;
    const fields = line.split(',').map((field) => field.trim());
    if (points.length === 0 && fields.length === 2 && !/^[-+.\d]/.test(fields[0]!)) continue; // the header
    if (fields.length !== 2) throw new TraceError(`${name} line ${lineNumber}: expected 'seconds,requests_per_second', got '${line}'`);
    const atSeconds = parseNumber(fields[0]!, name, lineNumber, 'seconds');
    const requestsPerSecond = parseNumber(fields[1]!, name, lineNumber, 'requests_per_second');
    const previous = points[points.length - 1];
    if (previous !== undefined && atSeconds < previous.atSeconds) {
      throw new TraceError(`${name} line ${lineNumber}: time ${atSeconds} s goes back from ${previous.atSeconds} s; sort the points by time`);
    }
    if (atSeconds > TRACE_MAX_SECONDS) throw new TraceError(`${name} line ${lineNumber}: ${atSeconds} s is past the longest trace (${TRACE_MAX_SECONDS} s)`);
    if (points.length === TRACE_MAX_POINTS) throw new TraceError(`${name}: more than ${TRACE_MAX_POINTS} points; resample the trace`);
    points.push({ atSeconds, requestsPerSecond });
  }
  if (points.length < 2) throw new TraceError(`${name}: a trace needs at least two points (seconds,requests_per_second lines)`);
  return { name, points };
}

function parseNumber(text: string, name: string, lineNumber: number, field: string): number {
  const value = Number(text);
  if (text === '' || !Number.isFinite(value) || value < 0) {
    throw new TraceError(`${name} line ${lineNumber}: ${field} '${text}' is not a non-negative number`);
  }
  return value;
}

export function formatTraceCsv(trace: LoadTrace): string {
  const lines = ['seconds,requests_per_second'];
  for (const point of trace.points) lines.push(`${point.atSeconds},${Math.round(point.requestsPerSecond * 1000) / 1000}`);
  return `${lines.join('\n')}\n`;
}
