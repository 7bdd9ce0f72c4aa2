// The recent past the charts draw: one sample per overview the page received, kept for a window of
// time and a bounded count. Pure: samples carry the server's time (generatedAt), so a slow or
// paused tab draws gaps where it missed data instead of squeezing time.

/** @typedef {import('../../api-types.ts').Overview} Overview */

/**
 * What the charts need from one overview.
 * @typedef {object} Sample
 * @property {number} atMs the overview's generatedAt
 * @property {number} requestsPerSecond over every proxy
 * @property {number | null} p99Ms the highest p99 any proxy reports (an upper bound: percentiles do not add)
 * @property {Record<string, { actual: number, desired: number }>} instances per autoscaled pool
 */

/** How much history the charts show. */
export const DEFAULT_HISTORY_WINDOW_MS = 5 * 60_000;
/** At most this many samples are kept (about 15 minutes at one overview per second). */
export const DEFAULT_HISTORY_MAX_SAMPLES = 900;

/**
 * @param {Overview} overview
 * @returns {Sample | null} null when the overview has no usable time
 */
export function sampleOf(overview) {
  const atMs = Date.parse(overview.generatedAt);
  if (Number.isNaN(atMs)) return null;
  let requestsPerSecond = 0;
  /** @type {number | null} */
  let p99Ms = null;
  for (const proxy of overview.proxies) {
    if (Number.isFinite(proxy.requestsPerSecond)) requestsPerSecond += proxy.requestsPerSecond;
    if (proxy.p99Ms !== null && Number.isFinite(proxy.p99Ms)) p99Ms = Math.max(p99Ms ?? 0, proxy.p99Ms);
  }
  /** @type {Sample['instances']} */
  const instances = {};
  for (const pool of overview.pools) {
    if (pool.autoscale !== null) instances[pool.name] = { actual: pool.autoscale.actual, desired: pool.autoscale.desired };
  }
  return { atMs, requestsPerSecond, p99Ms, instances };
}

/**
 * The history with one more sample: samples older than the window (before the newest sample's time)
 * fall out, and at most maxSamples stay. A sample not newer than the last one (a repeated or
 * reordered overview) is ignored.
 * @param {readonly Sample[]} samples
 * @param {Sample} sample
 * @param {{ windowMs?: number, maxSamples?: number }} [limits]
 * @returns {Sample[]}
 */
export function appendSample(samples, sample, limits = {}) {
  const windowMs = limits.windowMs ?? DEFAULT_HISTORY_WINDOW_MS;
  const maxSamples = limits.maxSamples ?? DEFAULT_HISTORY_MAX_SAMPLES;
  const last = samples[samples.length - 1];
  if (last !== undefined && sample.atMs <= last.atMs) return [...samples];
  const oldestKept = sample.atMs - windowMs;
  const kept = samples.filter((earlier) => earlier.atMs >= oldestKept);
  kept.push(sample);
  return kept.length > maxSamples ? kept.slice(kept.length - maxSamples) : kept;
}

/**
 * The pools that appear anywhere in the history, sorted, so chart colours stay put.
 * @param {readonly Sample[]} samples
 * @returns {string[]}
 */
export function autoscaledPools(samples) {
  const names = new Set();
  for (const sample of samples) for (const name of Object.keys(sample.instances)) names.add(name);
  return [...names].sort();
}
