// Who is calling, for every etcd service of a member: etcd's AuthInfoFromCtx and the checks its API
// layer makes before a request goes anywhere. One gate per member, shared by all services, so that
// every service resolves tokens and checks permissions the same way (services.ts builds it).
//
// * With auth disabled, every call is anonymous and nothing is checked here (but a token the member
//   does not know is refused, as etcd 3.4 refuses it); a write still carries the anonymous
//   requester, so that it is refused ("user name is empty") if auth was enabled by the time it is
//   applied.
// * With auth enabled, a call without a token is anonymous, unless the member requires client
//   certificates (--client-cert-auth): then the certificate's common name is the user (etcd's
//   AuthInfoFromTLS; the way users created with --no-password log in). A call with a token that is
//   unknown, expired, or belongs to a user that was deleted or changed password fails with "invalid
//   auth token" (UNAUTHENTICATED), which makes etcd clients authenticate again and retry.
// * The requester of a write travels in the proposal (the user name and the auth revision seen
//   here, never the token) and is checked when the command is applied, on every member alike.
//
// The table of tokens learns them from applied Authenticate commands, so every member knows every
// token (auth-tokens.ts). A member may get a token before it has applied the Authenticate that
// issued it (the client authenticated through another member a moment ago): a call with a token the
// member does not know first waits for the member to catch up (catchUpFor), so that a token is good
// on every member as soon as Authenticate answers, and clients that spread calls over all members
// are not sent to authenticate again in a loop.

import type { Metadata } from '@grpc/grpc-js';
import { KvError } from '../../kv/errors.ts';
import type { ApplyResult, KvStateMachine } from '../../kv/state-machine.ts';
import type { AuthStore } from '../../kv/auth/auth-store.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';
import { ANONYMOUS_REQUESTER } from '../../kv/auth/auth-types.ts';
import type { TokenTableLimits } from './auth-tokens.ts';
import { TokenTable } from './auth-tokens.ts';
import type { EtcdServiceContext } from './service-context.ts';

/** etcd reads the token from this metadata key (rpctypes.TokenFieldNameGRPC)... */
const TOKEN_METADATA_KEY = 'token';
/** ...or from this one, which its HTTP gateway sets (rpctypes.TokenFieldNameSwagger). */
const GATEWAY_TOKEN_METADATA_KEY = 'authorization';
/**
 * Calls at most waiting at once for the member to catch up with a token it does not know; beyond
 * this, a call with an unknown token is refused at once (a client sending made-up tokens costs at
 * most this many read barriers in flight).
 */
export const MAX_TOKEN_CATCH_UPS = 1_000;

export interface AuthGateOptions {
  tokens?: Partial<TokenTableLimits>;
}

/**
 * What the gate reads of a call (any gRPC server call has both): its metadata, for the token, and
 * its TLS peer, for the client certificate's common name.
 */
export interface CallIdentity {
  readonly metadata: Metadata;
  /** `metadata.get(key)[0]`, from a call that can read it without building its metadata (the unary fast path's). */
  firstMetadataValue?(key: string): string | Buffer | undefined;
  getAuthContext(): { sslPeerCertificate?: { subject?: { CN?: string | string[] } } };
}

export class AuthGate {
  readonly tokens: TokenTable;
  private readonly stateMachine: () => KvStateMachine;
  /** --client-cert-auth: every client presented a certificate the member verified. */
  private readonly clientCertAuth: boolean;
  private readonly readBarrier: () => Promise<void>;
  private catchUpsInFlight = 0;

  constructor(context: EtcdServiceContext, options: AuthGateOptions = {}) {
    this.stateMachine = context.stateMachine;
    this.readBarrier = () => context.backend.readBarrier();
    this.clientCertAuth = context.config.clientTls.clientCertAuth;
    this.tokens = new TokenTable(() => context.clock.nowMs(), options.tokens);
    const unsubscribes = [
      context.events.onApplied((result) => this.applied(result)),
      // A snapshot may skip over a password change or an auth disable: forget every token.
      context.events.onRestored(() => this.tokens.clear()),
    ];
    context.onStop(() => {
      for (const unsubscribe of unsubscribes) unsubscribe();
      this.tokens.clear();
    });
  }

