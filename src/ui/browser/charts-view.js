// The three small charts (requests/s, p99 latency, instances), drawn on <canvas> by hand. Each
// canvas has a text alternative (its aria-label) with the current and highest values, and the
// legend under it says the same in words, so the chart is never the only place a number is.

import { el, setAttr, setText, syncChildren } from './dom.js';
import { chartGeometry, pointsOf } from './model/chart-geometry.js';
import { formatAxisValue, formatMs, formatRate } from './model/format.js';
import { autoscaledPools } from './model/history.js';

/** @typedef {import('./model/history.js').Sample} Sample */
/** @typedef {import('./model/chart-geometry.js').ChartSeries} ChartSeries */

/** Two samples further apart than this are not joined by a line (the page missed data between them). */
const MAX_SAMPLE_GAP_MS = 5_000;
/** Colours come from CSS (--series-0 ... --series-5), so the legend and the lines agree. */
const SERIES_COLOURS = 6;
const BOX = { left: 48, right: 8, top: 8, bottom: 20 };

/**
 * @typedef {ChartSeries & { dashed?: boolean, colour: number, current: string }} DrawnSeries
 */

/**
 * @param {{ requests: HTMLElement, latency: HTMLElement, instances: HTMLElement }} figures
 * @param {readonly Sample[]} samples
 * @param {number} nowMs the server's current time
 * @param {number} windowMs
 */
export function renderCharts(figures, samples, nowMs, windowMs) {
  const last = samples[samples.length - 1];
  drawFigure(figures.requests, 'Requests per second', { axis: (value) => `${formatAxisValue(value)}/s`, summary: formatRate }, nowMs, windowMs, [
    { label: 'every proxy', colour: 0, points: pointsOf(samples, (sample) => sample.requestsPerSecond, MAX_SAMPLE_GAP_MS), current: last === undefined ? '—' : formatRate(last.requestsPerSecond) },
  ]);
  drawFigure(figures.latency, 'p99 latency', { axis: (value) => `${formatAxisValue(value)} ms`, summary: formatMs }, nowMs, windowMs, [
    { label: 'highest p99', colour: 1, points: pointsOf(samples, (sample) => sample.p99Ms, MAX_SAMPLE_GAP_MS), current: formatMs(last?.p99Ms) },
  ]);
  /** @type {DrawnSeries[]} */
  const instanceSeries = [];
  autoscaledPools(samples).forEach((pool, index) => {
    const colour = index % SERIES_COLOURS;
    const now = last?.instances[pool];
    instanceSeries.push(
      { label: `${pool} actual`, colour, points: pointsOf(samples, (sample) => sample.instances[pool]?.actual ?? null, MAX_SAMPLE_GAP_MS), current: now === undefined ? '—' : String(now.actual) },
      { label: `${pool} desired`, colour, dashed: true, points: pointsOf(samples, (sample) => sample.instances[pool]?.desired ?? null, MAX_SAMPLE_GAP_MS), current: now === undefined ? '—' : String(now.desired) },
    );
  });
  drawFigure(figures.instances, 'Instances', { axis: formatAxisValue, summary: formatAxisValue }, nowMs, windowMs, instanceSeries);
}

/**
 * How a chart writes its values: on the axis (short) and in its text alternative.
 * @typedef {{ axis: (value: number) => string, summary: (value: number) => string }} ValueFormats
 */

/**
 * @param {HTMLElement} figure
 * @param {string} title
 * @param {ValueFormats} formats
 * @param {number} nowMs
 * @param {number} windowMs
 * @param {DrawnSeries[]} series
 */
function drawFigure(figure, title, formats, nowMs, windowMs, series) {
  const canvas = figure.querySelector('canvas');
  const legend = figure.querySelector('.legend');
  if (!(canvas instanceof HTMLCanvasElement) || !(legend instanceof HTMLElement)) return;
  syncChildren(
    legend,
    series,
    (one) => one.label,
    (one) => el('li', {}, [el('span', { className: `swatch series-${one.colour}${one.dashed === true ? ' dashed' : ''}`, attrs: { 'aria-hidden': 'true' } }), el('span', { className: 'legend-text' })]),
    (item, one) => setText(/** @type {Element} */ (item.lastElementChild), `${one.label}: ${one.current}`),
  );
  const highest = Math.max(0, ...series.flatMap((one) => one.points.filter((point) => point.atMs >= nowMs - windowMs).map((point) => point.value ?? 0)));
  const summary = series.length === 0
    ? `${title}: no data yet`
    : `${title}: ${series.map((one) => `${one.label} now ${one.current}`).join(', ')}; highest ${formats.summary(highest)} in the last ${Math.round(windowMs / 60_000)} minutes`;
  setAttr(canvas, 'aria-label', summary);
  paint(canvas, series, formats.axis, nowMs, windowMs);
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {DrawnSeries[]} series
 * @param {(value: number) => string} formatValue
 * @param {number} nowMs
 * @param {number} windowMs
 */
function paint(canvas, series, formatValue, nowMs, windowMs) {
  const context = canvas.getContext('2d');
  if (context === null) return;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, canvas.clientWidth);
  const height = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const style = getComputedStyle(canvas);
  const box = { ...BOX, width, height };
  const geometry = chartGeometry(series, { nowMs, windowMs, box });

  context.font = '11px system-ui, sans-serif';
  context.fillStyle = style.getPropertyValue('--chart-text').trim() || '#555';
  context.strokeStyle = style.getPropertyValue('--chart-grid').trim() || '#ddd';
  context.lineWidth = 1;
  context.setLineDash([]);
  context.textBaseline = 'middle';
  context.textAlign = 'right';
  for (const tick of geometry.yTicks) {
    const y = box.top + (height - box.top - box.bottom) * (1 - tick / geometry.yMax);
    context.beginPath();
    context.moveTo(box.left, Math.round(y) + 0.5);
    context.lineTo(width - box.right, Math.round(y) + 0.5);
    context.stroke();
    context.fillText(formatValue(tick), box.left - 4, y);
  }
  context.textBaseline = 'alphabetic';
  context.textAlign = 'left';
  context.fillText(`-${Math.round(windowMs / 60_000)} min`, box.left, height - 4);
  context.textAlign = 'right';
  context.fillText('now', width - box.right, height - 4);

  context.lineWidth = 2;
  geometry.lines.forEach((line, index) => {
    const one = /** @type {DrawnSeries} */ (series[index]);
    context.strokeStyle = style.getPropertyValue(`--series-${one.colour}`).trim() || '#1f6feb';
    context.setLineDash(one.dashed === true ? [5, 4] : []);
    for (const segment of line.segments) {
      context.beginPath();
      segment.forEach(([x, y], pointIndex) => (pointIndex === 0 ? context.moveTo(x, y) : context.lineTo(x, y)));
      if (segment.length === 1) context.arc(segment[0]?.[0] ?? 0, segment[0]?.[1] ?? 0, 1.5, 0, 2 * Math.PI);
      context.stroke();
    }
  });
}
