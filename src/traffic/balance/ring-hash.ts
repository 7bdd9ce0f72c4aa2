// Consistent hashing on a ring (as Envoy's ring_hash), with bounded load (Mirrokni, Thorup and
// Zadimoghaddam, "Consistent Hashing with Bounded Loads", as used by Google Cloud and HAProxy's
// hash-balance-factor). Each backend owns points on a 32-bit ring in proportion to its weight; a
// key goes to the owner of the first point at or after the key's hash. Bounded load: a backend
// already holding more than balanceFactor × its fair share of the requests in flight is skipped
// and the walk goes on around the ring, so a hot key cannot overload one backend, while most keys
// still land where they always do. Adding or removing a backend moves only about 1/n of the keys.

import type { Random } from '../../random/seeded-random.ts';
import { murmur3 } from './hash.ts';
import type { BackendLoad, PickRequest, Picker } from './types.ts';

export interface RingHashOptions {
  /**
   * Points on the ring per unit of weight. Fixed per backend (not scaled to a total ring size, as
   * Envoy does) so that adding or removing a backend never moves a point of another one: only the
   * keys of the backend that left move.
   */
  pointsPerWeight: number;
  /** Bounded load: a backend may hold at most this multiple of its fair share of in-flight requests (≥ 1; 0 turns the bound off). */
  balanceFactor: number;
}

/** 128 points per backend of weight 1: Envoy's minimum ring of 1024 points spread over 8 backends. */
export const DEFAULT_POINTS_PER_WEIGHT = 128;
/** Google's and HAProxy's usual choice: at most 25 % above the fair share. */
export const DEFAULT_BALANCE_FACTOR = 1.25;

export class RingHashPicker implements Picker {
  private readonly hashes: Uint32Array;
  private readonly owners: BackendLoad[];
  private readonly totalWeight: number;

  private readonly backends: readonly BackendLoad[];
  private readonly random: Random;
  private readonly options: RingHashOptions;

  constructor(backends: readonly BackendLoad[], random: Random, options: RingHashOptions) {
    this.backends = backends;
    this.random = random;
    this.options = options;
    this.totalWeight = backends.reduce((sum, backend) => sum + backend.configuredWeight, 0);
    const points: [number, BackendLoad][] = [];
    for (const backend of backends) {
      const count = Math.max(1, Math.round(options.pointsPerWeight * backend.configuredWeight));
      for (let i = 0; i < count; i++) points.push([murmur3(`${backend.id}_${i}`), backend]);
    }
    points.sort((x, y) => x[0] - y[0] || (x[1].id < y[1].id ? -1 : 1));
    this.hashes = Uint32Array.from(points, (point) => point[0]);
    this.owners = points.map((point) => point[1]);
  }

  pick(request: PickRequest): BackendLoad | undefined {
    if (this.owners.length === 0) return undefined;
    // Without a key (the header or cookie is missing), any backend will do: pick at random.
    const start = request.hashKey === undefined ? this.random.nextInt(this.owners.length) : this.firstPointAtOrAfter(murmur3(request.hashKey));
    const activeWithThis = this.activeRequestsInPool() + 1; // counts the request being placed, so an idle pool has room
    let fallback: BackendLoad | undefined;
    const seen = new Set<string>();
    for (let step = 0; step < this.owners.length && seen.size < this.backends.length; step++) {
      const owner = this.owners[(start + step) % this.owners.length]!;
      if (seen.has(owner.id)) continue;
      seen.add(owner.id);
      if (request.exclude !== undefined && request.exclude.has(owner.id)) continue;
      if (owner.activeRequests < this.boundFor(owner, activeWithThis)) return owner;
      fallback ??= owner;
    }
    // Every backend is at its bound (possible only while the bound is rounding up): take the key's own.
    return fallback;
  }

  /** The most requests in flight `backend` may hold before keys walk past it: ceil(c × m × w / W). */
  private boundFor(backend: BackendLoad, activeWithThis: number): number {
    if (this.options.balanceFactor === 0) return Number.POSITIVE_INFINITY;
    return Math.ceil((this.options.balanceFactor * activeWithThis * backend.configuredWeight) / this.totalWeight);
  }

  private activeRequestsInPool(): number {
    let active = 0;
    for (const backend of this.backends) active += backend.activeRequests;
    return active;
  }

  private firstPointAtOrAfter(hash: number): number {
    let low = 0;
    let high = this.hashes.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.hashes[middle]! < hash) low = middle + 1;
      else high = middle;
    }
    return low === this.hashes.length ? 0 : low;
  }
}
