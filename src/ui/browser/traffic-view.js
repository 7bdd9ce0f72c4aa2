// The traffic totals and the proxies table.

import { el, setText, syncChildren } from './dom.js';
import { formatCount, formatMs, formatRate } from './model/format.js';

/** @typedef {import('../api-types.ts').ProxyOverview} ProxyOverview */
/** @typedef {import('./model/history.js').Sample} Sample */

/**
 * @param {{ total: HTMLElement, rate: HTMLElement, p99: HTMLElement }} cells
 * @param {readonly ProxyOverview[]} proxies
 * @param {Sample | null} sample the same overview, summed up
 */
export function renderTotals(cells, proxies, sample) {
  const total = proxies.reduce((sum, proxy) => sum + proxy.requestsTotal, 0);
  setText(cells.total, formatCount(total));
  setText(cells.rate, sample === null ? '—' : formatRate(sample.requestsPerSecond));
  setText(cells.p99, formatMs(sample?.p99Ms));
}

/**
 * @param {HTMLElement} tbody
 * @param {HTMLElement} emptyNote
 * @param {readonly ProxyOverview[]} proxies
 */
export function renderProxies(tbody, emptyNote, proxies) {
  emptyNote.hidden = proxies.length > 0;
  syncChildren(
    tbody,
    proxies,
    (proxy) => proxy.id,
    () => el('tr', {}, [el('th', { attrs: { scope: 'row' } }), el('td', { className: 'mono' }), el('td', { className: 'num' }), el('td', { className: 'num' }), el('td', { className: 'num' }), el('td', { className: 'num' })]),
    (row, proxy) => {
      const cells = Array.from(row.children);
      const texts = [proxy.id, proxy.address, formatCount(proxy.requestsTotal), formatRate(proxy.requestsPerSecond), formatMs(proxy.p50Ms), formatMs(proxy.p99Ms)];
      texts.forEach((text, index) => setText(/** @type {Element} */ (cells[index]), text));
    },
  );
}
