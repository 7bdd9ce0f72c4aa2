// How numbers, durations and times read on the dashboard. Pure: the current time is passed in.
// Times are shown in UTC with a trailing Z, as the API and `concord events` give them, so the page
// and a terminal next to it agree; ages ("3 s ago") are measured on the server's clock.

/** Shown where a value is not known (null), so an empty cell is never mistaken for zero. */
export const UNKNOWN_TEXT = '—';

/**
 * A count with thousands separators: 1234567 -> "1,234,567".
 * @param {number} value
 * @returns {string}
 */
export function formatCount(value) {
  if (!Number.isFinite(value)) return UNKNOWN_TEXT;
  const rounded = Math.round(value);
  const digits = String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return rounded < 0 ? `-${digits}` : digits;
}

/**
 * A rate per second: one decimal below 100, whole numbers above.
 * @param {number} perSecond
 * @returns {string}
 */
export function formatRate(perSecond) {
  if (!Number.isFinite(perSecond)) return UNKNOWN_TEXT;
  return perSecond < 100 ? `${perSecond.toFixed(1)}/s` : `${formatCount(perSecond)}/s`;
}

/**
 * A duration in milliseconds, with as many digits as a person can use.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return UNKNOWN_TEXT;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/**
 * A fraction (0..1) as a whole percentage: 0.354 -> "35 %".
 * @param {number} fraction
 * @returns {string}
 */
export function formatPercent(fraction) {
  if (!Number.isFinite(fraction)) return UNKNOWN_TEXT;
  return `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)} %`;
}

/** @param {number} value @param {number} width */
function pad(value, width) {
  return String(value).padStart(width, '0');
}

/**
 * The time of day in UTC of an ISO timestamp: "10:14:02Z". Unparseable text is shown as it came.
 * @param {string} iso
 * @returns {string}
 */
export function formatTimeUtc(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const secondsOfDay = Math.floor((((ms % 86_400_000) + 86_400_000) % 86_400_000) / 1000);
  return `${pad(Math.floor(secondsOfDay / 3600), 2)}:${pad(Math.floor(secondsOfDay / 60) % 60, 2)}:${pad(secondsOfDay % 60, 2)}Z`;
}

/**
 * How long ago something happened: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago".
 * @param {number} nowMs
 * @param {number} atMs
 * @returns {string}
 */
export function formatAge(nowMs, atMs) {
  if (!Number.isFinite(nowMs) || !Number.isFinite(atMs)) return UNKNOWN_TEXT;
  const seconds = Math.floor((nowMs - atMs) / 1000);
  if (seconds < 1) return 'just now';
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/**
 * A chart axis label: at most three significant digits, no trailing zeros, k and M for large
 * values: 0 -> "0", 2.5 -> "2.5", 25 -> "25", 1500 -> "1.5k".
 * @param {number} value
 * @returns {string}
 */
export function formatAxisValue(value) {
  if (!Number.isFinite(value)) return UNKNOWN_TEXT;
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${Number((value / 1e6).toPrecision(3))}M`;
  if (magnitude >= 1e3) return `${Number((value / 1e3).toPrecision(3))}k`;
  return String(Number(value.toPrecision(3)));
}
