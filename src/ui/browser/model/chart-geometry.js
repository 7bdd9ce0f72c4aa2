// Where a chart's lines go, in pixels, computed apart from the canvas so it can be tested without a
// browser. The x axis is time (the last windowMs up to nowMs), the y axis starts at zero and ends
// at a round number above the highest value. A null value breaks the line: a gap in the data is
// drawn as a gap, never bridged by a straight line that looks like real data.

/**
 * @typedef {object} ChartPoint
 * @property {number} atMs
 * @property {number | null} value
 */

/**
 * @typedef {object} ChartSeries
 * @property {string} label
 * @property {readonly ChartPoint[]} points oldest first
 */

/**
 * @typedef {object} ChartBox
 * @property {number} width
 * @property {number} height
 * @property {number} left space for the y labels
 * @property {number} right
 * @property {number} top
 * @property {number} bottom space for the x labels
 */

/**
 * @typedef {object} ChartGeometry
 * @property {number} yMax
 * @property {number[]} yTicks values, from 0 to yMax
 * @property {{ label: string, segments: [number, number][][] }[]} lines
 */

/**
 * The smallest 1, 2 or 5 times a power of ten that is at least value (at least 1).
 * @param {number} value
 * @returns {number}
 */
export function niceCeiling(value) {
  if (!Number.isFinite(value) || value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value * (1 - 1e-12)) return step * power;
  }
  return 10 * power;
}

/**
 * @param {readonly ChartSeries[]} series
 * @param {{ nowMs: number, windowMs: number, box: ChartBox }} frame
 * @returns {ChartGeometry}
 */
export function chartGeometry(series, frame) {
  const { nowMs, windowMs, box } = frame;
  const startMs = nowMs - windowMs;
  let highest = 0;
  for (const one of series) {
    for (const point of one.points) {
      if (point.atMs >= startMs && point.value !== null && Number.isFinite(point.value)) highest = Math.max(highest, point.value);
    }
  }
  const yMax = niceCeiling(highest);
  const plotWidth = Math.max(1, box.width - box.left - box.right);
  const plotHeight = Math.max(1, box.height - box.top - box.bottom);
  /** @param {number} atMs */
  const xOf = (atMs) => box.left + ((atMs - startMs) / windowMs) * plotWidth;
  /** @param {number} value */
  const yOf = (value) => box.top + plotHeight - (Math.min(value, yMax) / yMax) * plotHeight;
  const lines = series.map((one) => {
    /** @type {[number, number][][]} */
    const segments = [];
    /** @type {[number, number][]} */
    let current = [];
    for (const point of one.points) {
      if (point.atMs < startMs || point.atMs > nowMs) continue;
      if (point.value === null || !Number.isFinite(point.value)) {
        if (current.length > 0) segments.push(current);
        current = [];
        continue;
      }
      current.push([xOf(point.atMs), yOf(point.value)]);
    }
    if (current.length > 0) segments.push(current);
    return { label: one.label, segments };
  });
  return { yMax, yTicks: [0, yMax / 2, yMax], lines };
}

/**
 * The points of one series, a gap inserted wherever two samples are further apart than maxGapMs
 * (the page was disconnected, or the server stalled).
 * @template T
 * @param {readonly (T & { atMs: number })[]} samples
 * @param {(sample: T) => number | null} valueOf
 * @param {number} maxGapMs
 * @returns {ChartPoint[]}
 */
export function pointsOf(samples, valueOf, maxGapMs) {
  /** @type {ChartPoint[]} */
  const points = [];
  let previousMs = Number.NEGATIVE_INFINITY;
  for (const sample of samples) {
    if (sample.atMs - previousMs > maxGapMs && points.length > 0) points.push({ atMs: previousMs, value: null });
    points.push({ atMs: sample.atMs, value: valueOf(sample) });
    previousMs = sample.atMs;
  }
  return points;
}
