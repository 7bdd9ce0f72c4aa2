// The answer to a refused request: a status, Retry-After and the reason, and no body, so that a
// refusal costs the proxy a header write and nothing else. `x-concord-shed` names the reason; a
// Concord proxy never retries a 503 that carries it (the upstream is overloaded, not broken).

import type { Priority } from '../shed/priority.ts';
import type { ShedReason } from '../shed/shed-reason.ts';

/** The header that marks a response as refused by admission control, with the reason. */
export const SHED_HEADER = 'x-concord-shed';

export interface RejectedRequest {
  readonly admitted: false;
  /** 429 for a client over its quota, 503 for everything else. */
  readonly status: 429 | 503;
  /** Ready to write as they are: retry-after, x-concord-shed and content-length: 0. */
  readonly headers: Readonly<Record<string, string>>;
  readonly reason: ShedReason;
  readonly priority: Priority;
}

export function rejectionOf(reason: ShedReason, priority: Priority, retryAfterMs: number): RejectedRequest {
  const quota = reason === 'client-rate-limit';
  // Retry-After is in whole seconds; a client over its quota is told at least 1, so it does not spin.
  const seconds = Math.max(quota ? 1 : 0, Math.ceil(retryAfterMs / 1000));
  return {
    admitted: false,
    status: quota ? 429 : 503,
    headers: { 'retry-after': String(seconds), [SHED_HEADER]: reason, 'content-length': '0' },
    reason,
    priority,
  };
}
