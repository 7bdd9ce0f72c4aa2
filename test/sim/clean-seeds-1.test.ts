import { test } from 'node:test';
import { CLEAN_SEEDS_TOTAL, assertSeedsClean } from './clean-seeds.ts';

const FIRST_SEED = 1;
const COUNT = CLEAN_SEEDS_TOTAL / 2;

test(`seeds ${FIRST_SEED}..${FIRST_SEED + COUNT - 1} are safe, live and linearizable with no bug injected`, () => {
  assertSeedsClean(FIRST_SEED, COUNT);
});
