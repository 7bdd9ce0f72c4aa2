// A stand-in for the control plane's admin HTTP server, for the dashboard's own tests: it serves the
// real page (src/ui/static-files.ts) and the API contract (docs/dashboard.md) from a model the test
// changes at will, and records every freeze, unfreeze, drain and undrain the page sends.
//
// It follows the contract's rules for requests (JSON content type on POSTs, bounded bodies, checked
// query parameters), so a page that breaks them fails here too. With `auth` it plays a control
// plane whose store has authentication on (the contract's "identities" section): users with
// passwords, cookie sessions from POST /api/login, 401 without one, 403 for a user the store would
// not let write, 415 for a cookie-authenticated POST that is not JSON. Error codes the contract
// names are used as named (CONCORD_E_FREEZE_INVALID, CONCORD_E_API_UNAUTHENTICATED,
// CONCORD_E_API_PERMISSION_DENIED, CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE); the others are the
// stub's own (CONCORD_E_STUB_...): the real codes are the control plane's to define.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { LoginRequestBody, Overview, SessionInfo, TimelineEntry } from '../../src/ui/api-types.ts';
import { createStaticFilesHandler } from '../../src/ui/static-files.ts';

/** POST bodies larger than this are refused. */
const MAX_BODY_BYTES = 16 * 1024;
const EVENTS_LIMIT_DEFAULT = 200;
const EVENTS_LIMIT_MAX = 1_000;
const MAX_REASON_LENGTH = 1_000;
const DRAIN_PATH = /^\/api\/pools\/([^/]+)\/backends\/([^/]+)\/(drain|undrain)$/;
/** The cookie POST /api/login sets (the contract's name). */
const SESSION_COOKIE = 'concord_session';
/** Requests remembered in `requests` (the oldest are forgotten). */
const MAX_RECORDED_REQUESTS = 10_000;
/** Sessions held at once; a login past this forgets the oldest. */
const MAX_SESSIONS = 1_000;
/** Open to anyone, as the contract says, even with authentication on. */
const OPEN_API_PATHS = new Set(['/api/session', '/api/login', '/api/logout']);
const GLOBAL_FREEZE_KEY = '/concord/autoscale/freeze';

/** With authentication on, every recorded action carries `by`: the user it was done as. */
export interface RecordedFreeze {
  pool?: string;
  reason: string;
  by?: string;
}

export interface RecordedUnfreeze {
  pool?: string;
  by?: string;
}

export interface RecordedDrain {
  pool: string;
  address: string;
  action: 'drain' | 'undrain';
  by?: string;
}

/** A store user, for the stub's authentication mode. */
export interface StubUser {
  name: string;
  password: string;
  /** Whether the store would let this user write the keys the actions write (all or none, in the stub). */
  mayWrite: boolean;
}

export interface StubOptions {
  overview: Overview;
  events?: TimelineEntry[];
  /** How often the stream sends an overview (the real server: about once a second). */
  overviewIntervalMs?: number;
  /** The stub's clock, for generatedAt and recorded events. */
  nowMs?: () => number;
  /** Present: the store has authentication on, with these users. */
  auth?: { users: StubUser[] };
}

class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class StubControlPlane {
  /** The model the API serves; change it and the next overview shows it. */
  readonly overview: Overview;
  /** The timeline, oldest first. */
  readonly events: TimelineEntry[];
  readonly freezes: RecordedFreeze[] = [];
  readonly unfreezes: RecordedUnfreeze[] = [];
  readonly drains: RecordedDrain[] = [];
  /** Set to make the next drain or undrain fail with this answer (then it is cleared). */
  failNextDrain: { status: number; code: string; message: string } | null = null;
  /** While true, GET /api/stream answers 503 (the page must retry on its own). */
  refuseStreams = false;
  /** Every request received, as `METHOD /path` (no query), oldest first; at most MAX_RECORDED_REQUESTS. */
  readonly requests: string[] = [];
  url = '';

  private readonly server: Server;
  private readonly nowMs: () => number;
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly ticker: ReturnType<typeof setInterval>;
  private readonly users: ReadonlyMap<string, StubUser> | null;
  /** Session token -> user name (insertion order: the oldest first). */
  private readonly sessions = new Map<string, string>();

