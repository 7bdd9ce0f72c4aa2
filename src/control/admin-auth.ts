// Who calls an admin API, when the coordination store has authentication on (src/ui/api-types.ts,
// "identities"): the store's own users, checked by the store. A caller sends HTTP Basic
// credentials (the CLI, Prometheus) or the `concord_session` cookie that POST /api/login set (the
// page). The password is checked with Auth.Authenticate on the store, and the token the store hands
// back is what the caller's mutating actions are written with, so the store's role permissions
// decide what each user may do. With authentication off on the store, nobody is asked for anything.
//
// Limits (named, documented in docs/control-plane.md "Authentication and TLS"):
// * MAX_ADMIN_SESSIONS sessions and Basic credentials are remembered at once; the least recently
//   used is forgotten when a new one comes;
// * a session, or remembered Basic credentials, unused for SESSION_IDLE_MS ends (below the store's
//   token TTL, etcd's default 5 minutes, so a live session's token is alive too); a live stream
//   keeps its session in use, and the token of every session in use is touched on the store every
//   TOKEN_TOUCH_INTERVAL_MS so the store keeps it;
// * at most MAX_FAILED_LOGINS_PER_WINDOW failed sign-ins per FAILED_LOGIN_WINDOW_MS and at most
//   MAX_CONCURRENT_LOGINS password checks at once, over every caller: beyond, 429 at once (the
//   store is not asked), so the endpoint cannot be used to make the store check passwords at will;
// * whether the store has authentication on is asked again at most every AUTH_PROBE_INTERVAL_MS,
//   so an `etcdctl auth enable` takes effect within that long.
//
// Secrets: passwords are never stored (Basic credentials are remembered by their SHA-256), and no
// message, log line or answer here contains a password, a token or a session id.

import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CoordStore } from '../coord/coord-store.ts';
import { ApiProblem } from './api-problem.ts';

export const MAX_ADMIN_SESSIONS = 1_000;
export const SESSION_IDLE_MS = 4 * 60_000;
export const TOKEN_TOUCH_INTERVAL_MS = 60_000;
export const MAX_FAILED_LOGINS_PER_WINDOW = 20;
export const FAILED_LOGIN_WINDOW_MS = 60_000;
export const MAX_CONCURRENT_LOGINS = 4;
export const AUTH_PROBE_INTERVAL_MS = 5_000;
/** The contract's cookie name. */
export const SESSION_COOKIE = 'concord_session';
/** A user name or password longer than this many characters is refused before the store is asked. */
const MAX_CREDENTIAL_CHARS = 1_024;
/** Any key: a call with a token renews the token's TTL on the member even when the read is not permitted. */
const TOKEN_TOUCH_KEY = '/concord/';

/** What the authenticator needs of the store (EtcdCoordStore has it). */
export interface IdentityStore {
  authEnabled(): Promise<boolean>;
  authenticate(user: string, password: string): Promise<string>;
  asToken(token: string): CoordStore;
}

/** The store as an IdentityStore, when it is one (EtcdCoordStore is; test doubles of CoordStore are not). */
export function identityStoreOf(store: CoordStore): IdentityStore | undefined {
  const candidate = store as Partial<IdentityStore>;
  return typeof candidate.authEnabled === 'function' && typeof candidate.authenticate === 'function' && typeof candidate.asToken === 'function' ? (candidate as IdentityStore) : undefined;
}

/** A caller the store vouched for. */
export interface Caller {
  user: string;
  /** The store as this user: its writes are checked against the user's roles. */
  store: CoordStore;
  /** How the request proved it: the cookie (then a POST must be JSON) or Basic credentials. */
  via: 'cookie' | 'basic';
}

interface Entry {
  user: string;
  token: string;
  lastUsedMs: number;
  lastTouchedMs: number;
  openStreams: number;
}

export interface AdminAuthenticatorOptions {
  nowMs?: () => number;
  /** Tests shorten the limits; production uses the named defaults. */
  limits?: Partial<{ sessionIdleMs: number; probeIntervalMs: number; maxSessions: number; maxFailedLogins: number }>;
}

const UNAUTHENTICATED = 'CONCORD_E_API_UNAUTHENTICATED';

