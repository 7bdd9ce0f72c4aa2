// Time to detect each injected backend failure: from the moment the run killed or hung a backend
// to the first `marked-down` health event for it in the timeline (written by the control-plane
// member that checks it). A backend the autoscaler removed before any check marked it down (its
// instance record deleted: the provider saw the process exit) counts as detected at the removal.
//
// Pure: no I/O.

export interface InjectedBackendFailure {
  kind: 'kill' | 'hang';
  /** host:port of the backend. */
  backend: string;
  instanceId: string;
  atMs: number;
}

export interface HealthTransition {
  atMs: number;
  backend: string;
  /** The checker's own measure, first failed probe to verdict. */
  checkerDetectionMs?: number;
}

export interface InstanceRemoval {
  atMs: number;
  instanceId: string;
}

export interface Detection {
  kind: 'kill' | 'hang';
  backend: string;
  /** Injection to marked-down (or removal); null: never detected. */
  detectionMs: number | null;
  by: 'marked-down' | 'removed' | 'undetected';
  checkerDetectionMs?: number;
}

/** Events stamped by another process's clock may land a little before the injection's stamp. */
const CLOCK_SLACK_MS = 50;

export function detectFailures(failures: readonly InjectedBackendFailure[], downs: readonly HealthTransition[], removals: readonly InstanceRemoval[]): Detection[] {
  return failures.map((failure) => {
    const down = downs.filter((event) => event.backend === failure.backend && event.atMs >= failure.atMs - CLOCK_SLACK_MS).sort((a, b) => a.atMs - b.atMs)[0];
    const removal = removals.filter((event) => event.instanceId === failure.instanceId && event.atMs >= failure.atMs - CLOCK_SLACK_MS).sort((a, b) => a.atMs - b.atMs)[0];
    if (down !== undefined && (removal === undefined || down.atMs <= removal.atMs)) {
      return { kind: failure.kind, backend: failure.backend, detectionMs: Math.max(0, Math.round(down.atMs - failure.atMs)), by: 'marked-down', ...(down.checkerDetectionMs === undefined ? {} : { checkerDetectionMs: Math.round(down.checkerDetectionMs) }) };
    }
    if (removal !== undefined) return { kind: failure.kind, backend: failure.backend, detectionMs: Math.max(0, Math.round(removal.atMs - failure.atMs)), by: 'removed' };
    return { kind: failure.kind, backend: failure.backend, detectionMs: null, by: 'undetected' };
  });
}
