// Events of a component that runs outside the control plane's transactions (a proxy's ejections,
// drains and shedding episodes; a member's health verdicts) written to the store's timeline in
// batches. The buffer is bounded: while the store is unreachable the oldest events are dropped
// (and the count is written as an event of its own once it answers again), so a long outage costs
// memory up to maxBufferedEvents and never blocks the component.

import type { CoordStore } from '../coord/coord-store.ts';
import { EventTimeline, type TimelineEvent } from './events.ts';

export const DEFAULT_MAX_BUFFERED_EVENTS = 1_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 500;
/** Events per transaction (etcd's default limit on operations per transaction is 128). */
const EVENTS_PER_TXN = 64;

export interface EventSinkOptions {
  writer: string;
  /** The component, as the events' source: 'proxy', 'health', ... */
  source: string;
  maxBufferedEvents?: number;
  flushIntervalMs?: number;
  onProblem?: (message: string) => void;
}

/** An event to write; `source` defaults to the sink's. */
export type SinkEvent = Omit<TimelineEvent, 'by' | 'source'> & { source?: string };

export class EventSink {
  private readonly timeline: EventTimeline;
  private readonly options: EventSinkOptions;
  private readonly buffer: SinkEvent[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failing = false;

  constructor(store: CoordStore, options: EventSinkOptions) {
    this.timeline = new EventTimeline(store, options.writer);
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  push(event: SinkEvent): void {
    this.buffer.push(event);
    if (this.buffer.length > (this.options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS)) {
      this.buffer.shift();
      this.dropped += 1;
    }
  }

  /** Writes what is buffered (one flush at a time); failures keep the events for the next try. */
  flush(): Promise<void> {
    this.flushing ??= this.writeBuffered().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer and tries one last flush. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async writeBuffered(): Promise<void> {
    while (this.buffer.length > 0 || this.dropped > 0) {
      const batch = this.buffer.slice(0, EVENTS_PER_TXN);
      const dropped = this.dropped;
      const events: Omit<TimelineEvent, 'by'>[] = batch.map((event) => ({ ...event, source: event.source ?? this.options.source }));
      if (dropped > 0) events.push({ atMs: Date.now(), source: this.options.source, kind: 'events-dropped', message: `${dropped} events were dropped while the store could not be written (the buffer holds ${this.options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS})`, data: { dropped } });
      try {
        await this.timeline.write(events);
      } catch (error) {
        if (!this.failing) this.options.onProblem?.(`cannot write events to the store (kept, up to ${this.options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS}): ${(error as Error).message}`);
        this.failing = true;
        return;
      }
      if (this.failing) this.options.onProblem?.('events are written to the store again');
      this.failing = false;
      this.buffer.splice(0, batch.length);
      this.dropped -= dropped;
    }
  }
}
