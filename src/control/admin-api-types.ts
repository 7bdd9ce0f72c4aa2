// The control plane's admin API, as the dashboard reads it (the contract in docs/dashboard.md):
//   GET  /api/overview                                   Overview
//   GET  /api/events?since=<ISO or ms>&pool=&limit=      { events: ApiEvent[] } (newest last)
//   GET  /api/stream                                     SSE: `event: overview` (about once a second), `event: event` (one ApiEvent)
//   POST /api/autoscale/freeze     { pool?, reason }     { ok: true }
//   POST /api/autoscale/unfreeze   { pool? }             { ok: true }
//   POST /api/pools/<pool>/backends/<address>/drain      { ok: true }   (and /undrain)
// Errors: 4xx/5xx with ApiError.
//
// MERGE NOTE: the dashboard's src/ui/api-types.ts holds the same types (no runtime imports); once it
// is on main, this file re-exports from there instead of defining them.

export type BackendState = 'healthy' | 'unhealthy' | 'ejected' | 'draining' | 'drained' | 'unknown';

export interface Overview {
  generatedAt: string;
  store: { members: { id: string; name: string; clientUrls: string[]; isLeader: boolean; isLearner: boolean }[] };
  proxies: { id: string; address: string; requestsTotal: number; requestsPerSecond: number; p50Ms: number; p99Ms: number }[];
  pools: PoolOverview[];
  frozen: { global: boolean; by?: string; reason?: string };
}

export interface PoolOverview {
  name: string;
  balance: string;
  backends: BackendOverview[];
  shed: ShedOverview | null;
  autoscale: AutoscaleOverview | null;
}

export interface BackendOverview {
  address: string;
  zone?: string;
  state: BackendState;
  weight: number;
  /** 0-1: the effective weight's share of the configured one (slow start). */
  slowStartFactor: number;
  inflight: number;
  latencyEwmaMs: number | null;
  lastCheck: { at: string; ok: boolean; detail: string } | null;
}

export interface ShedOverview {
  algorithm: string;
  limit: number;
  inflight: number;
  queueLength: number;
  rejected: { critical: number; default: number; sheddable: number };
  shedding: boolean;
}

export interface AutoscaleOverview {
  desired: number;
  actual: number;
  min: number;
  max: number;
  frozen: boolean;
  frozenBy?: string;
  frozenReason?: string;
  leader?: string;
  lastDecisions: { at: string; desired: number; reasons: string[] }[];
}

export interface ApiEvent {
  at: string;
  kind: string;
  pool?: string;
  backend?: string;
  summary: string;
  details?: Record<string, unknown>;
}

export interface ApiError {
  error: { code: string; message: string };
}
