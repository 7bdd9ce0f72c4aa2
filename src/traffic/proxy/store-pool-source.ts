// The proxy's pools from the coordination store: the applied configuration (/concord/config) gives
// pools and routes; an autoscaled pool's backends are its instances as the autoscaler records them
// (/concord/autoscale/pools/<pool>/instances/). A new snapshot is published only when the pools or
// routes actually change, so the autoscaler rewriting a record does not rebuild anything.
//
// Static stability: whatever the store does, the last snapshot stays in force. When the store is
// unreachable at start-up, the configuration cached on local disk by an earlier run (if any)
// serves until the store answers.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConcordConfig, PoolConfig } from '../../control/config.ts';
import { validateConfigText, type AppliedConfig } from '../../control/config-store.ts';
import type { InstanceState } from '../../autoscale/state/records.ts';
import type { PoolSnapshot, PoolSource } from './pool-source.ts';

const EMPTY: PoolSnapshot = { pools: [], routes: [] };

export class StorePoolSource implements PoolSource {
  private config: ConcordConfig | undefined;
  private configRevision: bigint | undefined;
  private instances = new Map<string, InstanceState[]>();
  private snapshot: PoolSnapshot = EMPTY;
  private signature = JSON.stringify(EMPTY);
  private readonly listeners = new Set<(snapshot: PoolSnapshot) => void>();
  private readonly cacheFile: string | undefined;

  constructor(options: { cacheFile?: string } = {}) {
    this.cacheFile = options.cacheFile;
  }

  current(): PoolSnapshot {
    return this.snapshot;
  }

  watch(onChange: (snapshot: PoolSnapshot) => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }

  /** The configuration in force (undefined until one was read from the store or the cache). */
  get applied(): { config: ConcordConfig; revision: bigint | undefined } | undefined {
    return this.config === undefined ? undefined : { config: this.config, revision: this.configRevision };
  }

  setConfig(applied: AppliedConfig): void {
    this.config = applied.config;
    this.configRevision = applied.revision;
    this.writeCache(applied.text);
    this.publish();
  }

  setInstances(byPool: Map<string, InstanceState[]>): void {
    this.instances = byPool;
    this.publish();
  }

  /** Loads the configuration an earlier run cached; returns a message saying what happened. */
  loadCache(): string {
    if (this.cacheFile === undefined) return 'no cache file is configured';
    let text: string;
    try {
      text = readFileSync(this.cacheFile, 'utf8');
    } catch (error) {
      return `cannot read the cache ${this.cacheFile}: ${(error as Error).message}`;
    }
    try {
      this.config = validateConfigText(text, `the cached configuration ${this.cacheFile}`);
    } catch (error) {
      return (error as Error).message;
    }
    this.configRevision = undefined;
    this.publish();
    return `serving the configuration cached in ${this.cacheFile} until the store answers`;
  }

  private publish(): void {
    const next = this.build();
    const signature = JSON.stringify(next);
    if (signature === this.signature) return;
    this.signature = signature;
    this.snapshot = next;
    for (const listener of this.listeners) listener(next);
  }

  private build(): PoolSnapshot {
    if (this.config === undefined) return EMPTY;
    return { pools: this.config.pools.map((pool) => this.withInstances(pool)), routes: this.config.routes };
  }

  private withInstances(pool: PoolConfig): PoolConfig {
    if (pool.autoscale === undefined) return pool;
    const addresses = [...new Set((this.instances.get(pool.name) ?? []).map((instance) => instance.address))].sort();
    return { ...pool, backends: addresses.map((address) => ({ address, weight: 1, priority: 0 })) };
  }

  private writeCache(text: string): void {
    if (this.cacheFile === undefined) return;
    try {
      mkdirSync(dirname(this.cacheFile), { recursive: true });
      const temporary = `${this.cacheFile}.tmp`;
      writeFileSync(temporary, text);
      renameSync(temporary, this.cacheFile);
    } catch {
      // A cache that cannot be written only matters at the next start without the store.
    }
  }
}
