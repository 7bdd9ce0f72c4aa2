// A backend's health as the control plane publishes it for every proxy, at
// /concord/health/<pool>/<backend>: the verdict of the one member that checks the backend (rise and
// fall applied), when it was reached and how long detection took, the last probe, and who checked.
// The checking member rewrites the record when the verdict changes and at least every refreshMs
// otherwise, so a proxy can tell a current result from one nobody stands behind any more: a record
// not rewritten for controlPlane.health.maxResultAgeMs (measured on the proxy's own clock, from
// when it saw the write) is unknown, and the proxy checks the backend itself.

import { z } from 'zod';

export const HEALTH_STATES = ['healthy', 'unhealthy'] as const;

const probeSchema = z.object({
  ok: z.boolean(),
  detail: z.string().max(2_000),
  startedAtMs: z.number().finite(),
  finishedAtMs: z.number().finite(),
});

const recordSchema = z.object({
  pool: z.string().min(1),
  backend: z.string().min(1),
  state: z.enum(HEALTH_STATES),
  /** When the current state was reached (the checker's wall clock). */
  sinceMs: z.number().finite(),
  /** Unhealthy only: from the start of the first failed probe to the verdict. */
  detectionMs: z.number().finite().nonnegative().optional(),
  /** What the verdict was based on: the probe that reached it, or the last one since. */
  detail: z.string().max(2_000),
  lastProbe: probeSchema.optional(),
  /** The member that checks the backend. */
  checker: z.string().min(1),
  /** When the record was written (the checker's wall clock). */
  publishedAtMs: z.number().finite(),
  /** The checker rewrites the record at least this often. */
  refreshMs: z.number().int().positive(),
});

export type HealthRecord = z.output<typeof recordSchema>;

/** Parses a record read from the store (outside input); the problem when it does not parse. */
export function parseHealthRecord(text: string): { ok: true; record: HealthRecord } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const parsed = recordSchema.safeParse(json);
  if (parsed.success) return { ok: true, record: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, problem: `${issue.path.join('.') || '(top level)'}: ${issue.message}` };
}
