// Identities on the store (etcd's authentication: users, passwords, simple tokens). A client with
// credentials authenticates once (Auth.Authenticate), sends the token as the `token` gRPC metadata
// on every call and stream, and when the store refuses it ("invalid auth token": it expired, or the
// member restarted; "user name is empty": authentication was turned on after we connected)
// authenticates again once and retries the call once. A second refusal is an error, never a loop.
//
// Each call runs in a scope (AsyncLocalStorage) that says whose identity it carries: this client's
// own (the credentials), a fixed token (a user signed in to the admin API: the store's role
// permissions decide what that user may do), or none (Authenticate itself, and the probe of
// whether the store has authentication on). The etcd3 connection pool asks this class for the
// metadata of every call (it is installed as the pool's authenticator), so the scope decides.
//
// Secrets: the password is kept in memory only; no message built here contains it or a token.

import { AsyncLocalStorage } from 'node:async_hooks';
import { CoordError } from './coord-store.ts';
import { toCoordError } from './etcd-errors.ts';

export interface StoreCredentials {
  user: string;
  password: string;
}

/** After a failed authentication, calls fail at once with the same error for this long (a wrong password must not make every call cost the store a password check). */
export const AUTH_FAILURE_HOLD_MS = 1_000;

/** The gRPC metadata object of the etcd3 client's own grpc-js copy (it tells metadata from options by class). */
export interface CallMetadata {
  set(key: string, value: string): void;
  clone(): CallMetadata;
}

type Identity = { kind: 'own' } | { kind: 'token'; token: string } | { kind: 'anonymous' };

interface CallScope {
  identity: Identity;
  /** The token the call sent last ('' for none). */
  sentToken: string | undefined;
  /** The store refused the token: the next metadata request fails, so the etcd3 client's own retry does not loop. */
  refused: boolean;
}

/** Thrown from the metadata hook after the store refused a token; the store's call wrapper renews or reports. */
class TokenRefused extends Error {
  override name = 'TokenRefused';
}

const REFUSED_TOKEN = /invalid auth token/i;
const NO_USER = /user name is empty/i;
const AUTH_NOT_ENABLED = /authentication is not enabled/i;

export interface StoreAuthenticatorSettings {
  credentials?: StoreCredentials;
  /** Auth.Authenticate on the store, sent with no token. */
  authenticate: (user: string, password: string) => Promise<string>;
  /** A fresh, empty metadata object of the client's grpc-js. */
  emptyMetadata: () => Promise<CallMetadata>;
  nowMs: () => number;
  /** For messages: how long a request may take. */
  requestTimeoutMs: number;
}

export class StoreAuthenticator {
  private readonly settings: StoreAuthenticatorSettings;
  private readonly scopes = new AsyncLocalStorage<CallScope>();
  /** The current token; '' when the store has authentication off; undefined until authenticated. */
  private token: string | undefined;
  private pending: Promise<string> | undefined;
  private failure: { error: CoordError; atMs: number } | undefined;

  constructor(settings: StoreAuthenticatorSettings) {
    this.settings = settings;
  }

  /** The user this client authenticates as, if any. */
  get user(): string | undefined {
    return this.settings.credentials?.user;
  }

  /** The user the current call acts as, for messages: this client's own user, unless the call carries another identity. */
  actingUser(): string | undefined {
    const identity = this.scopes.getStore()?.identity;
    return identity === undefined || identity.kind === 'own' ? this.user : undefined;
  }

  /** Runs `work` as a call with its own scope; the identity is the enclosing scope's unless given. */
  run<T>(work: () => Promise<T>, identity?: Identity): Promise<T> {
    const inherited = identity ?? this.scopes.getStore()?.identity ?? { kind: 'own' };
    return this.scopes.run({ identity: inherited, sentToken: undefined, refused: false }, work);
  }

  /** Runs `work` as `token`'s user (a signed-in user of the admin API), on this client's connections. */
  runAsToken<T>(token: string, work: () => Promise<T>): Promise<T> {
    return this.run(work, { kind: 'token', token });
  }

  runAnonymous<T>(work: () => Promise<T>): Promise<T> {
    return this.run(work, { kind: 'anonymous' });
  }

  /** The token the current scope's call sent last (for streams, which cannot be retried by the call wrapper). */
  sentToken(): string | undefined {
    return this.scopes.getStore()?.sentToken;
  }

