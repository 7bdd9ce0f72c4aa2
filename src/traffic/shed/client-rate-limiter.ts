// Per-client rate limits: a token bucket per client key (an IP address, or a header such as an API
// key). A bucket holds up to `burst` tokens and refills at ratePerSecond; each request takes one.
// The table of buckets is bounded by maxClients: past it, the least recently seen client's bucket
// is forgotten (LRU, through the insertion order of a Map). A forgotten client comes back with a
// full bucket, so the bound trades exactness for memory: keep maxClients above the number of
// clients active within burst / ratePerSecond seconds.

export interface ClientRateLimitSettings {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly maxClients: number;
}

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class ClientRateLimiter {
  private readonly settings: ClientRateLimitSettings;
  private readonly buckets = new Map<string, Bucket>();
  private evictedCount = 0;

  constructor(settings: ClientRateLimitSettings) {
    if (!(settings.ratePerSecond > 0)) throw new RangeError(`bug: ratePerSecond ${settings.ratePerSecond} must be > 0`);
    if (!(settings.burst >= 1)) throw new RangeError(`bug: burst ${settings.burst} must be >= 1`);
    if (!Number.isSafeInteger(settings.maxClients) || settings.maxClients < 1) throw new RangeError(`bug: maxClients ${settings.maxClients} must be a whole number >= 1`);
    this.settings = settings;
  }

  get clientCount(): number {
    return this.buckets.size;
  }

  /** Buckets forgotten to stay within maxClients, since creation. */
  get evictions(): number {
    return this.evictedCount;
  }

  take(clientKey: string, nowMs: number): RateDecision {
    const bucket = this.touch(clientKey, nowMs);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: ((1 - bucket.tokens) * 1000) / this.settings.ratePerSecond };
  }

  /** The client's bucket, refilled to now and moved to the most recently used end. */
  private touch(clientKey: string, nowMs: number): Bucket {
    const existing = this.buckets.get(clientKey);
    if (existing !== undefined) {
      this.buckets.delete(clientKey);
      this.buckets.set(clientKey, existing);
      const elapsedMs = Math.max(0, nowMs - existing.updatedMs);
      existing.tokens = Math.min(this.settings.burst, existing.tokens + (elapsedMs * this.settings.ratePerSecond) / 1000);
      existing.updatedMs = nowMs;
      return existing;
    }
    const bucket: Bucket = { tokens: this.settings.burst, updatedMs: nowMs };
    this.buckets.set(clientKey, bucket);
    if (this.buckets.size > this.settings.maxClients) {
      this.buckets.delete(this.buckets.keys().next().value!);
      this.evictedCount += 1;
    }
    return bucket;
  }
}
