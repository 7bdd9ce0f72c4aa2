// Client outcomes of the HTTP load, judged per priority. The rule: an idempotent request (GET)
// through a surviving proxy never fails. Requests are set apart, not judged, when
// * their proxy was being restarted (from its stop until it serves again), or
// * they fell in a pool outage: every instance died with the autoscaler's leader (the process
//   provider's instances are the leader's children, by design) until the new leader's first
//   relaunched instance answered. The outage is reported and bounded separately.
//
// Pure: no I/O.

export type Priority = 'critical' | 'default';

export interface RequestOutcome {
  proxy: string;
  priority: Priority;
  idempotent: boolean;
  startMs: number;
  endMs: number;
  ok: boolean;
  /** Status code, or the error's code when no response came. */
  result: string;
}

export interface Window {
  fromMs: number;
  toMs: number;
}

export interface PriorityFigures {
  requests: number;
  succeeded: number;
  /** succeeded / requests over the judged requests (1 when there were none). */
  successRate: number;
}

export interface TrafficVerdict {
  requests: number;
  judged: number;
  toRestartingProxy: number;
  duringPoolOutage: number;
  byPriority: Record<Priority, PriorityFigures>;
  /** Failed idempotent requests through a surviving proxy, outside pool outages: must be 0. */
  failedIdempotent: number;
  /**
   * Of those, the ones that timed out (504) while a backend was hung: requests in flight to it
   * that the proxy did not retry. Counted as failures all the same; told apart for the diagnosis.
   */
  timedOutOnHungBackend: number;
  examples: string[];
}

const overlaps = (request: RequestOutcome, window: Window) => request.startMs <= window.toMs && request.endMs >= window.fromMs;

export function judgeTraffic(outcomes: readonly RequestOutcome[], restarts: ReadonlyMap<string, readonly Window[]>, outages: readonly Window[], hangs: readonly Window[] = []): TrafficVerdict {
  const byPriority: Record<Priority, PriorityFigures> = { critical: { requests: 0, succeeded: 0, successRate: 1 }, default: { requests: 0, succeeded: 0, successRate: 1 } };
  let toRestartingProxy = 0;
  let duringPoolOutage = 0;
  let failedIdempotent = 0;
  let timedOutOnHungBackend = 0;
  const examples: string[] = [];
  for (const request of outcomes) {
    if ((restarts.get(request.proxy) ?? []).some((window) => overlaps(request, window))) {
      toRestartingProxy++;
      continue;
    }
    if (outages.some((window) => overlaps(request, window))) {
      duringPoolOutage++;
      continue;
    }
    const figures = byPriority[request.priority];
    figures.requests++;
    if (request.ok) figures.succeeded++;
    else if (request.idempotent) {
      failedIdempotent++;
      if (request.result === '504' && hangs.some((window) => overlaps(request, window))) timedOutOnHungBackend++;
      if (examples.length < 5) examples.push(`${request.priority} GET through ${request.proxy} at ${new Date(request.startMs).toISOString()} failed: ${request.result} after ${request.endMs - request.startMs} ms`);
    }
  }
  for (const figures of Object.values(byPriority)) figures.successRate = figures.requests === 0 ? 1 : Number((figures.succeeded / figures.requests).toFixed(5));
  return { requests: outcomes.length, judged: outcomes.length - toRestartingProxy - duringPoolOutage, toRestartingProxy, duringPoolOutage, byPriority, failedIdempotent, timedOutOnHungBackend, examples };
}