  /**
   * After `error`, is one more attempt worth it? True (and the refused token forgotten) when the
   * store refused this client's own token or asked for one; false for a fixed token, for a client
   * without credentials, and the second time in one call.
   */
  renewAfter(error: unknown, alreadyRenewed: boolean): boolean {
    const scope = this.scopes.getStore();
    const refused = error instanceof TokenRefused || REFUSED_TOKEN.test(messageOf(error)) || NO_USER.test(messageOf(error));
    if (!refused || alreadyRenewed || this.settings.credentials === undefined) return false;
    if (scope !== undefined && scope.identity.kind !== 'own') return false;
    this.forget(scope?.sentToken);
    if (scope !== undefined) {
      scope.refused = false;
      scope.sentToken = undefined;
    }
    return true;
  }

  /** A stream opened with `token` was refused (a watch cancelled as not permitted): forget the token if it is still current. */
  forget(token: string | undefined): void {
    if (token !== undefined && this.token === token) this.token = undefined;
  }

  /** The refusal as the caller should see it (a TokenRefused from the hook becomes the store's words). */
  describeRefusal(error: unknown): Error {
    if (!(error instanceof TokenRefused)) return error as Error;
    const scope = this.scopes.getStore();
    if (scope?.identity.kind === 'token') return new CoordError('CONCORD_E_STORE_AUTH_FAILED', 'the store no longer accepts this session\'s token (it expired, or the member restarted): sign in again');
    return new CoordError('CONCORD_E_STORE_AUTH_FAILED', `the store refused the token of user '${this.user ?? ''}' again right after a new authentication (a member that has not caught up?); the call can be retried`);
  }

  // ---- the etcd3 connection pool's authenticator interface --------------------------------------

  async getMetadata(): Promise<CallMetadata> {
    const scope = this.scopes.getStore();
    if (scope?.refused === true) throw new TokenRefused('the store refused the token');
    const identity = scope?.identity ?? { kind: 'own' };
    const token = identity.kind === 'token' ? identity.token : identity.kind === 'anonymous' ? '' : await this.ownToken();
    if (scope !== undefined) scope.sentToken = token;
    const metadata = (await this.settings.emptyMetadata()).clone();
    if (token !== '') metadata.set('token', token);
    return metadata;
  }

  /** The etcd3 client calls this on "invalid auth token" and then retries at once, without bound: the scope stops that loop. */
  invalidateMetadata(): void {
    const scope = this.scopes.getStore();
    if (scope !== undefined) scope.refused = true;
  }

  // -------------------------------------------------------------------------------------------

  private ownToken(): Promise<string> {
    const credentials = this.settings.credentials;
    if (credentials === undefined) return Promise.resolve('');
    if (this.token !== undefined) return Promise.resolve(this.token);
    if (this.failure !== undefined && this.settings.nowMs() - this.failure.atMs < AUTH_FAILURE_HOLD_MS) return Promise.reject(this.failure.error);
    this.pending ??= this.authenticateOwn(credentials).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async authenticateOwn(credentials: StoreCredentials): Promise<string> {
    try {
      const token = await this.runAnonymous(() => this.settings.authenticate(credentials.user, credentials.password));
      this.token = token;
      this.failure = undefined;
      return token;
    } catch (error) {
      // As etcd's own client: credentials for a store without authentication are not an error;
      // calls go without a token until the store asks for one (then this authenticates again).
      if (isAuthNotEnabled(error)) {
        this.token = '';
        return '';
      }
      const refusal = authenticationError(credentials.user, error, this.settings.requestTimeoutMs);
      if (refusal.code === 'CONCORD_E_STORE_AUTH_FAILED') this.failure = { error: refusal, atMs: this.settings.nowMs() };
      throw refusal;
    }
  }
}

/** The store answered that it has authentication off (etcd: "authentication is not enabled"). */
export function isAuthNotEnabled(error: unknown): boolean {
  return AUTH_NOT_ENABLED.test(messageOf(error));
}

function messageOf(error: unknown): string {
  return String((error as Error | null)?.message ?? error);
}

/** Authenticate's failure as a CoordError that names the user and never the password (nor carries the request as a cause). */
export function authenticationError(user: string, error: unknown, timeoutMs: number): CoordError {
  if (error instanceof CoordError) return error;
  if (/authentication failed|invalid user ID or password|user name not found/i.test(messageOf(error))) {
    return new CoordError('CONCORD_E_STORE_AUTH_FAILED', `the store refused user '${user}': wrong user name or password`);
  }
  const converted = toCoordError(error, `authentication of user '${user}'`, timeoutMs);
  return new CoordError(converted.code, converted.message);
}
