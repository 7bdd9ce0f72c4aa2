// The dashboard's data contract: what the control plane's admin HTTP server answers and what the
// page (src/ui/browser) reads. One file, types only, shared by the server side (src/control) and
// the page (through JSDoc imports), so a renamed field breaks the type check on both sides.
// docs/dashboard.md describes every endpoint; this file is the authority on field names.
//
// Conventions: times are ISO 8601 strings in UTC (`2025-01-07T10:14:02.118Z`); durations are
// milliseconds with `Ms` in the name; counts are plain numbers; a value that is not known is `null`
// (the field is still there), an optional field (`?`) is one that only some objects have.

/** The health states a backend is in, as the proxy and the health checker name them. */
export type BackendState = 'healthy' | 'unhealthy' | 'ejected' | 'draining' | 'drained' | 'unknown';

/** Request priorities of the load shedder, from the last to shed to the first. */
export type ShedPriority = 'critical' | 'default' | 'sheddable';

/** `GET /api/overview`, and the data of every `event: overview` on `GET /api/stream`. */
export interface Overview {
  /** When the control plane assembled this overview. */
  generatedAt: string;
  store: StoreOverview;
  proxies: ProxyOverview[];
  pools: PoolOverview[];
  /** The global kill switch (`/concord/autoscale/freeze`). */
  frozen: GlobalFreeze;
}

export interface StoreOverview {
  members: StoreMember[];
}

export interface StoreMember {
  /** The member ID in hexadecimal, as etcdctl prints it (64-bit IDs do not fit a JSON number). */
  id: string;
  name: string;
  clientUrls: string[];
  isLeader: boolean;
  isLearner: boolean;
}

export interface ProxyOverview {
  id: string;
  /** Its traffic address (`HOST:PORT`). */
  address: string;
  /** Requests it has answered since it started (a counter: it only rises, unless the proxy restarts). */
  requestsTotal: number;
  requestsPerSecond: number;
  /** Latency percentiles over the proxy's recent window; null before any request. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface PoolOverview {
  name: string;
  /** The balancing algorithm (`p2c`, `ewma`, `round-robin`, ...). */
  balance: string;
  backends: BackendOverview[];
  /** Null when the pool has no load shedding configured. */
  shed: ShedOverview | null;
  /** Null when the pool is not autoscaled. */
  autoscale: AutoscaleOverview | null;
}

export interface BackendOverview {
  /** `HOST:PORT`; unique within its pool. */
  address: string;
  zone?: string;
  state: BackendState;
  /** The configured weight. */
  weight: number;
  /** Where slow start is: 1 when fully ramped (or slow start is off), 0.1 at the start of a ramp. */
  slowStartFactor: number;
  /** Requests in flight to this backend, over every proxy. */
  inflight: number;
  /** The peak-EWMA latency estimate; null before any sample. */
  latencyEwmaMs: number | null;
  /** The last active health check; null before the first (or without active checks). */
  lastCheck: LastCheck | null;
}

export interface LastCheck {
  at: string;
  ok: boolean;
  /** What the check saw: `status 200`, `timed out after 500 ms`, ... */
  detail: string;
}

export interface ShedOverview {
  /** The limit algorithm (`gradient2`, `aimd`, `fixed`, ...). */
  algorithm: string;
  /** The current concurrency limit. */
  limit: number;
  inflight: number;
  queueLength: number;
  /** Requests refused since the proxy started, by priority (counters). */
  rejected: Record<ShedPriority, number>;
  /** True while the pool refuses some requests. */
  shedding: boolean;
}

export interface AutoscaleOverview {
  /** What the autoscaler's last decision asked for. */
  desired: number;
  /** Instances that exist (starting, ready or draining). */
  actual: number;
  min: number;
  max: number;
  /** True when this pool is frozen, by its own kill switch or the global one. */
  frozen: boolean;
  frozenBy?: string;
  frozenReason?: string;
  /** The controller that leads (its name), when one does. */
  leader?: string;
  /** The last few decisions, oldest first. */
  lastDecisions: AutoscaleDecision[];
}

export interface AutoscaleDecision {
  at: string;
  desired: number;
  /** Why, in words: `inflightPerInstance 12.5 > target 8: out to 5`, `kill-switch: frozen by alice`. */
  reasons: string[];
}

export interface GlobalFreeze {
  global: boolean;
  by?: string;
  reason?: string;
}

/** `GET /api/events?since=<ISO or ms>&pool=<name>&limit=<n>`. */
export interface EventsResponse {
  /** Oldest first, newest last. */
  events: TimelineEntry[];
}

/** One event of the timeline, as the dashboard shows it (and as `event: event` on the stream carries it). */
export interface TimelineEntry {
  at: string;
  /** What happened: `marked-down`, `decision`, `freeze-set`, `leader-elected`, ... */
  kind: string;
  pool?: string;
  backend?: string;
  /** One line for a person. */
  summary: string;
  /** The event's data (a decision's inputs, a check's detail, detection time, ...). */
  details?: Record<string, unknown>;
}

/** `POST /api/autoscale/freeze`. Without `pool`, every pool freezes. */
export interface FreezeRequestBody {
  pool?: string;
  reason: string;
}

/** `POST /api/autoscale/unfreeze`. Without `pool`, the global freeze is lifted. */
export interface UnfreezeRequestBody {
  pool?: string;
}

/** The answer to every successful POST. */
export interface OkResponse {
  ok: true;
}

/** Every 4xx or 5xx answer of the API. */
export interface ErrorResponse {
  error: {
    /** A stable `CONCORD_E_...` code (docs/errors.md). */
    code: string;
    message: string;
  };
}

/** The names of the server-sent events on `GET /api/stream`. */
export type StreamEventName = 'overview' | 'event';

// ---- identities (when the coordination store has authentication on) ----------------------------
//
// With `etcdctl auth enable` done on the store, the control plane asks every caller of /api/*,
// /events and /metrics for one of the store's identities: HTTP Basic credentials (`Authorization:
// Basic base64(user:password)`, what the CLI and Prometheus send) or the session cookie that
// `POST /api/login` sets (what the page uses). `GET /api/session`, `POST /api/login`, `/ready` and
// the page's static files are open. A mutating action (freeze, unfreeze, drain, undrain) is written
// to the store *as that user*, so the store's own role permissions decide: the user needs write
// permission on the key the action writes (the 403's message names it). Every mutating action's
// event names the authenticated user in `by`.
//
// Errors: 401 `CONCORD_E_API_UNAUTHENTICATED` (no credentials, wrong ones, or an expired session:
// the page shows its sign-in form), 403 `CONCORD_E_API_PERMISSION_DENIED`. A POST authenticated by
// the cookie must have `content-type: application/json` (a cross-site form cannot send that without
// a CORS preflight, which this server never grants), else 415 `CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE`.
// The stream (`GET /api/stream`) is authenticated by the cookie like any GET.

/** `GET /api/session`, and the answer to `POST /api/login` and `POST /api/logout`. */
export interface SessionInfo {
  /** True when the store has authentication on, so the API needs an identity. */
  authRequired: boolean;
  /** Who this request is signed in as; null when nobody is (always null when authRequired is false). */
  user: string | null;
}

/** `POST /api/login`: a store user's name and password. The answer sets the `concord_session` cookie (HttpOnly, SameSite=Strict, Secure over TLS). */
export interface LoginRequestBody {
  user: string;
  password: string;
}
