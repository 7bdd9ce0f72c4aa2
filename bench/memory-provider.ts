// A provider whose instances are records in memory, ready at once: the controller benchmark
// measures the controller and the store, not process start-up. Fencing and idempotency are the
// real providers' (the shared ActionLedger).

import { ActionLedger } from '../src/autoscale/providers/action-ledger.ts';
import type { ActionLogEntry, InstanceRecord, LaunchRequest, Provider, ProviderEvent, TerminateRequest } from '../src/autoscale/providers/provider.ts';

export class MemoryProvider implements Provider {
  readonly kind = 'exec';
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly ledger = new ActionLedger(Date.now);
  private next = 0;

  list(): Promise<InstanceRecord[]> {
    return Promise.resolve([...this.instances.values()]);
  }

  launch(request: LaunchRequest): Promise<InstanceRecord> {
    return this.ledger.run('launch', request.requestId, request.fencingToken, () => {
      const port = 10_000 + this.next++;
      const record: InstanceRecord = { id: `m-${port}`, address: `127.0.0.1:${port}`, launchVersion: request.launchVersion, launchedAtMs: Date.now(), ready: true };
      this.instances.set(record.id, record);
      return Promise.resolve(record);
    }, (record) => record.id);
  }

  terminate(request: TerminateRequest): Promise<void> {
    return this.ledger.run('terminate', request.requestId, request.fencingToken, () => {
      this.instances.delete(request.instanceId);
      return Promise.resolve();
    }, () => request.instanceId);
  }

  fence(fencingToken: bigint): Promise<void> {
    return this.ledger.fence(fencingToken);
  }

  reportReadiness(): void {}

  isReady(instanceId: string): boolean {
    return this.instances.has(instanceId);
  }

  waitUntilReady(instanceId: string): Promise<boolean> {
    return Promise.resolve(this.instances.has(instanceId));
  }

  actionLog(): readonly ActionLogEntry[] {
    return this.ledger.entries();
  }

  events(): readonly ProviderEvent[] {
    return this.ledger.events();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
