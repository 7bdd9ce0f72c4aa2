// The event timeline the page holds: events from the initial fetch, from the stream, and from the
// catch-up fetch after a reconnect, merged without duplicates, oldest first, bounded in count.
// Events have no ID in the contract, so one is their whole visible content: two events that agree
// on time, kind, pool, backend and summary are the same event shown twice.

/** @typedef {import('../../api-types.ts').TimelineEntry} TimelineEntry */

/** Events the page keeps in memory. */
export const DEFAULT_MAX_EVENTS = 500;

/** @param {TimelineEntry} event */
export function eventKey(event) {
  return [event.at, event.kind, event.pool ?? '', event.backend ?? '', event.summary].join('\u0000');
}

/**
 * Both lists merged, oldest first (stable for equal times), without duplicates, keeping the newest
 * maxEvents.
 * @param {readonly TimelineEntry[]} existing
 * @param {readonly TimelineEntry[]} incoming
 * @param {number} [maxEvents]
 * @returns {TimelineEntry[]}
 */
export function mergeEvents(existing, incoming, maxEvents = DEFAULT_MAX_EVENTS) {
  const seen = new Set(existing.map(eventKey));
  const merged = [...existing];
  for (const event of incoming) {
    const key = eventKey(event);
    if (seen.has(key)) continue;
    seen.add(key);
    merged.push(event);
  }
  const timed = merged.map((event, index) => ({ event, index, atMs: Date.parse(event.at) }));
  timed.sort((a, b) => (a.atMs - b.atMs) || (a.index - b.index));
  const ordered = timed.map((entry) => entry.event);
  return ordered.length > maxEvents ? ordered.slice(ordered.length - maxEvents) : ordered;
}

/**
 * The events of one pool ('' for all).
 * @param {readonly TimelineEntry[]} events
 * @param {string} pool
 */
export function filterEvents(events, pool) {
  return pool === '' ? [...events] : events.filter((event) => event.pool === pool);
}

/**
 * The time of the newest event, to ask the server for what came after it; null when there is none.
 * @param {readonly TimelineEntry[]} events
 * @returns {string | null}
 */
export function newestEventAt(events) {
  const last = events[events.length - 1];
  return last === undefined ? null : last.at;
}

/** @type {Readonly<Record<string, 'good' | 'bad' | 'warn'>>} */
const KIND_TONES = {
  'marked-down': 'bad',
  ejected: 'bad',
  'action-failed': 'bad',
  'leader-deposed': 'bad',
  'instance-failing': 'bad',
  'panic-started': 'bad',
  'shed-started': 'warn',
  'drain-started': 'warn',
  'freeze-set': 'warn',
  frozen: 'warn',
  drain: 'warn',
  'marked-up': 'good',
  readmitted: 'good',
  'instance-ready': 'good',
  'instance-recovered': 'good',
  'shed-stopped': 'good',
  'panic-ended': 'good',
  'freeze-cleared': 'good',
  unfrozen: 'good',
};

/**
 * The tone an event's kind is shown in (the kind's name is always shown as text too).
 * @param {string} kind
 * @returns {'good' | 'bad' | 'warn' | 'neutral'}
 */
export function eventTone(kind) {
  return Object.hasOwn(KIND_TONES, kind) ? /** @type {'good' | 'bad' | 'warn'} */ (KIND_TONES[kind]) : 'neutral';
}
