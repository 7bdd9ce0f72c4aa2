// The control plane's admin API, as the dashboard reads it. The contract is the dashboard's
// src/ui/api-types.ts (types only, shared by the page and this server; docs/dashboard.md describes
// it); this file gives its types the names the control plane's code uses.
//   GET  /api/overview                                   Overview
//   GET  /api/events?since=<ISO or ms>&pool=&limit=      EventsResponse (newest last)
//   GET  /api/stream                                     SSE: `event: overview` (about once a second), `event: event` (one TimelineEntry)
//   POST /api/autoscale/freeze     { pool?, reason }     { ok: true }
//   POST /api/autoscale/unfreeze   { pool? }             { ok: true }
//   POST /api/pools/<pool>/backends/<address>/drain      { ok: true }   (and /undrain)
// Errors: 4xx/5xx with ErrorResponse.

export type {
  AutoscaleOverview, BackendOverview, BackendState, EventsResponse, Overview, PoolOverview, ShedOverview,
  ErrorResponse as ApiError, TimelineEntry as ApiEvent,
} from '../ui/api-types.ts';
