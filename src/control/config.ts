// THE configuration file of every Concord command: one YAML document, validated with zod into
// typed objects. Each top-level section belongs to one area:
//   proxy:        this proxy (listen and admin addresses, zone, workers, timeouts, access log, store)
//   pools:        backend pools: backends, balancing, health checks, outlier detection, retries,
//                 load shedding (shed:) and autoscaling (autoscale:)
//   routes:       which pool serves a request (host and path prefix), when there are several pools
//   controlPlane: the control plane's own settings (src/control/control-plane-config.ts)
//   server:       a store member's settings, validated by src/server/server-config.ts
// Every problem is reported with its path (`pools[0].health.fall: must be at least 1`), all at
// once, and nothing starts half-configured. `concord config schema` prints the JSON Schema.

import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BALANCE_ALGORITHMS } from '../traffic/balance/types.ts';
import { parseStatusRanges, type StatusRanges } from '../traffic/probes/status-ranges.ts';
import { parseStoreLocation, STORE_URL_EXAMPLE } from '../coord/store-url.ts';
import { readConfigFileText } from '../server/config-file.ts';
import { ConfigError } from '../server/server-config.ts';
import { autoscaleSchema, refineAutoscaledPool } from './autoscale-config.ts';
import { controlPlaneSettingsSchema, MAX_HARD_MAX_INSTANCES } from './control-plane-config.ts';
import { shedConfigSchema } from './shed-config.ts';

// One ConfigError for every configuration Concord reads (the server's settings and this schema), so a
// caller's `instanceof ConfigError` holds whichever file refused.
export { ConfigError };

/** host:port, as written in the config: 127.0.0.1:8080, localhost:9001, [::1]:9001. */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses HOST:PORT (IPv6 in brackets); returns a message saying what is wrong instead of throwing. */
export function parseHostPort(text: string): HostPort | string {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return `'${text}' is not HOST:PORT (e.g. 127.0.0.1:9001, backend.internal:80, [::1]:9001)`;
  const port = Number(match[3]);
  if (port > 65535) return `'${text}': port ${port} is above 65535`;
  return { host: match[1] ?? match[2]!, port };
}

const positiveMs = (fallback: number) => z.number().int().positive('must be a positive number of milliseconds').default(fallback);
const atLeastOne = (fallback: number) => z.number().int().min(1, 'must be at least 1').default(fallback);
const percent = (fallback: number) => z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').default(fallback);

const hostPort = z.string({ error: 'must be HOST:PORT, e.g. 127.0.0.1:8080' }).superRefine((text, context) => {
  const parsed = parseHostPort(text);
  if (typeof parsed === 'string') context.addIssue({ code: 'custom', message: parsed });
});

const regexSource = z.string().superRefine((source, context) => {
  try {
    new RegExp(source);
  } catch (error) {
    context.addIssue({ code: 'custom', message: `does not compile as a regular expression: ${(error as Error).message}` });
  }
});

const statusRangesText = z.string().superRefine((text, context) => {
  try {
    parseStatusRanges(text);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** Port 0 (any free port) makes sense for a listener, never for a backend. */
const backendAddress = hostPort.refine((text) => !text.endsWith(':0'), 'a backend needs a real port, not 0');

const backendSchema = z.strictObject({
  address: backendAddress,
  zone: z.string().min(1).optional(),
  weight: z.number().positive('must be a positive number').max(1_000_000).default(1),
  /** 0 is the most preferred; higher priorities get traffic only when lower ones lack healthy capacity. */
  priority: z.number().int().min(0).max(100).default(0),
});

const httpCheckSchema = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'OPTIONS']).default('GET'),
  path: z.string().startsWith('/', 'must start with /').default('/'),
  host: z.string().min(1).optional(),
  expectStatus: statusRangesText.default('200-299'),
  /** The body must contain this text within the first bodyCheckBytes bytes. */
  expectBody: z.string().min(1).optional(),
  /** The body must match this regular expression within the first bodyCheckBytes bytes. */
  expectBodyRegex: regexSource.optional(),
  bodyCheckBytes: z.number().int().min(1).max(1024 * 1024).default(4096),
});

