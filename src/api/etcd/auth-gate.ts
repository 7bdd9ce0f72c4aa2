// Who is calling, for every etcd service of a member: etcd's AuthInfoFromCtx and the checks its API
// layer makes before a request goes anywhere. One gate per member, shared by all services, so that
// every service resolves tokens and checks permissions the same way (services.ts builds it).
//
// * With auth disabled, every call is anonymous and nothing is checked here (but a token the member
//   does not know is refused, as etcd 3.4 refuses it); a write still carries the anonymous
//   requester, so that it is refused ("user name is empty") if auth was enabled by the time it is
//   applied.
// * With auth enabled, a call without a token is anonymous; a call with a token that is unknown,
//   expired, or belongs to a user that was deleted or changed password fails with "invalid auth
//   token" (UNAUTHENTICATED), which makes etcd clients authenticate again and retry.
// * The requester of a write travels in the proposal (the user name and the auth revision seen
//   here, never the token) and is checked when the command is applied, on every member alike.
//
// The table of tokens learns them from applied Authenticate commands, so every member knows every
// token (auth-tokens.ts).

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

export interface AuthGateOptions {
  tokens?: Partial<TokenTableLimits>;
}

export class AuthGate {
  readonly tokens: TokenTable;
  private readonly stateMachine: () => KvStateMachine;

  constructor(context: EtcdServiceContext, options: AuthGateOptions = {}) {
    this.stateMachine = context.stateMachine;
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
  requester(metadata: Metadata): Requester {
    const store = this.store;
    const token = tokenOf(metadata);
    if (token === undefined) return ANONYMOUS_REQUESTER;
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

  /** Read permission on a range for the caller, as etcd checks reads and watches in its API layer. */
  checkRead(metadata: Metadata, key: Uint8Array, rangeEnd?: Uint8Array): Requester {
    const requester = this.requester(metadata);
    this.store.checkRead(requester, key, rangeEnd);
    return requester;
  }

  /** The root role, for administration that is not replicated (membership, maintenance). */
  checkAdmin(metadata: Metadata): Requester {
    const requester = this.requester(metadata);
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

function tokenOf(metadata: Metadata): string | undefined {
  const [value] = metadata.get(TOKEN_METADATA_KEY).length > 0 ? metadata.get(TOKEN_METADATA_KEY) : metadata.get(GATEWAY_TOKEN_METADATA_KEY);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}
