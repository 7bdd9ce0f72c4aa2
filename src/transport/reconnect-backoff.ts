// How long a peer stream waits before dialing again: exponential backoff with jitter. The delay
// starts at minMs and doubles per failed attempt up to maxMs; each wait is drawn from
// [0.5, 1.5) times the current backoff, so members that lost each other at the same moment do not
// all dial again in lockstep. Pure: the randomness is passed in.

import type { Random } from '../random/seeded-random.ts';

export interface ReconnectBackoffLimits {
  minMs: number;
  maxMs: number;
}

export class ReconnectBackoff {
  private readonly limits: ReconnectBackoffLimits;
  private readonly random: Random;
  private backoffMs: number;

  constructor(limits: ReconnectBackoffLimits, random: Random) {
    this.limits = limits;
    this.random = random;
    this.backoffMs = limits.minMs;
  }

  /** The wait before the next attempt; the one after it will be about twice as long (up to maxMs). */
  nextDelayMs(): number {
    const delayMs = Math.round(this.backoffMs * (0.5 + this.random.nextFloat()));
    this.backoffMs = Math.min(this.backoffMs * 2, this.limits.maxMs);
    return delayMs;
  }

  /** A connection succeeded (or the peer moved): the next outage starts from minMs again. */
  reset(): void {
    this.backoffMs = this.limits.minMs;
  }
}
