// The control plane's admin HTTP server (controlPlane.admin, default 127.0.0.1:7070): the API the
// dashboard reads (admin-api-types.ts has the contract), the event timeline, and Prometheus
// metrics for every component hosted in this process.
//
//   GET  /api/overview, /api/events, /api/stream (SSE)     the dashboard's data
//   POST /api/autoscale/freeze|unfreeze                     the autoscaler's kill switch
//   POST /api/pools/<pool>/backends/<address>/drain|undrain  drains, through the store, on every proxy
//   GET  /metrics                                           Prometheus text of every hosted component
//   GET  /events?since=&pool=&limit=                        the timeline as stored (TimelineEvent JSON)
//   GET  /ready                                             200 while the control plane runs
//   GET  / and /ui/*                                        the dashboard's page (src/ui/static-files.ts)
//   GET  /api/session, POST /api/login|logout               identities, when the store has authentication on
//
// With authentication on in the store, every endpoint but /api/session, /api/login, /api/logout,
// /ready and the page's files needs a store identity (admin-auth.ts); mutating actions are written
// with the caller's own token, so the store's roles decide (403 naming the key), and their events
// name the caller. With it off, nothing is asked and x-concord-operator names who acts.
//
// Errors are JSON: { "error": { "code": "CONCORD_E_...", "message": "..." } }. Request bodies are
// bounded (maxBodyBytes), and so are live streams (maxStreamClients; a client that does not read
// is dropped once maxStreamBufferBytes are waiting for it).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { CoordStore } from '../coord/coord-store.ts';
import { AdminAuthenticator, type Caller } from './admin-auth.ts';
import type { ApiError, ApiEvent, Overview } from './admin-api-types.ts';
import type { TimelineEvent } from './events.ts';
import type { StaticFilesHandler } from '../ui/static-files.ts';
import { ApiProblem } from './api-problem.ts';

export { ApiProblem } from './api-problem.ts';

export const MAX_BODY_BYTES = 16 * 1024;
export const DEFAULT_MAX_STREAM_CLIENTS = 100;
export const MAX_STREAM_BUFFER_BYTES = 1024 * 1024;
export const OVERVIEW_STREAM_INTERVAL_MS = 1_000;
/** Events one /api/events or /events answer holds at most. */
export const MAX_EVENTS_PER_ANSWER = 10_000;
export const DEFAULT_EVENTS_PER_ANSWER = 500;

export interface EventQuery {
  sinceMs?: number;
  untilMs?: number;
  pool?: string;
  limit: number;
}

/** What the admin server asks of the control plane. */
export interface AdminApiBackend {
  overview(): Promise<Overview>;
  events(query: EventQuery): Promise<TimelineEvent[]>;
  /** Calls `listener` with every new timeline event; returns the unsubscription. */
  subscribe(listener: (event: TimelineEvent) => void): () => void;
  /** Mutating actions: `store`, when given, is the caller's own identity on the store (its roles decide). */
  freeze(request: { pool?: string; reason: string; by: string; store?: CoordStore }): Promise<void>;
  unfreeze(request: { pool?: string; by: string; store?: CoordStore }): Promise<void>;
  drain(request: { pool: string; backend: string; by: string; reason?: string; store?: CoordStore }): Promise<void>;
  undrain(request: { pool: string; backend: string; by: string; store?: CoordStore }): Promise<void>;
  metricsText(): Promise<string>;
}

/** The dashboard's static files (src/ui/static-files.ts: `/` and `/ui/*`); without it `/` says where the API is. */
export type { StaticFilesHandler } from '../ui/static-files.ts';

export interface AdminServerOptions {
  backend: AdminApiBackend;
  staticFiles?: StaticFilesHandler;
  maxStreamClients?: number;
  /** Asks callers for a store identity while the store has authentication on; absent: never. */
  auth?: AdminAuthenticator;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
}

/** Paths anyone may call, signed in or not. */
const OPEN_API_PATHS = new Set(['/api/session', '/api/login', '/api/logout']);

/** Whether `path` needs an identity when the store has authentication on (the page's files and /ready do not). */
function isProtected(path: string): boolean {
  return (path.startsWith('/api/') && !OPEN_API_PATHS.has(path)) || path === '/metrics' || path === '/events';
}

