// What every active probe shares: a target, a deadline, a clock, and a result the health core reads.

import type { ProbeResult } from '../health/active-check.ts';

export interface ProbeTarget {
  host: string;
  port: number;
}

/** Milliseconds since the epoch, monotonic within the process (performance.timeOrigin + performance.now()). */
export type Clock = () => number;

export const systemClock: Clock = () => performance.timeOrigin + performance.now();

/** Runs one check against one backend; never rejects (a failure is a result with ok: false). */
export type Probe = (target: ProbeTarget) => Promise<ProbeResult>;

/** A short, stable description of a socket error for events and logs. */
export function describeSocketError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return 'connection reset';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    case 'EPIPE': return 'connection closed while sending';
    default: return typeof code === 'string' ? `${code}: ${(error as Error).message}` : (error as Error).message;
  }
}

/** Settles a probe exactly once, whatever fires first (answer, error or deadline). */
export function onceSettled(startedAtMs: number, clock: Clock, resolve: (result: ProbeResult) => void): (ok: boolean, detail: string) => void {
  let settled = false;
  return (ok, detail) => {
    if (settled) return;
    settled = true;
    resolve({ ok, startedAtMs, finishedAtMs: clock(), detail });
  };
}
