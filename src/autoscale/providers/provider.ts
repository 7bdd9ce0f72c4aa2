// What the autoscaler needs from whatever runs its instances: list them, launch one, terminate
// one. Every launch and terminate carries an idempotent request id (repeating a request repeats
// nothing) and the controller's fencing token (the create_revision of its election key): a
// provider refuses a token older than the newest it has accepted, so a deposed leader that wakes
// up from a pause cannot act, and it records every accepted action in its log.
//
// Providers do not check health. Readiness is reported by whoever checks health (the health
// checker calls reportReadiness) and anyone can ask (isReady, waitUntilReady), so an instance
// joins the pool only once the same checks the proxies trust have passed.

export interface InstanceRecord {
  id: string;
  /** host:port the instance serves on. */
  address: string;
  launchVersion: string;
  launchedAtMs: number;
  /** Set from the health checker's reports. */
  ready: boolean;
}

export interface LaunchRequest {
  requestId: string;
  launchVersion: string;
  fencingToken: bigint;
}

export interface TerminateRequest {
  requestId: string;
  instanceId: string;
  fencingToken: bigint;
}

export interface ActionLogEntry {
  atMs: number;
  action: 'launch' | 'terminate';
  requestId: string;
  instanceId?: string;
  /** Decimal: bigints do not survive JSON. */
  fencingToken: string;
}

export type ProviderEventKind = 'launched' | 'terminated' | 'exited' | 'killed' | 'refused' | 'command-failed' | 'ready' | 'not-ready' | 'warning';

export interface ProviderEvent {
  atMs: number;
  kind: ProviderEventKind;
  message: string;
  instanceId?: string;
  requestId?: string;
}

export interface Provider {
  readonly kind: 'process' | 'exec';
  list(): Promise<InstanceRecord[]>;
  launch(request: LaunchRequest): Promise<InstanceRecord>;
  terminate(request: TerminateRequest): Promise<void>;
  /**
   * A new leader presents its fencing token before it lists the instances; older tokens are
   * refused from then on. Rejects with CONCORD_E_PROVIDER_STALE_FENCING_TOKEN if a newer one was seen.
   */
  fence(fencingToken: bigint): Promise<void>;
  /** The health checker's verdict on an instance. */
  reportReadiness(instanceId: string, ready: boolean): void;
  isReady(instanceId: string): boolean;
  /** Resolves true once the instance is reported ready, false after timeoutMs. */
  waitUntilReady(instanceId: string, timeoutMs: number): Promise<boolean>;
  /** Every accepted launch and terminate, oldest first (bounded: the oldest entries go first). */
  actionLog(): readonly ActionLogEntry[];
  /** Recent events, oldest first (bounded). */
  events(): readonly ProviderEvent[];
  /** Stops everything this provider owns that dies with its owner (the process provider's children). */
  close(): Promise<void>;
}

export type ProviderErrorCode =
  | 'CONCORD_E_PROVIDER_STALE_FENCING_TOKEN'
  | 'CONCORD_E_PROVIDER_NO_FREE_PORT'
  | 'CONCORD_E_PROVIDER_LAUNCH_FAILED'
  | 'CONCORD_E_PROVIDER_COMMAND_FAILED'
  | 'CONCORD_E_PROVIDER_COMMAND_TIMEOUT'
  | 'CONCORD_E_PROVIDER_OUTPUT_INVALID'
  | 'CONCORD_E_PROVIDER_OUTPUT_TOO_LARGE'
  | 'CONCORD_E_PROVIDER_BAD_TEMPLATE'
  | 'CONCORD_E_PROVIDER_CLOSED';

export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly code: ProviderErrorCode;

  constructor(code: ProviderErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