export class AdminAuthenticator {
  private readonly store: IdentityStore;
  private readonly nowMs: () => number;
  private readonly limits: { sessionIdleMs: number; probeIntervalMs: number; maxSessions: number; maxFailedLogins: number };
  /** Sessions ('s:' + id) and remembered Basic credentials ('b:' + SHA-256), least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private readonly failedLoginsAtMs: number[] = [];
  private loginsInFlight = 0;
  private authOn: { value: boolean; atMs: number } | undefined;
  private probing: Promise<boolean> | undefined;
  private readonly sweeper: NodeJS.Timeout;

  constructor(store: IdentityStore, options: AdminAuthenticatorOptions = {}) {
    this.store = store;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.limits = {
      sessionIdleMs: options.limits?.sessionIdleMs ?? SESSION_IDLE_MS,
      probeIntervalMs: options.limits?.probeIntervalMs ?? AUTH_PROBE_INTERVAL_MS,
      maxSessions: options.limits?.maxSessions ?? MAX_ADMIN_SESSIONS,
      maxFailedLogins: options.limits?.maxFailedLogins ?? MAX_FAILED_LOGINS_PER_WINDOW,
    };
    this.sweeper = setInterval(() => this.sweep(), Math.min(TOKEN_TOUCH_INTERVAL_MS, this.limits.sessionIdleMs));
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  /** Whether the store has authentication on (asked again at most every probeIntervalMs; the last answer stands while the store does not answer). */
  async authRequired(): Promise<boolean> {
    const known = this.authOn;
    if (known !== undefined && this.nowMs() - known.atMs < this.limits.probeIntervalMs) return known.value;
    this.probing ??= this.store.authEnabled().then(
      (value) => {
        this.authOn = { value, atMs: this.nowMs() };
        return value;
      },
      (error: unknown) => {
        if (known !== undefined) return known.value;
        throw error;
      },
    ).finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /**
   * The caller of `req`: undefined when it sent neither credentials nor a live session cookie.
   * Wrong Basic credentials are a 401 (they were checked, and failed).
   */
  async identify(req: IncomingMessage): Promise<Caller | undefined> {
    const basic = basicCredentials(req);
    if (basic !== undefined) return this.identifyBasic(basic.user, basic.password);
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const entry = id === undefined ? undefined : this.use(`s:${id}`);
    return entry === undefined ? undefined : this.callerOf(entry, 'cookie');
  }

  /** The caller, or a 401 that says what to send. */
  async require(req: IncomingMessage): Promise<Caller> {
    const caller = await this.identify(req);
    if (caller !== undefined) return caller;
    const hadCookie = cookieValue(req.headers.cookie, SESSION_COOKIE) !== undefined;
    throw new ApiProblem(401, UNAUTHENTICATED, hadCookie
      ? 'the session has expired or is unknown: sign in again (POST /api/login)'
      : 'the store has authentication on: sign in (POST /api/login with {"user", "password"}) or send Basic credentials of a store user');
  }

  /**
   * For admin ports whose actions are local (a proxy's drain or shed override): when the store has
   * authentication on, the caller must be a store user whom the store's roles allow to write `key`
   * (the key the cluster-wide form of the action writes). Asked of the store without writing: a
   * transaction whose compare never holds, with the put in its success branch (the store checks the
   * permissions of both branches before it evaluates the compare). Returns the user, or undefined
   * with authentication off; 401 and 403 (naming the key) otherwise.
   */
  async requireWrite(req: IncomingMessage, key: string): Promise<string | undefined> {
    if (!(await this.authRequired())) return undefined;
    const caller = await this.require(req);
    try {
      await caller.store.txn({ compare: [{ key, target: 'version', result: '<', value: 0n }], success: [{ kind: 'put', key, value: '' }] });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'CONCORD_E_STORE_PERMISSION_DENIED') throw new ApiProblem(403, 'CONCORD_E_API_PERMISSION_DENIED', `user '${caller.user}' may not do this: the store's roles do not let it write ${key}`);
      if (code === 'CONCORD_E_STORE_AUTH_FAILED') {
        this.forget(req);
        throw new ApiProblem(401, UNAUTHENTICATED, `the store no longer accepts the credentials of user '${caller.user}': send them again`);
      }
      throw error;
    }
    return caller.user;
  }

  /** Checks the password with the store; returns a new session's id (for the cookie). */
  async login(user: string, password: string): Promise<string> {
    const token = await this.checkPassword(user, password);
    const id = randomBytes(32).toString('base64url');
    this.remember(`s:${id}`, user, token);
    return id;
  }

  logout(req: IncomingMessage): void {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (id !== undefined) this.entries.delete(`s:${id}`);
  }

  /** Forgets the caller's session or credentials (the store no longer accepts its token). */
  forget(req: IncomingMessage): void {
    const basic = basicCredentials(req);
    if (basic !== undefined) this.entries.delete(`b:${digest(basic.user, basic.password)}`);
    else this.logout(req);
  }

