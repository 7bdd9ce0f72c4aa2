// The event timeline, newest first, filtered by pool.

import { el, setAttr, setText, syncChildren } from './dom.js';
import { formatTimeUtc } from './model/format.js';
import { eventKey, eventTone, filterEvents } from './model/timeline.js';

/** @typedef {import('../api-types.ts').TimelineEntry} TimelineEntry */

/** Events drawn at once; older ones stay in memory for the filter but are not drawn. */
export const MAX_VISIBLE_EVENTS = 200;
/** An event's details are shown up to this many characters of JSON. */
const MAX_DETAILS_CHARACTERS = 4_000;

/**
 * @param {{ list: HTMLElement, empty: HTMLElement, count: HTMLElement }} parts
 * @param {readonly TimelineEntry[]} events oldest first
 * @param {string} pool '' for every pool
 */
export function renderTimeline(parts, events, pool) {
  const shown = filterEvents(events, pool);
  const newestFirst = shown.slice(-MAX_VISIBLE_EVENTS).reverse();
  parts.empty.hidden = newestFirst.length > 0;
  setText(parts.empty, pool === '' ? 'No events yet.' : `No events of pool ${pool} yet.`);
  setText(parts.count, shown.length > MAX_VISIBLE_EVENTS ? `(the newest ${MAX_VISIBLE_EVENTS} of ${shown.length})` : `(${shown.length})`);
  syncChildren(parts.list, newestFirst, eventKey, createEventItem, () => {});
}

/** @param {TimelineEntry} event */
function createEventItem(event) {
  const where = [event.pool === undefined ? '' : `pool ${event.pool}`, event.backend === undefined ? '' : `backend ${event.backend}`].filter((text) => text !== '').join(', ');
  const time = el('time', { text: formatTimeUtc(event.at) });
  setAttr(time, 'datetime', event.at);
  const kind = el('span', { className: 'badge kind', text: event.kind });
  kind.dataset.tone = eventTone(event.kind);
  const children = [time, kind, el('span', { className: 'where', text: where }), el('span', { className: 'summary', text: event.summary })];
  if (event.details !== undefined) {
    let json = JSON.stringify(event.details, null, 2) ?? '';
    if (json.length > MAX_DETAILS_CHARACTERS) json = `${json.slice(0, MAX_DETAILS_CHARACTERS)}\n… (cut at ${MAX_DETAILS_CHARACTERS} characters)`;
    children.push(el('details', {}, [el('summary', { text: 'details' }), el('pre', { text: json })]));
  }
  return el('li', { className: 'event' }, children);
}

/**
 * Keeps the pool filter's options in step with the pools that exist (and the one selected, even
 * if its pool went away, so the selection does not jump).
 * @param {HTMLSelectElement} select
 * @param {readonly string[]} poolNames
 */
export function syncPoolOptions(select, poolNames) {
  const wanted = ['', ...[...new Set([...poolNames, select.value])].filter((name) => name !== '').sort()];
  syncChildren(
    select,
    wanted,
    (name) => name,
    (name) => el('option', { text: name === '' ? 'every pool' : `pool ${name}`, attrs: { value: name } }),
    () => {},
  );
}
