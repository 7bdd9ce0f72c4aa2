// Preloaded into every test process (package.json test:unit, --import). Property tests run with a
// fixed seed by default, so a CI run is reproducible and a red build is a real, repeatable
// failure. `FAST_CHECK_SEED=random npm run test:unit` explores new cases; any other number
// replays that seed (fast-check prints the seed of every failure).

import fc from 'fast-check';

const FIXED_SEED = 20261125;
const requested = process.env.FAST_CHECK_SEED;
if (requested !== 'random') {
  const seed = requested === undefined ? FIXED_SEED : Number(requested);
  if (!Number.isSafeInteger(seed)) throw new Error(`FAST_CHECK_SEED must be an integer or 'random', got '${requested}'`);
  fc.configureGlobal({ seed });
}