  /** Keeps the caller's session in use while `res` (a live stream) is open. */
  holdWhileOpen(req: IncomingMessage, res: ServerResponse): void {
    const basic = basicCredentials(req);
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const key = basic !== undefined ? `b:${digest(basic.user, basic.password)}` : id === undefined ? undefined : `s:${id}`;
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (entry === undefined) return;
    entry.openStreams += 1;
    res.once('close', () => {
      entry.openStreams -= 1;
      entry.lastUsedMs = this.nowMs();
    });
  }

  /** `Set-Cookie` for a new session (Secure over TLS). */
  static sessionCookie(id: string, secure: boolean): string {
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }

  static clearedCookie(secure: boolean): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
  }

  // -------------------------------------------------------------------------------------------

  private async identifyBasic(user: string, password: string): Promise<Caller> {
    const key = `b:${digest(user, password)}`;
    const known = this.use(key);
    if (known !== undefined) return this.callerOf(known, 'basic');
    const token = await this.checkPassword(user, password);
    return this.callerOf(this.remember(key, user, token), 'basic');
  }

  /** Auth.Authenticate on the store, within the failed-login and concurrency bounds. */
  private async checkPassword(user: string, password: string): Promise<string> {
    if (user === '' || password === '' || user.length > MAX_CREDENTIAL_CHARS || password.length > MAX_CREDENTIAL_CHARS) {
      throw new ApiProblem(401, UNAUTHENTICATED, 'wrong user name or password');
    }
    const now = this.nowMs();
    while (this.failedLoginsAtMs.length > 0 && now - this.failedLoginsAtMs[0]! >= FAILED_LOGIN_WINDOW_MS) this.failedLoginsAtMs.shift();
    if (this.failedLoginsAtMs.length >= this.limits.maxFailedLogins) {
      const retryS = Math.max(1, Math.ceil((FAILED_LOGIN_WINDOW_MS - (now - this.failedLoginsAtMs[0]!)) / 1000));
      throw new ApiProblem(429, 'CONCORD_E_API_TOO_MANY_LOGINS', `${this.limits.maxFailedLogins} sign-ins failed in the last ${FAILED_LOGIN_WINDOW_MS / 1000} s; try again in ${retryS} s`, { 'retry-after': String(retryS) });
    }
    if (this.loginsInFlight >= MAX_CONCURRENT_LOGINS) {
      throw new ApiProblem(429, 'CONCORD_E_API_TOO_MANY_LOGINS', `${MAX_CONCURRENT_LOGINS} sign-ins are being checked already; try again in a second`, { 'retry-after': '1' });
    }
    this.loginsInFlight += 1;
    try {
      return await this.store.authenticate(user, password);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'CONCORD_E_STORE_AUTH_FAILED') throw error;
      this.failedLoginsAtMs.push(this.nowMs());
      throw new ApiProblem(401, UNAUTHENTICATED, 'wrong user name or password');
    } finally {
      this.loginsInFlight -= 1;
    }
  }

  private remember(key: string, user: string, token: string): Entry {
    const now = this.nowMs();
    const entry: Entry = { user, token, lastUsedMs: now, lastTouchedMs: now, openStreams: 0 };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.limits.maxSessions) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  /** The live entry under `key`, marked as just used (and moved to the most recently used end). */
  private use(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.nowMs();
    if (this.idle(entry, now)) {
      this.entries.delete(key);
      return undefined;
    }
    entry.lastUsedMs = now;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private idle(entry: Entry, now: number): boolean {
    return entry.openStreams === 0 && now - entry.lastUsedMs >= this.limits.sessionIdleMs;
  }

  private callerOf(entry: Entry, via: Caller['via']): Caller {
    return { user: entry.user, store: this.store.asToken(entry.token), via };
  }

  /** Ends idle entries; touches the tokens of the others on the store so it keeps them. */
  private sweep(): void {
    const now = this.nowMs();
    for (const [key, entry] of this.entries) {
      if (this.idle(entry, now)) {
        this.entries.delete(key);
        continue;
      }
      if (now - entry.lastTouchedMs < TOKEN_TOUCH_INTERVAL_MS) continue;
      entry.lastTouchedMs = now;
      this.store.asToken(entry.token).range(TOKEN_TOUCH_KEY, { countOnly: true, limit: 1 }).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === 'CONCORD_E_STORE_AUTH_FAILED') this.entries.delete(key);
      });
    }
  }
}

function digest(user: string, password: string): string {
  return createHash('sha256').update(user).update('\0').update(password).digest('hex');
}

/** `Authorization: Basic base64(user:password)`; undefined when absent or not Basic. */
export function basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match === null) throw new ApiProblem(401, UNAUTHENTICATED, 'the Authorization header must be Basic base64(user:password)');
  const text = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon === -1) throw new ApiProblem(401, UNAUTHENTICATED, 'the Basic credentials must be base64(user:password)');
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) {
      const value = rest.join('=');
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}