/** A timeline event as the dashboard reads it. */
export function apiEventOf(event: TimelineEvent): ApiEvent {
  const data = (typeof event.data === 'object' && event.data !== null && !Array.isArray(event.data) ? event.data : undefined) as Record<string, unknown> | undefined;
  const backend = typeof data?.backend === 'string' && data.backend !== '*' ? data.backend : undefined;
  return {
    at: new Date(event.atMs).toISOString(),
    kind: event.kind,
    ...(event.pool === undefined ? {} : { pool: event.pool }),
    ...(backend === undefined ? {} : { backend }),
    summary: event.message,
    details: { source: event.source, by: event.by, ...(data ?? {}) },
  };
}

export class AdminServer {
  readonly server: Server;
  private readonly options: AdminServerOptions;
  private readonly streams = new Set<ServerResponse>();
  private overviewTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(options: AdminServerOptions) {
    this.options = options;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => this.fail(req, res, error));
    };
    this.server = options.tls === undefined ? createServer(handler) : createTlsServer({ cert: options.tls.cert, key: options.tls.key }, handler);
  }

  /** http or https. */
  get scheme(): 'http' | 'https' {
    return this.options.tls === undefined ? 'http' : 'https';
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  address(): { address: string; port: number } {
    return this.server.address() as { address: string; port: number };
  }

  async close(): Promise<void> {
    clearInterval(this.overviewTimer);
    this.options.auth?.stop();
    this.unsubscribe?.();
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (OPEN_API_PATHS.has(path)) return this.handleIdentity(req, res, method, path);
    const caller = isProtected(path) ? await this.callerOf(req, method) : undefined;
    const actor = { by: caller?.user ?? operatorOf(req), ...(caller === undefined ? {} : { store: caller.store }) };
    // Only POSTs act as the caller on the store; reads are the control plane's own.
    await asCaller(method === 'POST' ? caller : undefined, () => this.route(req, res, url, method, path, actor));
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, method: string, path: string, actor: { by: string; store?: CoordStore }): Promise<void> {
    const action = /^\/api\/pools\/([^/]+)\/backends\/([^/]+)\/(drain|undrain)$/.exec(path);
    if (action !== null) {
      requireMethod(method, 'POST');
      const [pool, backend] = [decodeURIComponent(action[1]!), decodeURIComponent(action[2]!)];
      const body = await readJson(req, true);
      if (action[3] === 'drain') await this.options.backend.drain({ pool, backend, ...actor, ...(typeof body.reason === 'string' ? { reason: body.reason } : {}) });
      else await this.options.backend.undrain({ pool, backend, ...actor });
      return sendJson(res, 200, { ok: true });
    }
    switch (path) {
      case '/api/overview':
        requireMethod(method, 'GET');
        return sendJson(res, 200, await this.options.backend.overview());
      case '/api/events': {
        requireMethod(method, 'GET');
        const events = await this.options.backend.events(eventQuery(url));
        return sendJson(res, 200, { events: events.map(apiEventOf) });
      }
      case '/api/stream':
        requireMethod(method, 'GET');
        if (actor.store !== undefined) this.options.auth?.holdWhileOpen(req, res);
        return this.openStream(req, res);
      case '/api/autoscale/freeze': {
        requireMethod(method, 'POST');
        const body = await readJson(req, false);
        if (typeof body.reason !== 'string' || body.reason.trim() === '') throw new ApiProblem(400, 'CONCORD_E_FREEZE_INVALID', 'a freeze needs a reason: send {"reason": "...", "pool": "NAME" (optional)}');
        await this.options.backend.freeze({ ...poolOf(body), reason: body.reason, ...actor });
        return sendJson(res, 200, { ok: true });
      }
      case '/api/autoscale/unfreeze': {
        requireMethod(method, 'POST');
        const body = await readJson(req, true);
        await this.options.backend.unfreeze({ ...poolOf(body), ...actor });
        return sendJson(res, 200, { ok: true });
      }
      case '/metrics':
        requireMethod(method, 'GET');
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(await this.options.backend.metricsText());
        return;
      case '/events': {
        requireMethod(method, 'GET');
        return sendJson(res, 200, { events: await this.options.backend.events(eventQuery(url)) });
      }
      case '/ready':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
        return;
      default:
        if (this.options.staticFiles?.(req, res) === true) return;
        if (path === '/') {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Concord control plane. The dashboard is not bundled in this build; the API is at /api/overview, /api/events, /api/stream; metrics at /metrics.\n');
          return;
        }
        throw new ApiProblem(404, 'CONCORD_E_API_NOT_FOUND', `no such endpoint ${method} ${path}; see /api/overview, /api/events, /api/stream, /metrics, /events`);
    }
  }

  /** The caller when the store has authentication on (401 without an identity; 415 for a cookie POST that is not JSON); undefined when it is off. */
  private async callerOf(req: IncomingMessage, method: string): Promise<Caller | undefined> {
    const auth = this.options.auth;
    if (auth === undefined || !(await auth.authRequired())) return undefined;
    const caller = await auth.require(req);
    if (caller.via === 'cookie' && method === 'POST' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new ApiProblem(415, 'CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE', 'a POST signed in by the session cookie must send content-type: application/json');
    }
    return caller;
  }

  /** GET /api/session, POST /api/login, POST /api/logout: each answers a SessionInfo. */
  private async handleIdentity(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const auth = this.options.auth;
    const required = auth === undefined ? false : await auth.authRequired();
    const secure = this.options.tls !== undefined;
    if (path === '/api/session') {
      requireMethod(method, 'GET');
      const caller = required ? await auth!.identify(req).catch(() => undefined) : undefined;
      return sendJson(res, 200, { authRequired: required, user: caller?.user ?? null });
    }
    requireMethod(method, 'POST');
    if (path === '/api/logout') {
      auth?.logout(req);
      return sendJson(res, 200, { authRequired: required, user: null }, { 'set-cookie': AdminAuthenticator.clearedCookie(secure) });
    }
    const body = await readJson(req, false);
    if (typeof body.user !== 'string' || typeof body.password !== 'string') throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', 'send {"user": "NAME", "password": "..."}');
    if (!required) return sendJson(res, 200, { authRequired: false, user: null });
    const id = await auth!.login(body.user, body.password);
    return sendJson(res, 200, { authRequired: true, user: body.user }, { 'set-cookie': AdminAuthenticator.sessionCookie(id, secure) });
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    const max = this.options.maxStreamClients ?? DEFAULT_MAX_STREAM_CLIENTS;
    if (this.streams.size >= max) throw new ApiProblem(503, 'CONCORD_E_API_TOO_MANY_STREAMS', `${max} live streams are open already (maxStreamClients); close one, or poll /api/overview`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.streams.add(res);
    req.socket.setNoDelay(true);
    res.once('close', () => this.streams.delete(res));
    this.ensureStreaming();
    void this.sendOverview([res]);
  }

  private ensureStreaming(): void {
    this.unsubscribe ??= this.options.backend.subscribe((event) => this.broadcast('event', JSON.stringify(apiEventOf(event))));
    this.overviewTimer ??= setInterval(() => {
      if (this.streams.size > 0) void this.sendOverview([...this.streams]);
    }, OVERVIEW_STREAM_INTERVAL_MS);
    this.overviewTimer.unref();
  }

  private async sendOverview(targets: ServerResponse[]): Promise<void> {
    let text: string;
    try {
      text = JSON.stringify(await this.options.backend.overview());
    } catch {
      return; // the next tick tries again; the page keeps what it has
    }
    for (const res of targets) this.send(res, 'overview', text);
  }

  private broadcast(name: string, data: string): void {
    for (const res of this.streams) this.send(res, name, data);
  }

  private send(res: ServerResponse, name: string, data: string): void {
    if (!this.streams.has(res)) return;
    if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
      // A client that does not read: dropped rather than buffered without bound (it reconnects).
      this.streams.delete(res);
      res.destroy();
      return;
    }
    res.write(`event: ${name}\ndata: ${data}\n\n`);
  }

  private fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const problem = error instanceof ApiProblem ? error : problemOf(error);
    // The store no longer accepts the caller's token (expired, or the member restarted): sign in again.
    if (problem.status === 401 && problem.code === 'CONCORD_E_API_UNAUTHENTICATED') this.options.auth?.forget(req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body: ApiError = { error: { code: problem.code, message: problem.message } };
    sendJson(res, problem.status, body, problem.headers);
  }
}