  /** The replicated auth state, as this member has applied it. */
  get store(): AuthStore {
    return this.stateMachine().auth;
  }

  /**
   * etcd's AuthInfoFromCtx: who sent a call with this metadata. A token is looked at even while
   * auth is off (as etcd 3.4 does), so a token kept from before an auth disable is refused with
   * "invalid auth token", which makes clients authenticate again (and learn that auth is off).
   */
  requester(call: CallIdentity): Requester {
    const store = this.store;
    const token = tokenOf(call);
    if (token === undefined) return this.certificateRequester(call);
    const holder = this.tokens.use(token);
    if (holder === undefined) throw new KvError('CONCORD_E_AUTH_INVALID_TOKEN');
    if (store.user(holder.user)?.credentialRevision !== holder.credentialRevision) {
      this.tokens.forget(token);
      throw new KvError('CONCORD_E_AUTH_INVALID_TOKEN');
    }
    // Tokens are forgotten when auth is disabled; one found here was issued after it was enabled again.
    if (!store.enabled) return ANONYMOUS_REQUESTER;
    return { kind: 'client', user: holder.user, authRevision: store.revision };
  }

  /**
   * Undefined (go on at once) for a call without a token or with one this member knows; for a
   * token it does not know, a promise that resolves once the member has applied every write
   * committed before the call (a read barrier), so that a token issued through another member a
   * moment ago is known. It never rejects: a call whose barrier fails goes on and is refused as
   * usual. Expired and made-up tokens wait too, then are refused (at most MAX_TOKEN_CATCH_UPS wait
   * at once).
   */
  catchUpFor(call: CallIdentity): Promise<void> | undefined {
    const token = tokenOf(call);
    if (token === undefined || this.tokens.has(token) || this.catchUpsInFlight >= MAX_TOKEN_CATCH_UPS) return undefined;
    this.catchUpsInFlight++;
    return this.readBarrier().catch(() => undefined).finally(() => this.catchUpsInFlight--);
  }

  /**
   * etcd's AuthInfoFromTLS: with client certificates required, the verified certificate's common
   * name is the user (whether or not such a user exists: its checks then fail as for any unknown user).
   */
  private certificateRequester(call: CallIdentity): Requester {
    const store = this.store;
    if (!store.enabled || !this.clientCertAuth) return ANONYMOUS_REQUESTER;
    const commonName = call.getAuthContext().sslPeerCertificate?.subject?.CN;
    // A certificate with several common names names nobody in particular: it is not a login.
    if (typeof commonName !== 'string' || commonName === '') return ANONYMOUS_REQUESTER;
    return { kind: 'client', user: commonName, authRevision: store.revision };
  }

  /** Read permission on a range for the caller, as etcd checks reads and watches in its API layer. */
  checkRead(call: CallIdentity, key: Uint8Array, rangeEnd?: Uint8Array): Requester {
    const requester = this.requester(call);
    this.store.checkRead(requester, key, rangeEnd);
    return requester;
  }

  /** The root role, for administration that is not replicated (membership, maintenance). */
  checkAdmin(call: CallIdentity): Requester {
    const requester = this.requester(call);
    this.store.checkAdmin(requester);
    return requester;
  }

  private applied(result: ApplyResult): void {
    if (result.status !== 'applied') return;
    const { response } = result;
    if (response.type === 'authenticate') {
      this.tokens.add(response.response.tokenDigest, { user: response.response.user, credentialRevision: response.response.credentialRevision });
    } else if (response.type === 'authDisable') {
      this.tokens.clear();
    }
  }
}

function tokenOf(call: CallIdentity): string | undefined {
  const value = call.firstMetadataValue !== undefined
    ? call.firstMetadataValue(TOKEN_METADATA_KEY) ?? call.firstMetadataValue(GATEWAY_TOKEN_METADATA_KEY)
    : tokenInMetadata(call.metadata);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

function tokenInMetadata(metadata: Metadata): string | Buffer | undefined {
  const [value] = metadata.get(TOKEN_METADATA_KEY).length > 0 ? metadata.get(TOKEN_METADATA_KEY) : metadata.get(GATEWAY_TOKEN_METADATA_KEY);
  return value;
}