const healthSchema = z.strictObject({
  http: httpCheckSchema.optional(),
  tcp: z.strictObject({}).optional(),
  grpc: z.strictObject({ service: z.string().default('') }).optional(),
  intervalMs: positiveMs(5000),
  /** Interval while a backend is changing state (HAProxy's fastinter); defaults to half the interval. */
  fastIntervalMs: z.number().int().positive().optional(),
  timeoutMs: positiveMs(1000),
  rise: atLeastOne(2),
  fall: atLeastOne(3),
  jitterPercent: z.number().min(0).max(50, 'must be at most 50').default(10),
}).superRefine((health, context) => {
  const kinds = ['http', 'tcp', 'grpc'].filter((kind) => health[kind as 'http' | 'tcp' | 'grpc'] !== undefined);
  if (kinds.length !== 1) context.addIssue({ code: 'custom', message: `give exactly one check kind (http, tcp or grpc), found ${kinds.length === 0 ? 'none' : kinds.join(' and ')}` });
  if (health.timeoutMs > health.intervalMs) context.addIssue({ code: 'custom', path: ['timeoutMs'], message: `must not exceed intervalMs (${health.intervalMs})` });
});

const outlierSchema = z.strictObject({
  /** Consecutive 5xx that eject a backend; 0 turns this detector off. */
  consecutive5xx: z.number().int().min(0).default(5),
  consecutiveGatewayFailure: z.number().int().min(0).default(5),
  intervalMs: positiveMs(10_000),
  baseEjectionMs: positiveMs(30_000),
  maxEjectionMs: positiveMs(300_000),
  maxEjectionPercent: percent(50),
  successRate: z.strictObject({
    /** Requests a backend needs in an interval to be judged; 0 turns success-rate detection off. */
    requestVolume: z.number().int().min(0).default(100),
    minimumHosts: atLeastOne(5),
    stdevFactor: z.number().positive().default(1.9),
  }).prefault({}),
}).prefault({});

const slowStartSchema = z.strictObject({
  /** 0 turns slow start off. */
  windowMs: z.number().int().min(0).default(30_000),
  aggression: z.number().positive('must be positive').default(1),
  minWeightPercent: z.number().min(1, 'must be between 1 and 100').max(100, 'must be between 1 and 100').default(10),
}).prefault({});

const retrySchema = z.strictObject({
  /** Retries of one request after a retriable status or a failure once the backend was reached (0: none). */
  attempts: z.number().int().min(0).max(10).default(2),
  retryOn: z.array(z.number().int().min(500).max(599)).default([502, 503, 504]),
  /** Retries in flight may be at most this percentage of the requests in flight (Envoy's retry budget)... */
  budgetPercent: percent(20),
  /** ...or this many, whichever is larger, so a quiet pool can still retry. */
  minRetryConcurrency: z.number().int().min(0).default(3),
  /**
   * Retries of a request the backend never answered, outside the budget, at most this many: refused
   * or connect timeout (any method), or connection lost before any response byte (idempotent only).
   */
  unansweredAttempts: z.number().int().min(0).max(10).default(3),
  backoffBaseMs: z.number().int().min(0).default(25),
  backoffMaxMs: z.number().int().min(0).default(250),
}).prefault({});

const timeoutsSchema = z.strictObject({
  connectMs: positiveMs(2000),
  /** From the request sent to the response headers: a backend slower than this gets 504. */
  firstByteMs: positiveMs(30_000),
  /** Longest silence between two chunks of a response body. */
  idleMs: positiveMs(60_000),
}).prefault({});