/** Runs a request's work; the store's refusals of the caller's own token become 401 and 403 naming the user. */
async function asCaller(caller: Caller | undefined, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (caller === undefined || (code !== 'CONCORD_E_STORE_PERMISSION_DENIED' && code !== 'CONCORD_E_STORE_AUTH_FAILED')) throw error;
    if (code === 'CONCORD_E_STORE_AUTH_FAILED') throw new ApiProblem(401, 'CONCORD_E_API_UNAUTHENTICATED', `the store no longer accepts the session of user '${caller.user}' (its token expired, or the member restarted): sign in again`);
    throw new ApiProblem(403, 'CONCORD_E_API_PERMISSION_DENIED', `user '${caller.user}' may not do this: ${(error as Error).message}`);
  }
}

/** Expected failures of the operations behind the API keep their code; the store being down is a 503. */
function problemOf(error: unknown): ApiProblem {
  const code = String((error as { code?: unknown }).code ?? '');
  const message = (error as Error).message;
  if (code === 'CONCORD_E_STORE_UNAVAILABLE') return new ApiProblem(503, code, message);
  if (code === 'CONCORD_E_FREEZE_INVALID') return new ApiProblem(400, code, message);
  if (code.startsWith('CONCORD_E_')) return new ApiProblem(500, code, message);
  return new ApiProblem(500, 'CONCORD_E_API_INTERNAL', `internal error: ${message}`);
}

