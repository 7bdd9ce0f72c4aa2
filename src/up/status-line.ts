// The compact live status `concord up` keeps on screen: one line a pool, from the same overview the
// dashboard shows, so the terminal and the page never disagree.
//
//   web  3/3 healthy · 42 req/s · p99 51 ms · shed 0 · instances 3 (want 3) · autoscaler leading
//
// A pure function of the overview, so it is tested without a terminal.

import type { Overview, PoolOverview } from '../control/admin-api-types.ts';

export function statusLines(overview: Overview): string[] {
  const proxy = overview.proxies[0];
  const traffic = proxy === undefined ? 'no proxy registered' : `${formatRate(proxy.requestsPerSecond)} req/s · p99 ${proxy.p99Ms === null ? "-" : formatMs(proxy.p99Ms)}`;
  if (overview.pools.length === 0) return [`no pools configured (concord config apply FILE) · ${traffic}`];
  const width = Math.max(...overview.pools.map((pool) => pool.name.length));
  return overview.pools.map((pool) => [pool.name.padEnd(width), backendsPart(pool), traffic, shedPart(pool), autoscalePart(pool, overview)].filter((part) => part !== '').join(' · '));
}

function backendsPart(pool: PoolOverview): string {
  const healthy = pool.backends.filter((backend) => backend.state === 'healthy').length;
  const counts = new Map<string, number>();
  for (const backend of pool.backends) if (backend.state !== 'healthy') counts.set(backend.state, (counts.get(backend.state) ?? 0) + 1);
  const others = [...counts].map(([state, count]) => `${count} ${state}`).join(', ');
  return `${healthy}/${pool.backends.length} healthy${others === '' ? '' : ` (${others})`}`;
}

function shedPart(pool: PoolOverview): string {
  if (pool.shed === null) return '';
  const rejected = pool.shed.rejected.critical + pool.shed.rejected.default + pool.shed.rejected.sheddable;
  return `${pool.shed.shedding ? 'SHEDDING' : 'shed'} ${rejected} (limit ${Math.round(pool.shed.limit)})`;
}

function autoscalePart(pool: PoolOverview, overview: Overview): string {
  const autoscale = pool.autoscale;
  if (autoscale === null) return '';
  const frozen = autoscale.frozen || overview.frozen.global ? ' · FROZEN' : '';
  return `instances ${autoscale.actual} (want ${autoscale.desired}, ${autoscale.min}-${autoscale.max})${frozen}`;
}

function formatRate(perSecond: number): string {
  return perSecond >= 100 ? String(Math.round(perSecond)) : perSecond.toFixed(1);
}

function formatMs(ms: number): string {
  return Number.isFinite(ms) ? `${ms >= 10 ? Math.round(ms) : ms.toFixed(1)} ms` : '-';
}