const hashSchema = z.strictObject({
  header: z.string().min(1).optional(),
  cookie: z.string().min(1).optional(),
  path: z.literal(true).optional(),
}).superRefine((hash, context) => {
  const count = [hash.header, hash.cookie, hash.path].filter((value) => value !== undefined).length;
  if (count !== 1) context.addIssue({ code: 'custom', message: 'give exactly one of header: NAME, cookie: NAME or path: true' });
});

// ---- POOL SECTIONS owned by other areas -----------------------------------------------------
//   shed:      admission control (load shedding), src/control/shed-config.ts
//   autoscale: the autoscaler, src/control/autoscale-config.ts. A pool with autoscale takes its
//              backends from the provider (no static backends). Its max is checked here against the
//              largest ceiling there can be, and against controlPlane.autoscale.hardMaxInstances
//              in the whole file's check below (the ceiling lives in another section).
export const POOL_SECTIONS = {
  shed: shedConfigSchema.optional(),
  autoscale: autoscaleSchema({ hardMaxInstances: MAX_HARD_MAX_INSTANCES }).optional(),
};
// ----------------------------------------------------------------------------------------------

const poolSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'use letters, digits, . _ - (at most 63)'),
  balance: z.enum(BALANCE_ALGORITHMS).default('p2c'),
  hash: hashSchema.optional(),
  backends: z.array(backendSchema).default([]),
  health: healthSchema.optional(),
  outlierDetection: outlierSchema,
  slowStart: slowStartSchema,
  /** Below this percentage of healthy backends, health is ignored (0 turns panic off). */
  panicThresholdPercent: percent(50),
  retries: retrySchema,
  timeouts: timeoutsSchema,
  /** How long an admin drain waits for in-flight requests. */
  drainTimeoutMs: positiveMs(30_000),
  /**
   * How the proxy talks to the backends: http1 (keep-alive connection pools), or h2c (HTTP/2 without
   * TLS, one multiplexed connection per backend; what gRPC backends speak). Trailers are relayed.
   */
  upstreamProtocol: z.enum(['http1', 'h2c']).default('http1'),
  /**
   * http1 only: connections to one backend. More requests than this wait in the connection pool's
   * queue (bounded by the client's patience and, with issue 6, by per-backend circuit breakers).
   */
  maxConnectionsPerBackend: z.number().int().min(1).max(100_000).default(1024),
  /** h2c only: concurrent streams per backend connection. */
  maxConcurrentStreams: z.number().int().min(1).max(10_000).default(100),
  /** Largest request body forwarded to this pool (413 above it); absent: proxy.maxRequestBodyBytes. 0 for no limit. */
  maxRequestBodyBytes: z.number().int().min(0).optional(),
  ...POOL_SECTIONS,
}).superRefine((pool, context) => {
  if (pool.balance === 'hash' && pool.hash === undefined) context.addIssue({ code: 'custom', path: ['hash'], message: 'balance: hash needs hash: { header: NAME } (or cookie: NAME, or path: true)' });
  if (pool.balance !== 'hash' && pool.hash !== undefined) context.addIssue({ code: 'custom', path: ['hash'], message: `only used with balance: hash (balance is ${pool.balance})` });
  if (pool.backends.length === 0 && pool.autoscale === undefined) context.addIssue({ code: 'custom', path: ['backends'], message: 'a pool needs at least one backend (or an autoscale: section that launches them)' });
  refineAutoscaledPool(pool, context);
  const seen = new Set<string>();
  pool.backends.forEach((backend, index) => {
    if (seen.has(backend.address)) context.addIssue({ code: 'custom', path: ['backends', index, 'address'], message: `${backend.address} is listed twice` });
    seen.add(backend.address);
  });
});

const routeSchema = z.strictObject({
  /** Exact Host header (without port), or *.example.com for any subdomain; any host when absent. */
  host: z.string().min(1).optional(),
  pathPrefix: z.string().startsWith('/', 'must start with /').default('/'),
  pool: z.string().min(1),
});