  private constructor(options: StubOptions) {
    this.overview = structuredClone(options.overview);
    this.events = [...(options.events ?? [])];
    this.nowMs = options.nowMs ?? Date.now;
    this.users = options.auth === undefined ? null : new Map(options.auth.users.map((user) => [user.name, user]));
    const staticFiles = createStaticFilesHandler();
    this.server = createServer((request, response) => {
      this.requests.push(`${request.method ?? 'GET'} ${new URL(request.url ?? '/', 'http://stub').pathname}`);
      if (this.requests.length > MAX_RECORDED_REQUESTS) this.requests.shift();
      if (staticFiles(request, response)) return;
      this.route(request, response).catch((error: unknown) => {
        const failure = error instanceof ApiFailure ? error : new ApiFailure(500, 'CONCORD_E_STUB_INTERNAL', (error as Error).message);
        sendJson(response, failure.status, { error: { code: failure.code, message: failure.message } });
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.ticker = setInterval(() => this.broadcast('overview', this.currentOverview()), options.overviewIntervalMs ?? 1_000);
  }

  static async start(options: StubOptions): Promise<StubControlPlane> {
    const stub = new StubControlPlane(options);
    await new Promise<void>((resolve, reject) => {
      stub.server.once('error', reject);
      stub.server.listen(0, '127.0.0.1', resolve);
    });
    stub.url = `http://127.0.0.1:${(stub.server.address() as AddressInfo).port}`;
    return stub;
  }

  /** Open event streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Adds requests to the first proxy's counter (what traffic through a real proxy would do). */
  addRequests(count: number): number {
    const proxy = this.overview.proxies[0];
    if (proxy === undefined) throw new Error('the stub overview has no proxy to count requests on');
    proxy.requestsTotal += count;
    return proxy.requestsTotal;
  }

  /** Records an event and sends it to every open stream, as the control plane does. */
  addEvent(event: Omit<TimelineEntry, 'at'> & { at?: string }): TimelineEntry {
    const entry: TimelineEntry = { ...event, at: event.at ?? new Date(this.nowMs()).toISOString() };
    this.events.push(entry);
    this.broadcast('event', entry);
    return entry;
  }

  /**
   * Ends every session, as an expiry or a restarted control plane does. A restart also cuts the
   * streams; `cutStreams: false` leaves them open, so the page meets the 401 on its next request.
   */
  expireSessions({ cutStreams = true }: { cutStreams?: boolean } = {}): void {
    this.sessions.clear();
    if (cutStreams) this.dropStreams();
  }

  /** Requests received since `from` (an index into `requests`) whose `METHOD /path` matches. */
  requestsSince(from: number, pattern: RegExp = /./): string[] {
    return this.requests.slice(from).filter((request) => pattern.test(request));
  }

  /** Cuts every open stream (a restart or a network blip, from the page's side). */
  dropStreams(): void {
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    this.dropStreams();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private currentOverview(): Overview {
    return { ...this.overview, generatedAt: new Date(this.nowMs()).toISOString() };
  }

  private broadcast(name: 'overview' | 'event', data: unknown): void {
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of this.streams) stream.write(frame);
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://stub');
    const method = request.method ?? 'GET';
    // The contract's defences against cross-site requests and DNS rebinding (docs/dashboard.md).
    if (request.headers.host !== new URL(this.url).host) throw new ApiFailure(421, 'CONCORD_E_STUB_BAD_REQUEST', `this server answers to ${new URL(this.url).host}, not '${request.headers.host}'`);
    const origin = request.headers.origin;
    if (method === 'POST' && origin !== undefined && origin !== this.url) throw new ApiFailure(403, 'CONCORD_E_STUB_FORBIDDEN', `requests from ${origin} are not accepted`);
    if (method === 'GET' && url.pathname === '/api/session') return sendJson(response, 200, this.sessionOf(request));
    if (method === 'POST' && url.pathname === '/api/login') return this.login(await readJsonBody(request), response);
    if (method === 'POST' && url.pathname === '/api/logout') return this.logout(request, response);
    const user = OPEN_API_PATHS.has(url.pathname) ? null : this.authenticate(request);
    if (method === 'POST' && url.pathname === '/api/autoscale/freeze') return this.freeze(await readJsonBody(request), user, response);
    if (method === 'POST' && url.pathname === '/api/autoscale/unfreeze') return this.unfreeze(await readJsonBody(request), user, response);
    if (method === 'GET' && url.pathname === '/api/overview') return sendJson(response, 200, this.currentOverview());
    if (method === 'GET' && url.pathname === '/api/events') return sendJson(response, 200, { events: this.queryEvents(url.searchParams) });
    if (method === 'GET' && url.pathname === '/api/stream') return this.openStream(response);
    const drain = DRAIN_PATH.exec(url.pathname);
    if (method === 'POST' && drain !== null) {
      const body = await readJsonBody(request);
      if (Object.keys(body).length > 0) throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', 'a drain takes an empty JSON object');
      return this.drain(decodeURIComponent(drain[1]!), decodeURIComponent(drain[2]!), drain[3] as 'drain' | 'undrain', user, response);
    }
    throw new ApiFailure(404, 'CONCORD_E_STUB_NOT_FOUND', `no ${method} ${url.pathname} here`);
  }

  /** The session cookie's user, when it names a live session. */
  private sessionUser(request: IncomingMessage): string | null {
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    return token === undefined ? null : (this.sessions.get(token) ?? null);
  }

  private sessionOf(request: IncomingMessage): SessionInfo {
    return { authRequired: this.users !== null, user: this.users === null ? null : this.sessionUser(request) };
  }

  /**
   * Who sends this request: null with authentication off; the session's or the Basic credentials'
   * user with it on, else 401.
   */
  private authenticate(request: IncomingMessage): StubUser | null {
    if (this.users === null) return null;
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(request.headers.authorization ?? '');
    if (basic !== null) {
      const [name, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      const user = this.users.get(name ?? '');
      if (user === undefined || user.password !== rest.join(':')) throw new ApiFailure(401, 'CONCORD_E_API_UNAUTHENTICATED', 'wrong user name or password');
      return user;
    }
    const hasCookie = cookieValue(request.headers.cookie, SESSION_COOKIE) !== undefined;
    const name = this.sessionUser(request);
    if (name === null) {
      throw new ApiFailure(401, 'CONCORD_E_API_UNAUTHENTICATED', hasCookie ? 'the session has expired or is unknown: sign in again' : 'the store has authentication on: sign in (POST /api/login) or send Basic credentials');
    }
    const user = this.users.get(name);
    if (user === undefined) throw new ApiFailure(401, 'CONCORD_E_API_UNAUTHENTICATED', `user ${name} no longer exists: sign in again`);
    if (request.method === 'POST' && !/^application\/json\b/.test(request.headers['content-type'] ?? '')) {
      throw new ApiFailure(415, 'CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE', 'a POST signed in by the session cookie must send application/json');
    }
    return user;
  }

  /** The store's answer to a write as `user`: 403 naming the key when the user may not write. */
  private checkWrite(user: StubUser | null, key: string): void {
    if (user !== null && !user.mayWrite) throw new ApiFailure(403, 'CONCORD_E_API_PERMISSION_DENIED', `user ${user.name} may not write ${key} (the store refused: etcdserver: permission denied)`);
  }

  private login(body: Record<string, unknown>, response: ServerResponse): void {
    if (this.users === null) throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', 'the store has authentication off: there is nothing to sign in to');
    if (typeof body.user !== 'string' || typeof body.password !== 'string' || body.user === '') throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', 'send { "user": string, "password": string }');
    const { user: name, password } = body as unknown as LoginRequestBody;
    const user = this.users.get(name);
    if (user === undefined || user.password !== password) throw new ApiFailure(401, 'CONCORD_E_API_UNAUTHENTICATED', 'wrong user name or password');
    const token = randomBytes(24).toString('base64url');
    this.sessions.set(token, user.name);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const info: SessionInfo = { authRequired: true, user: user.name };
    sendJson(response, 200, info, { 'set-cookie': `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/` });
  }

  private logout(request: IncomingMessage, response: ServerResponse): void {
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (token !== undefined) this.sessions.delete(token);
    const info: SessionInfo = { authRequired: this.users !== null, user: null };
    sendJson(response, 200, info, { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
  }

  private queryEvents(params: URLSearchParams): TimelineEntry[] {
    const sinceText = params.get('since');
    let sinceMs = Number.NEGATIVE_INFINITY;
    if (sinceText !== null) {
      sinceMs = /^\d+$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText);
      if (Number.isNaN(sinceMs)) throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', `since must be an ISO time or milliseconds since the epoch, got '${sinceText}'`);
    }
    const limitText = params.get('limit') ?? String(EVENTS_LIMIT_DEFAULT);
    const limit = Number(limitText);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > EVENTS_LIMIT_MAX) throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', `limit must be 1 to ${EVENTS_LIMIT_MAX}, got '${limitText}'`);
    const pool = params.get('pool');
    const matching = this.events.filter((event) => Date.parse(event.at) >= sinceMs && (pool === null || event.pool === pool));
    return matching.slice(-limit);
  }

  private openStream(response: ServerResponse): void {
    if (this.refuseStreams) throw new ApiFailure(503, 'CONCORD_E_STUB_UNAVAILABLE', 'the stub refuses streams right now');
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // A short retry keeps the tests quick; the real server leaves the browser's default (about 3 s).
    response.write(`retry: 300\n\nevent: overview\ndata: ${JSON.stringify(this.currentOverview())}\n\n`);
    this.streams.add(response);
    response.on('close', () => this.streams.delete(response));
  }

  private freeze(body: Record<string, unknown>, user: StubUser | null, response: ServerResponse): void {
    const pool = optionalPool(body);
    const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
    if (reason === '' || reason.length > MAX_REASON_LENGTH) throw new ApiFailure(400, 'CONCORD_E_FREEZE_INVALID', `a freeze needs a reason of 1 to ${MAX_REASON_LENGTH} characters`);
    if (pool !== undefined) this.poolAutoscale(pool);
    this.checkWrite(user, freezeKey(pool));
    const by = user?.name ?? 'dashboard';
    this.freezes.push({ ...(pool === undefined ? {} : { pool }), reason, ...byOf(user) });
    if (pool === undefined) this.overview.frozen = { global: true, by, reason };
    else Object.assign(this.poolAutoscale(pool), { frozen: true, frozenBy: by, frozenReason: reason });
    this.addEvent({ kind: 'freeze-set', ...(pool === undefined ? {} : { pool }), summary: `${by} froze the autoscaler for ${pool ?? 'every pool'}: ${reason}` });
    sendJson(response, 200, { ok: true });
  }

  private unfreeze(body: Record<string, unknown>, user: StubUser | null, response: ServerResponse): void {
    const pool = optionalPool(body);
    if (pool !== undefined) this.poolAutoscale(pool);
    this.checkWrite(user, freezeKey(pool));
    this.unfreezes.push({ ...(pool === undefined ? {} : { pool }), ...byOf(user) });
    if (pool === undefined) this.overview.frozen = { global: false };
    else {
      const autoscale = this.poolAutoscale(pool);
      autoscale.frozen = false;
      delete autoscale.frozenBy;
      delete autoscale.frozenReason;
    }
    this.addEvent({ kind: 'freeze-cleared', ...(pool === undefined ? {} : { pool }), summary: `${user?.name ?? 'dashboard'} unfroze the autoscaler for ${pool ?? 'every pool'}` });
    sendJson(response, 200, { ok: true });
  }

  private drain(poolName: string, address: string, action: 'drain' | 'undrain', user: StubUser | null, response: ServerResponse): void {
    if (this.failNextDrain !== null) {
      const failure = this.failNextDrain;
      this.failNextDrain = null;
      throw new ApiFailure(failure.status, failure.code, failure.message);
    }
    const backend = this.overview.pools.find((pool) => pool.name === poolName)?.backends.find((candidate) => candidate.address === address);
    if (backend === undefined) throw new ApiFailure(404, 'CONCORD_E_STUB_NOT_FOUND', `pool ${poolName} has no backend ${address}`);
    this.checkWrite(user, `/concord/drains/${poolName}/${address}`);
    this.drains.push({ pool: poolName, address, action, ...byOf(user) });
    backend.state = action === 'drain' ? 'draining' : 'healthy';
    this.addEvent({ kind: action === 'drain' ? 'drain-started' : 'drain-cancelled', pool: poolName, backend: address, summary: `${user?.name ?? 'dashboard'} ${action === 'drain' ? 'started draining' : 'undrained'} ${address}` });
    sendJson(response, 200, { ok: true });
  }

  private poolAutoscale(name: string) {
    const autoscale = this.overview.pools.find((pool) => pool.name === name)?.autoscale;
    if (autoscale === undefined || autoscale === null) throw new ApiFailure(404, 'CONCORD_E_STUB_NOT_FOUND', `pool ${name} is not autoscaled`);
    return autoscale;
  }
}

/** The store key a freeze or unfreeze writes (src/autoscale/state/keys.ts). */
function freezeKey(pool: string | undefined): string {
  return pool === undefined ? GLOBAL_FREEZE_KEY : `${GLOBAL_FREEZE_KEY}/${pool}`;
}

/** `{ by }` for a recorded action with authentication on; nothing without, so the records stay as they were. */
function byOf(user: StubUser | null): { by?: string } {
  return user === null ? {} : { by: user.name };
}

/** A cookie's value from a Cookie header, or undefined. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

function optionalPool(body: Record<string, unknown>): string | undefined {
  if (body.pool === undefined) return undefined;
  if (typeof body.pool !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(body.pool)) throw new ApiFailure(400, 'CONCORD_E_FREEZE_INVALID', 'pool must be a pool name');
  return body.pool;
}

async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\b/.test(type)) throw new ApiFailure(415, 'CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE', `send the body as application/json, not '${type}'`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiFailure(413, 'CONCORD_E_STUB_BAD_REQUEST', `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiFailure(400, 'CONCORD_E_STUB_BAD_REQUEST', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers }).end(text);
}

/** An overview with two pools (one autoscaled and shedding, one static), three members and one proxy. */
export function sampleOverview(nowMs: number): Overview {
  const at = (agoMs: number) => new Date(nowMs - agoMs).toISOString();
  return {
    generatedAt: at(0),
    store: {
      members: [
        { id: '8e9e05c52164694d', name: 'member-a', clientUrls: ['http://127.0.0.1:2379'], isLeader: true, isLearner: false },
        { id: '91bc3c398fb3c146', name: 'member-b', clientUrls: ['http://127.0.0.1:22379'], isLeader: false, isLearner: false },
        { id: 'fd422379fda50e48', name: 'member-c', clientUrls: ['http://127.0.0.1:32379'], isLeader: false, isLearner: true },
      ],
    },
    proxies: [{ id: 'proxy-1', address: '127.0.0.1:8080', requestsTotal: 1_200, requestsPerSecond: 41.5, p50Ms: 3.2, p99Ms: 48 }],
    pools: [
      {
        name: 'web',
        balance: 'p2c',
        backends: [
          { address: '127.0.0.1:9101', zone: 'a', state: 'healthy', weight: 1, slowStartFactor: 1, inflight: 3, latencyEwmaMs: 12.5, lastCheck: { at: at(2_000), ok: true, detail: 'status 200' } },
          { address: '127.0.0.1:9102', zone: 'b', state: 'healthy', weight: 1, slowStartFactor: 0.35, inflight: 1, latencyEwmaMs: 30, lastCheck: { at: at(1_000), ok: true, detail: 'status 200' } },
          { address: '127.0.0.1:9103', zone: 'b', state: 'unhealthy', weight: 1, slowStartFactor: 1, inflight: 0, latencyEwmaMs: null, lastCheck: { at: at(1_500), ok: false, detail: 'timed out after 1000 ms' } },
        ],
        shed: { algorithm: 'gradient2', limit: 40, inflight: 38, queueLength: 5, rejected: { critical: 0, default: 12, sheddable: 340 }, shedding: true },
        autoscale: {
          desired: 4, actual: 3, min: 2, max: 10, frozen: false, leader: 'controller-a',
          lastDecisions: [
            { at: at(30_000), desired: 3, reasons: ['inflightPerInstance 7.6 within 10 % of target 8: hold'] },
            { at: at(15_000), desired: 4, reasons: ['inflightPerInstance 11.2 > target 8: out to 4', 'rate limit: +4 per 15 s allows it'] },
          ],
        },
      },
      {
        name: 'api',
        balance: 'ewma',
        backends: [{ address: '127.0.0.1:9201', state: 'healthy', weight: 2, slowStartFactor: 1, inflight: 0, latencyEwmaMs: 4.1, lastCheck: null }],
        shed: null,
        autoscale: null,
      },
    ],
    frozen: { global: false },
  };
}

/** A few events of both pools, oldest first. */
export function sampleEvents(nowMs: number): TimelineEntry[] {
  const at = (agoMs: number) => new Date(nowMs - agoMs).toISOString();
  return [
    { at: at(60_000), kind: 'leader-elected', summary: 'controller-a leads the autoscaler (fencing token 41)' },
    { at: at(20_000), kind: 'marked-down', pool: 'web', backend: '127.0.0.1:9103', summary: '127.0.0.1:9103 marked down after 3 failed checks (detected in 2.1 s)', details: { detectionMs: 2_100, cause: 'active:http' } },
    { at: at(15_000), kind: 'decision', pool: 'web', summary: 'desired 3 -> 4: inflightPerInstance 11.2 > target 8' },
    { at: at(5_000), kind: 'marked-up', pool: 'api', backend: '127.0.0.1:9201', summary: '127.0.0.1:9201 marked up' },
  ];
}
