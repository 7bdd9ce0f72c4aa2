// Where the proxy's pools and routes come from. Today: the config file (static). Later (issue 8):
// the coordination store, which pushes changes as they are written; the proxy applies each
// snapshot live (new backends wait for a passing health check and then ramp up through slow start).

import type { PoolConfig, RouteConfig } from '../../control/config.ts';

export interface PoolSnapshot {
  readonly pools: readonly PoolConfig[];
  readonly routes: readonly RouteConfig[];
}

export interface PoolSource {
  /** The current pools and routes. */
  current(): PoolSnapshot;
  /** Calls `onChange` with every later snapshot; returns a function that stops watching. */
  watch(onChange: (snapshot: PoolSnapshot) => void): () => void;
}

export class StaticPoolSource implements PoolSource {
  private readonly snapshot: PoolSnapshot;

  constructor(snapshot: PoolSnapshot) {
    this.snapshot = snapshot;
  }

  current(): PoolSnapshot {
    return this.snapshot;
  }

  watch(): () => void {
    return () => {};
  }
}
