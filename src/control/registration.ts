// A live component's key in the store, attached to a lease it keeps alive: control-plane members
// at /concord/control/members/<name>, proxies at /concord/proxies/<name>. When the process dies or
// loses the store for longer than the TTL, the lease expires and the key disappears, which is how
// the others learn it is gone (a member's health checks move to the remaining members). When its
// lease is lost while the process lives (a long pause, a partition), it registers again with a new
// lease as soon as it can.

import type { CoordStore, LeaseHandle } from '../coord/coord-store.ts';

export interface RegistrationOptions {
  key: string;
  /** The value to write (evaluated at each registration, so it can say what changed). */
  value: () => string;
  ttlSeconds: number;
  /** Wait before registering again after a failure. */
  retryDelayMs?: number;
  /** Registered (true) or lost (false); for logs and to act on membership. */
  onChange?: (registered: boolean, detail: string) => void;
}

const DEFAULT_RETRY_DELAY_MS = 1_000;

export class Registration {
  private readonly store: CoordStore;
  private readonly options: RegistrationOptions;
  private lease: LeaseHandle | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private registered = false;
  private abandoned = false;

  constructor(store: CoordStore, options: RegistrationOptions) {
    this.store = store;
    this.options = options;
  }

  start(): void {
    this.running ??= this.run();
  }

  get isRegistered(): boolean {
    return this.registered && this.lease?.alive() === true;
  }

  /** Rewrites the value now (it changed), on the current lease. */
  async refresh(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || !lease.alive()) return;
    await this.store.put(this.options.key, this.options.value(), { lease: lease.id }).catch(() => undefined);
  }

  /** Stops keeping the lease alive without revoking it: the key stays until the TTL runs out (what a crash does; for tests). */
  abandon(): void {
    this.abandoned = true;
    this.stopped = true;
    this.lease?.release();
    this.wake?.();
  }

  /** Deletes the key (revokes the lease) so the others learn at once that this one is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let lease: LeaseHandle | undefined;
      try {
        lease = await this.store.grantLease(this.options.ttlSeconds);
        this.lease = lease;
        await this.store.put(this.options.key, this.options.value(), { lease: lease.id });
        this.setRegistered(true, `registered at ${this.options.key} with lease ${lease.id.toString(16)} (TTL ${lease.ttlSeconds} s)`);
        await this.untilLostOrStopped(lease);
        if (!this.stopped) this.setRegistered(false, `lease ${lease.id.toString(16)} lost: registering again`);
      } catch (error) {
        if (this.stopped) break;
        this.setRegistered(false, `cannot register at ${this.options.key}: ${(error as Error).message}; trying again in ${this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS} ms`);
        await this.sleep(this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS);
      } finally {
        const held = lease;
        if (this.stopped && !this.abandoned && held !== undefined) await held.revoke().catch(() => held.release());
      }
    }
    this.registered = false;
  }

  private setRegistered(registered: boolean, detail: string): void {
    if (registered === this.registered && registered) return;
    this.registered = registered;
    this.options.onChange?.(registered, detail);
  }

  private untilLostOrStopped(lease: LeaseHandle): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      lease.onLost(() => resolve());
      if (!lease.alive() || this.stopped) resolve();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
