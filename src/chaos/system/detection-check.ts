// Time to detect each injected backend failure: from the moment the run killed or hung a backend
// to the first `marked-down` event for it in the timeline (written by the control-plane member
// that checks it, or by a proxy checking it itself). A backend that left the pool before any check
// marked it down (the provider saw its process exit; the autoscaler found it gone) counts as
// detected at that moment. Only events within windowMs of the injection count: a replacement
// reuses the port, and its own later failure is not this one's detection.
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
  /** Injection to the first marked-down event, whether or not a removal came first; null: none in the window. */
  markedDownMs: number | null;
  checkerDetectionMs?: number;
}

export interface DetectionWindows {
  /** Events stamped by another process's clock may land a little before the injection's stamp. */
  clockSlackMs: number;
  /**
   * A removal found by the autoscaler is stamped with its period's start, up to a period before it
   * looked: removals count from this long before the injection.
   */
  removalSlackMs: number;
  /** Events later than this after the injection are not its detection. */
  windowMs: number;
}

export function detectFailures(failures: readonly InjectedBackendFailure[], downs: readonly HealthTransition[], removals: readonly InstanceRemoval[], windows: DetectionWindows): Detection[] {
  return failures.map((failure) => {
    const within = (atMs: number, slackMs: number) => atMs >= failure.atMs - slackMs && atMs <= failure.atMs + windows.windowMs;
    const down = downs.filter((event) => event.backend === failure.backend && within(event.atMs, windows.clockSlackMs)).sort((a, b) => a.atMs - b.atMs)[0];
    const removal = removals.filter((event) => event.instanceId === failure.instanceId && within(event.atMs, windows.removalSlackMs)).sort((a, b) => a.atMs - b.atMs)[0];
    const markedDownMs = down === undefined ? null : Math.max(0, Math.round(down.atMs - failure.atMs));
    const checker = down?.checkerDetectionMs === undefined ? {} : { checkerDetectionMs: Math.round(down.checkerDetectionMs) };
    if (down !== undefined && (removal === undefined || down.atMs <= removal.atMs)) {
      return { kind: failure.kind, backend: failure.backend, detectionMs: markedDownMs, by: 'marked-down', markedDownMs, ...checker };
    }
    if (removal !== undefined) return { kind: failure.kind, backend: failure.backend, detectionMs: Math.max(0, Math.round(removal.atMs - failure.atMs)), by: 'removed', markedDownMs, ...checker };
    return { kind: failure.kind, backend: failure.backend, detectionMs: null, by: 'undetected', markedDownMs };
  });
}