function requireMethod(method: string, wanted: 'GET' | 'POST'): void {
  if (method === wanted || (wanted === 'GET' && method === 'HEAD')) return;
  throw new ApiProblem(405, 'CONCORD_E_API_METHOD_NOT_ALLOWED', `use ${wanted} here`);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
}

async function readJson(req: IncomingMessage, emptyAllowed: boolean): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiProblem(413, 'CONCORD_E_API_BODY_TOO_LARGE', `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') {
    if (emptyAllowed) return {};
    throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', 'send a JSON body');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', 'the body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', 'the body must be a JSON object');
  return json as Record<string, unknown>;
}

function poolOf(body: Record<string, unknown>): { pool?: string } {
  if (body.pool === undefined || body.pool === null || body.pool === '') return {};
  if (typeof body.pool !== 'string') throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', '"pool" must be a pool name');
  return { pool: body.pool };
}

/** Who acts through the API: an x-concord-operator header, else the dashboard at the client's address. */
function operatorOf(req: IncomingMessage): string {
  const given = req.headers['x-concord-operator'];
  if (typeof given === 'string' && /^[\x20-\x7e]{1,200}$/.test(given)) return given;
  return `dashboard@${req.socket.remoteAddress ?? 'unknown'}`;
}

/** ?since= (ISO time or ms since the epoch, or a duration back from now such as 1h), &until=, &pool=, &limit=. */
export function eventQuery(url: URL): EventQuery {
  const query: EventQuery = { limit: DEFAULT_EVENTS_PER_ANSWER };
  const since = url.searchParams.get('since');
  if (since !== null && since !== '') query.sinceMs = timeOf(since, 'since');
  const until = url.searchParams.get('until');
  if (until !== null && until !== '') query.untilMs = timeOf(until, 'until');
  const pool = url.searchParams.get('pool');
  if (pool !== null && pool !== '') query.pool = pool;
  const limit = url.searchParams.get('limit');
  if (limit !== null) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_EVENTS_PER_ANSWER) throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', `limit must be a whole number from 1 to ${MAX_EVENTS_PER_ANSWER}`);
    query.limit = Number(limit);
  }
  return query;
}

/** A point in time: milliseconds since the epoch, an ISO date, or a duration ago (90s, 15m, 1h, 2d). */
export function parseTimePoint(text: string, nowMs: number): number | undefined {
  if (/^\d{1,16}$/.test(text)) return Number(text);
  const ago = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (ago !== null) return nowMs - Number(ago[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function timeOf(text: string, name: string): number {
  const value = parseTimePoint(text, Date.now());
  if (value === undefined) throw new ApiProblem(400, 'CONCORD_E_API_BAD_REQUEST', `${name} must be an ISO time, milliseconds since the epoch, or a duration ago such as 1h`);
  return value;
}
