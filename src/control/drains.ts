// Operators' drains: /concord/drains/<pool>/<backend> (value {by, reason, atMs}). Every store-fed
// proxy stops sending the backend new requests while the key exists and puts it back when it is
// deleted; the flip is an event on the timeline, written in the same transaction. `concord pool
// drain|undrain`, the admin API (the dashboard's drain button) and etcdctl all work the same way.

import type { CoordStore } from '../coord/coord-store.ts';
import { instancesPrefix } from '../autoscale/state/keys.ts';
import { parseInstanceState } from '../autoscale/state/records.ts';
import type { ConcordConfig } from './config.ts';
import { EventTimeline } from './events.ts';
import { drainKey } from './store-keys.ts';

export class DrainError extends Error {
  override name = 'DrainError';
  readonly code = 'CONCORD_E_DRAIN_UNKNOWN_BACKEND';
}

export interface DrainRequest {
  pool: string;
  backend: string;
  by: string;
  reason?: string;
  draining: boolean;
  atMs: number;
}

/** The addresses a pool's backends have now: its static list, or its instances as the autoscaler records them. */
export async function poolAddresses(store: CoordStore, config: ConcordConfig, pool: string): Promise<string[] | undefined> {
  const poolConfig = config.pools.find((candidate) => candidate.name === pool);
  if (poolConfig === undefined) return undefined;
  if (poolConfig.autoscale === undefined) return poolConfig.backends.map((backend) => backend.address);
  const records = await store.range(instancesPrefix(pool), { prefix: true });
  return records.kvs.map((kv) => parseInstanceState(kv.value, kv.key)).filter((parsed) => parsed.ok).map((parsed) => (parsed as { value: { address: string } }).value.address);
}

/** Sets or clears a drain (and records it as an event); refuses pools and backends the configuration does not have. */
export async function setDrain(store: CoordStore, config: ConcordConfig | undefined, request: DrainRequest, writer: string): Promise<void> {
  if (config === undefined) throw new DrainError('no configuration is applied, so there is no pool to drain (concord config apply FILE)');
  const addresses = await poolAddresses(store, config, request.pool);
  if (addresses === undefined) throw new DrainError(`no pool named '${request.pool}' in the applied configuration (pools: ${config.pools.map((pool) => pool.name).join(', ') || 'none'})`);
  // Undraining a backend that left the pool must still be possible, to clean up its key.
  if (request.draining && !addresses.includes(request.backend)) throw new DrainError(`pool ${request.pool} has no backend ${request.backend} (backends: ${addresses.join(', ') || 'none'})`);
  const event = new EventTimeline(store, writer).op({
    atMs: request.atMs, source: 'operator', kind: request.draining ? 'drain-requested' : 'undrain-requested', pool: request.pool,
    message: `${request.backend}: ${request.by} ${request.draining ? 'drains it' : 'puts it back in rotation'}${request.reason === undefined || request.reason === '' ? '' : `: ${request.reason}`}`,
    data: { backend: request.backend, by: request.by },
  });
  const key = drainKey(request.pool, request.backend);
  await store.txn({
    compare: [],
    success: request.draining
      ? [{ kind: 'put', key, value: JSON.stringify({ by: request.by, reason: request.reason ?? '', atMs: request.atMs }) }, event]
      : [{ kind: 'delete', key }, event],
  });
}
