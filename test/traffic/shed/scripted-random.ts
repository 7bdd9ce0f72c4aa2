// A Random that returns a fixed script of floats, so jitter and sampling in a test are known exactly.

import type { Random } from '../../../src/random/seeded-random.ts';

export class ScriptedRandom implements Random {
  private readonly floats: readonly number[];
  private next = 0;

  constructor(floats: readonly number[]) {
    if (floats.length === 0) throw new Error('a scripted random needs at least one value');
    this.floats = floats;
  }

  nextFloat(): number {
    const value = this.floats[this.next % this.floats.length]!;
    this.next += 1;
    return value;
  }

  nextInt(maxExclusive: number): number {
    return Math.floor(this.nextFloat() * maxExclusive);
  }
}
