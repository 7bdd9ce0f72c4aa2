// etcd's simple tokens (auth/simple_token.go, `--auth-token simple`, the default): an opaque random
// string handed out by Authenticate and sent back by the client as the `token` gRPC metadata.
//
// As in etcd, an Authenticate is replicated, so a token works on every member (clients with several
// endpoints switch members freely); unlike etcd, what is replicated is the token's SHA-256, never
// the token, so tokens are not in the log or on disk. Each member keeps its own table of the tokens
// it learned, in memory (not in snapshots: a member restarted or restored from a snapshot has
// forgotten them, and clients authenticate again, as they do against etcd):
//
// * a token expires TOKEN_TTL_MS (etcd's default 5 minutes) after its last use on this member;
// * the table holds at most maxTokens; when full, the least recently used token is dropped (its
//   client authenticates again on its next call, which etcd clients do by themselves);
// * a token ends with its user: the table keeps the user's credential revision, and the token is
//   refused once the user is deleted, its password changes, or auth is disabled.

import { createHash, randomBytes } from 'node:crypto';

/** etcd's --auth-token-ttl default: 300 seconds. */
export const TOKEN_TTL_MS = 5 * 60 * 1000;
/** Tokens remembered per member (each Authenticate adds one on every member). */
export const MAX_TOKENS = 100_000;
/** 128 random bits, as 22 base64url characters. */
const TOKEN_BYTES = 16;

export interface TokenTableLimits {
  tokenTtlMs: number;
  maxTokens: number;
}

export interface TokenHolder {
  user: string;
  /** The user's credential revision when the token was issued. */
  credentialRevision: number;
}

interface TokenEntry extends TokenHolder {
  expiresAtMs: number;
}

/** A new token for a client; only its digest is ever proposed. */
export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export function tokenDigest(token: string): Uint8Array {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class TokenTable {
  /** By digest (hex), least recently used first: a use moves an entry to the end. */
  private readonly entries = new Map<string, TokenEntry>();
  private readonly limits: TokenTableLimits;
  private readonly nowMs: () => number;

  constructor(nowMs: () => number, limits: Partial<TokenTableLimits> = {}) {
    this.nowMs = nowMs;
    this.limits = { tokenTtlMs: limits.tokenTtlMs ?? TOKEN_TTL_MS, maxTokens: limits.maxTokens ?? MAX_TOKENS };
    if (!Number.isSafeInteger(this.limits.tokenTtlMs) || this.limits.tokenTtlMs < 1) throw new RangeError(`tokenTtlMs must be a positive integer, got ${this.limits.tokenTtlMs}`);
    if (!Number.isSafeInteger(this.limits.maxTokens) || this.limits.maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${this.limits.maxTokens}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records a token an applied Authenticate issued (on every member). */
  add(digest: Uint8Array, holder: TokenHolder): void {
    const key = Buffer.from(digest).toString('hex');
    this.entries.delete(key);
    this.dropExpired();
    while (this.entries.size >= this.limits.maxTokens) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { ...holder, expiresAtMs: this.nowMs() + this.limits.tokenTtlMs });
  }

  /** Who holds `token`, renewing its TTL; undefined for an unknown or expired token. */
  use(token: string): TokenHolder | undefined {
    const key = Buffer.from(tokenDigest(token)).toString('hex');
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    const nowMs = this.nowMs();
    if (entry.expiresAtMs <= nowMs) return undefined;
    entry.expiresAtMs = nowMs + this.limits.tokenTtlMs;
    this.entries.set(key, entry);
    return { user: entry.user, credentialRevision: entry.credentialRevision };
  }

  /** Whether `token` is in the table and not expired; its TTL is left as it was. */
  has(token: string): boolean {
    const entry = this.entries.get(Buffer.from(tokenDigest(token)).toString('hex'));
    return entry !== undefined && entry.expiresAtMs > this.nowMs();
  }

  /** Forgets a token found to be void (its user changed), so it does not linger until its TTL. */
  forget(token: string): void {
    this.entries.delete(Buffer.from(tokenDigest(token)).toString('hex'));
  }

  clear(): void {
    this.entries.clear();
  }

  /** Entries are in order of last use, and the TTL is the same for all: expired ones are at the front. */
  private dropExpired(): void {
    const nowMs = this.nowMs();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.entries.delete(key);
    }
  }
}
