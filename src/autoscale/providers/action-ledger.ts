// The provider's ledger: fencing, idempotency and the log of accepted actions, shared by every
// provider. A request whose fencing token is older than the newest accepted one is refused before
// anything else happens; a request id seen before returns the first outcome (or joins the request
// still in flight) instead of acting twice. Both memories are bounded, oldest first out.

import { ProviderError, type ActionLogEntry, type ProviderEvent } from './provider.ts';

export interface LedgerLimits {
  /** Accepted actions kept in the log. */
  maxLogEntries: number;
  /** Request ids whose outcome is remembered for idempotency. */
  maxRememberedRequests: number;
  /** Events kept for events(). */
  maxEvents: number;
}

export const DEFAULT_LEDGER_LIMITS: LedgerLimits = { maxLogEntries: 10_000, maxRememberedRequests: 10_000, maxEvents: 1_000 };

export class ActionLedger {
  private highestToken = -1n;
  private readonly outcomes = new Map<string, Promise<unknown>>();
  private readonly log: ActionLogEntry[] = [];
  private readonly recentEvents: ProviderEvent[] = [];
  private readonly limits: LedgerLimits;
  private readonly nowMs: () => number;
  private readonly onEvent: ((event: ProviderEvent) => void) | undefined;

  constructor(nowMs: () => number, onEvent?: (event: ProviderEvent) => void, limits: LedgerLimits = DEFAULT_LEDGER_LIMITS) {
    this.nowMs = nowMs;
    this.onEvent = onEvent;
    this.limits = limits;
  }

  /**
   * Runs `act` once per request id, after the fencing check. `instanceId` names the instance for
   * the log (a terminate knows it up front; a launch learns it from its outcome).
   */
  run<T>(action: ActionLogEntry['action'], requestId: string, fencingToken: bigint, act: () => Promise<T>, instanceIdOf: (outcome: T) => string | undefined): Promise<T> {
    const refusal = this.admit(fencingToken, `${action} ${requestId}`, requestId);
    if (refusal !== undefined) return Promise.reject(refusal);
    const known = this.outcomes.get(requestId);
    if (known !== undefined) return known as Promise<T>;
    const entry: ActionLogEntry = { atMs: this.nowMs(), action, requestId, fencingToken: fencingToken.toString() };
    this.append(this.log, entry, this.limits.maxLogEntries);
    const outcome = act().then((value) => {
      const instanceId = instanceIdOf(value);
      if (instanceId !== undefined) entry.instanceId = instanceId;
      return value;
    });
    // A failed request may be retried under the same id: forget failures.
    outcome.catch(() => this.outcomes.delete(requestId));
    this.outcomes.set(requestId, outcome);
    while (this.outcomes.size > this.limits.maxRememberedRequests) this.outcomes.delete(this.outcomes.keys().next().value!);
    return outcome;
  }

  /**
   * A new leader presents its token before it lists the instances: from then on every older token
   * is refused, so no action of a deposed leader can land after the new leader has looked.
   */
  fence(fencingToken: bigint): Promise<void> {
    const refusal = this.admit(fencingToken, 'fence');
    return refusal === undefined ? Promise.resolve() : Promise.reject(refusal);
  }

  /** Raises the highest token seen to `fencingToken`, or returns the refusal of an older one. */
  private admit(fencingToken: bigint, what: string, requestId?: string): ProviderError | undefined {
    if (fencingToken < this.highestToken) {
      const message = `refused ${what}: fencing token ${fencingToken} is older than ${this.highestToken}, which this provider already accepted (a newer leader acts now)`;
      this.event({ atMs: this.nowMs(), kind: 'refused', message, ...(requestId === undefined ? {} : { requestId }) });
      return new ProviderError('CONCORD_E_PROVIDER_STALE_FENCING_TOKEN', message);
    }
    this.highestToken = fencingToken;
    return undefined;
  }

  event(event: ProviderEvent): void {
    this.append(this.recentEvents, event, this.limits.maxEvents);
    this.onEvent?.(event);
  }

  entries(): readonly ActionLogEntry[] {
    return this.log;
  }

  events(): readonly ProviderEvent[] {
    return this.recentEvents;
  }

  private append<T>(list: T[], item: T, max: number): void {
    list.push(item);
    if (list.length > max) list.splice(0, list.length - max);
  }
}
