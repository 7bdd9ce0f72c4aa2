// Readiness as the health checker reports it, per instance, with waiters for "tell me when it is
// ready". The provider keeps no opinion of its own.

export class ReadinessBoard {
  private readonly ready = new Set<string>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Returns true when the state changed. */
  report(instanceId: string, ready: boolean): boolean {
    if (ready === this.ready.has(instanceId)) return false;
    if (ready) {
      this.ready.add(instanceId);
      for (const wake of this.waiters.get(instanceId) ?? []) wake();
      this.waiters.delete(instanceId);
    } else {
      this.ready.delete(instanceId);
    }
    return true;
  }

  isReady(instanceId: string): boolean {
    return this.ready.has(instanceId);
  }

  forget(instanceId: string): void {
    this.ready.delete(instanceId);
  }

  waitUntilReady(instanceId: string, timeoutMs: number): Promise<boolean> {
    if (this.ready.has(instanceId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.get(instanceId)?.delete(wake);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      let set = this.waiters.get(instanceId);
      if (set === undefined) this.waiters.set(instanceId, (set = new Set()));
      set.add(wake);
    });
  }
}
