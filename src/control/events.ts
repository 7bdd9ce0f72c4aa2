// The event timeline in the store: one key per event, named so that keys sort by time.
//
//   /concord/events/<ms since the epoch, 15 digits>-<writer>-<sequence, 6 digits>
//
// The value is a JSON TimelineEvent. The writer (a controller's name) and its own sequence keep
// keys unique when two writers record in the same millisecond. Retention is a count: whoever
// prunes (the autoscaler's leader, every few periods) deletes the oldest keys beyond
// `maxEvents`, so the timeline stays bounded whatever writes to it. A postmortem reads a time
// window with a key range (eventKeyAt gives the bounds).

import type { CoordStore, TxnOp } from '../coord/coord-store.ts';

export const EVENTS_PREFIX = '/concord/events/';
/** The first key after every event key ('/' + 1 is '0'). */
const EVENTS_RANGE_END = '/concord/events0';
/** Keep this many events; older ones are pruned. */
export const DEFAULT_MAX_EVENTS = 10_000;
/** At most this many keys are deleted by one prune (the rest go next time). */
export const PRUNE_BATCH_MAX = 1_000;
/** Writer names: what may appear in a key. */
export const WRITER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface TimelineEvent {
  atMs: number;
  /** The component: 'autoscaler', 'cli', ... */
  source: string;
  /** What happened, in one word or a few joined by '-': 'decision', 'launch', 'frozen', 'leader-elected', ... */
  kind: string;
  /** The writer: a controller's name, or the operator for the CLI. */
  by: string;
  pool?: string;
  message: string;
  /** Details, such as a decision's inputs, signals and steps. */
  data?: unknown;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** The key of an event; the lowest key at `atMs` when writer and sequence are omitted (a range bound). */
export function eventKeyAt(atMs: number, writer = '', sequence?: number): string {
  const base = `${EVENTS_PREFIX}${pad(Math.max(0, Math.floor(atMs)), 15)}`;
  return writer === '' ? base : `${base}-${writer}-${pad(sequence ?? 0, 6)}`;
}

export class EventTimeline {
  readonly writer: string;
  readonly maxEvents: number;
  private readonly store: CoordStore;
  private sequence = 0;

  constructor(store: CoordStore, writer: string, options: { maxEvents?: number } = {}) {
    if (!WRITER_PATTERN.test(writer)) throw new RangeError(`an event writer's name is letters, digits, '.', '_' and '-' (at most 63), got '${writer}'`);
    this.store = store;
    this.writer = writer;
    this.maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    if (!Number.isSafeInteger(this.maxEvents) || this.maxEvents < 1) throw new RangeError(`maxEvents must be a positive whole number, got ${this.maxEvents}`);
  }

  /** The put of one event, to include in a transaction (so an event commits with what it reports). */
  op(event: Omit<TimelineEvent, 'by'>): TxnOp {
    this.sequence = (this.sequence + 1) % 1_000_000;
    return { kind: 'put', key: eventKeyAt(event.atMs, this.writer, this.sequence), value: JSON.stringify({ ...event, by: this.writer }) };
  }

  /** Writes events on their own (not tied to any other write). */
  async write(events: Omit<TimelineEvent, 'by'>[]): Promise<void> {
    if (events.length === 0) return;
    await this.store.txn({ compare: [], success: events.map((event) => this.op(event)) });
  }

  /** Deletes the oldest events beyond maxEvents (at most PRUNE_BATCH_MAX per call); returns how many. */
  async prune(): Promise<number> {
    const { count } = await this.store.range(EVENTS_PREFIX, { prefix: true, countOnly: true });
    const excess = Math.min(count - this.maxEvents, PRUNE_BATCH_MAX);
    if (excess <= 0) return 0;
    const oldest = await this.store.range(EVENTS_PREFIX, { prefix: true, keysOnly: true, limit: excess, sort: { target: 'key', order: 'ascend' } });
    const last = oldest.kvs[oldest.kvs.length - 1];
    if (last === undefined) return 0;
    const { deleted } = await this.store.delete(EVENTS_PREFIX, { rangeEnd: `${last.key}\0` });
    return deleted;
  }
}

/** Events in [sinceMs, untilMs), oldest first, at most `limit`; values that do not parse are skipped. */
export async function readEvents(store: CoordStore, options: { sinceMs?: number; untilMs?: number; limit?: number } = {}): Promise<TimelineEvent[]> {
  const start = eventKeyAt(options.sinceMs ?? 0);
  const end = options.untilMs === undefined ? undefined : eventKeyAt(options.untilMs);
  const result = await store.range(start, { rangeEnd: end ?? EVENTS_RANGE_END, limit: options.limit ?? 0, sort: { target: 'key', order: 'ascend' } });
  const events: TimelineEvent[] = [];
  for (const kv of result.kvs) {
    try {
      const event = JSON.parse(kv.value) as TimelineEvent;
      if (typeof event.atMs === 'number' && typeof event.kind === 'string' && typeof event.message === 'string') events.push(event);
    } catch {
      // Not an event (someone wrote under the prefix by hand): skipped.
    }
  }
  return events;
}
