// How many inputs each fuzz property tries. The defaults keep every fuzz test file within about
// 20 s on the shared 2-core machine; CONCORD_FUZZ_RUNS multiplies them for longer local runs
// (CONCORD_FUZZ_RUNS=20 npm run test:unit -- ... tries twenty times as many inputs). FAST_CHECK_SEED
// (test/fast-check-setup.ts) picks the inputs.

const requested = process.env.CONCORD_FUZZ_RUNS;
const multiplier = requested === undefined ? 1 : Number(requested);
if (!Number.isFinite(multiplier) || multiplier <= 0) {
  throw new Error(`CONCORD_FUZZ_RUNS must be a positive number (a multiplier of the default runs), got '${requested}'`);
}

/** The number of runs for a property whose default is `defaultRuns`, scaled by CONCORD_FUZZ_RUNS. */
export function fuzzRuns(defaultRuns: number): number {
  return Math.max(1, Math.round(defaultRuns * multiplier));
}