function storeLocationProblem(text: string): string | undefined {
  try {
    parseStoreLocation(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * `store: etcd://10.0.0.1:2379,...` or `store: { url: etcds://..., caFile, certFile, keyFile, user, passwordFile }`.
 * A store with authentication on needs `user` and `passwordFile` (never the password itself in the file).
 */
const storeSchema = z.union([
  z.string(),
  z.strictObject({
    url: z.string(), caFile: z.string().min(1).optional(), certFile: z.string().min(1).optional(), keyFile: z.string().min(1).optional(),
    user: z.string().min(1).regex(/^[^:]+$/, 'is the user name alone: the password goes in a file named by passwordFile').optional(),
    passwordFile: z.string().min(1).optional(),
  }),
], { error: `must be a store location such as ${STORE_URL_EXAMPLE}, or { url, caFile, certFile, keyFile, user, passwordFile }` })
  .superRefine((store, context) => {
    const problem = storeLocationProblem(typeof store === 'string' ? store : store.url);
    if (problem !== undefined) context.addIssue({ code: 'custom', path: typeof store === 'string' ? [] : ['url'], message: problem });
    if (typeof store !== 'string' && (store.user === undefined) !== (store.passwordFile === undefined)) {
      context.addIssue({ code: 'custom', path: [store.user === undefined ? 'user' : 'passwordFile'], message: 'user and passwordFile go together: the store user to act as, and a file holding its password' });
    }
  })
  .transform((store) => (typeof store === 'string' ? { url: store } : store));

const proxySchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:8080'),
  admin: hostPort.default('127.0.0.1:9901'),
  /** The proxy's own zone: backends there are preferred (locality-aware routing). */
  zone: z.string().min(1).optional(),
  /** Worker processes sharing the listen port (1: the proxy runs in one process). */
  workers: z.number().int().min(1).max(64).default(1),
  accessLog: z.boolean().default(true),
  /**
   * A second, cleartext listener for HTTP/2 with prior knowledge (h2c), as gRPC clients without TLS
   * speak; the same pools and routes serve it.
   */
  h2cListen: hostPort.optional(),
  /** TLS termination: PEM files. With it the listener speaks HTTPS, HTTP/1.1 and HTTP/2 (ALPN). */
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /** Header carrying the request id: kept when the client sent one, else generated. */
  requestIdHeader: z.string().min(1).toLowerCase().default('x-request-id'),
  /** On SIGTERM: stop accepting, give in-flight requests this long, then exit. */
  shutdownDrainMs: positiveMs(30_000),
  /** A client connection with no request in progress is closed after this long. */
  clientIdleMs: positiveMs(60_000),
  /** A request head must arrive in full within this long of its first byte (else 408: slowloris). */
  headersTimeoutMs: positiveMs(60_000),
  /**
   * Plain HTTP/1.1 requests in a strict, common subset are read and forwarded by the proxy's own
   * HTTP/1.1 code on raw sockets; the rest goes through node:http and undici (docs/proxy.md, "Fast path").
   */
  fastPath: z.boolean().default(true),
  /**
   * Largest request body forwarded, for pools that set none of their own; 0 for no limit. A declared
   * Content-Length is checked before anything is forwarded; a body without one (chunked, HTTP/2) is
   * counted as it passes and the request is cut off with 413 once it goes over.
   */
  maxRequestBodyBytes: z.number().int().min(0).default(0),
  /** Largest request head (request line and headers); 431 above it, on the fast path and on node:http alike. */
  maxHeaderBytes: z.number().int().min(1024, 'must be at least 1024').max(1024 * 1024, 'must be at most 1048576').default(16_384),
  /** Open client connections per traffic listener (per worker process); more are closed as soon as they are accepted. */
  maxClientConnections: atLeastOne(10_000),
  /** Probes running at once, across all pools. */
  maxConcurrentChecks: atLeastOne(64),
  /** Health events kept for /events (oldest dropped first). */
  maxEvents: atLeastOne(1000),
  /**
   * Take pools, routes, health results and instances from the coordination store (the applied
   * configuration) instead of this file's pools: etcd://host:2379,... or etcds://... with TLS files.
   */
  store: storeSchema.optional(),
  /** This proxy's name in the store (proxy registrations, events); default host-pid. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "use letters, digits, '.', '_', '-' (at most 63), starting with a letter or digit").optional(),
}).prefault({});

// ---- TOP-LEVEL SECTIONS: each area adds its own here -------------------------------------------
const configSchema = z.strictObject({
  proxy: proxySchema,
  pools: z.array(poolSchema).default([]),
  routes: z.array(routeSchema).default([]),
  controlPlane: controlPlaneSettingsSchema.prefault({}),
  /** A store member's settings; validated by src/server/server-config.ts when `concord server` reads them. */
  server: z.record(z.string(), z.unknown()).optional(),
}).superRefine((config, context) => {
  const names = new Set<string>();
  const ceiling = config.controlPlane.autoscale.hardMaxInstances;
  config.pools.forEach((pool, index) => {
    if (names.has(pool.name)) context.addIssue({ code: 'custom', path: ['pools', index, 'name'], message: `pool '${pool.name}' is defined twice` });
    names.add(pool.name);
    if (pool.autoscale !== undefined && pool.autoscale.max > ceiling) {
      context.addIssue({
        code: 'custom', path: ['pools', index, 'autoscale', 'max'],
        message: `max (${pool.autoscale.max}) is above the control plane's ceiling autoscale.hardMaxInstances (${ceiling}): lower max, or raise controlPlane.autoscale.hardMaxInstances`,
      });
    }
  });
  config.routes.forEach((route, index) => {
    if (!names.has(route.pool)) context.addIssue({ code: 'custom', path: ['routes', index, 'pool'], message: `no pool named '${route.pool}' (pools: ${[...names].join(', ') || 'none'})` });
  });
  if (config.pools.length > 1 && config.routes.length === 0) {
    context.addIssue({ code: 'custom', path: ['routes'], message: 'several pools need routes: [{ host, pathPrefix, pool }] to choose between them' });
  }
});

export type ConcordConfig = z.output<typeof configSchema>;
export type PoolConfig = z.output<typeof poolSchema>;
export type ProxySettings = z.output<typeof proxySchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type StoreSettings = z.output<typeof storeSchema>;

/** The JSON Schema of the configuration file, for editors (what `concord config schema` prints). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'Concord configuration', description: 'One YAML file for every Concord command: proxy, pools, routes, controlPlane, server. See docs/control-plane.md.' };
}

/** `pools[0].health.fall` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text === '' ? String(key) : `${text}.${String(key)}`), '');
}

/** Validates a parsed YAML document; throws a ConfigError listing every problem by path. */
export function validateConfig(document: unknown, source = 'config'): ConcordConfig {
  const parsed = configSchema.safeParse(document ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${formatPath(issue.path) || '(top level)'}: ${issue.message}`);
    throw new ConfigError(`${source} is invalid:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

export function parseConfigText(text: string, source = 'config'): ConcordConfig {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    // The yaml package's first line names the problem with its line and column; the rest is a code frame.
    throw new ConfigError(`${source} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return validateConfig(document, source);
}

/** Reads the file untrusted (bounded before it is read, strict UTF-8; src/server/config-file.ts) and validates it. */
export function loadConfigFile(path: string): ConcordConfig {
  return parseConfigText(readConfigFileText(path), `config file ${path}`);
}

/** The parsed forms the proxy uses, derived once from a validated config. */
export function addressOf(text: string): HostPort {
  const parsed = parseHostPort(text);
  if (typeof parsed === 'string') throw new ConfigError(`bug: unvalidated address ${parsed}`);
  return parsed;
}

export function expectedStatusOf(health: HealthConfig): StatusRanges {
  return parseStatusRanges(health.http?.expectStatus ?? '200-299');
}
