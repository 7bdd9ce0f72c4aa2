// The proxy's recent health events, for GET /events: a bounded buffer (maxEvents, oldest dropped
// first), each event with a sequence number so a poller can ask only for what it has not seen.

import type { HealthEvent } from '../health/events.ts';

export interface LoggedEvent extends HealthEvent {
  readonly seq: number;
  /** The same instant as atMs, readable. */
  readonly at: string;
}

export class EventLog {
  private readonly events: LoggedEvent[] = [];
  private nextSeq = 1;
  private dropped = 0;
  private readonly maxEvents: number;

  constructor(maxEvents: number) {
    this.maxEvents = maxEvents;
  }

  append(event: HealthEvent): LoggedEvent {
    const logged: LoggedEvent = { seq: this.nextSeq++, at: new Date(event.atMs).toISOString(), ...event };
    this.events.push(logged);
    if (this.events.length > this.maxEvents) {
      this.events.shift();
      this.dropped += 1;
    }
    return logged;
  }

  /** Events with a sequence number above `afterSeq`, oldest first. */
  since(afterSeq = 0): { events: LoggedEvent[]; droppedBefore: number } {
    return { events: this.events.filter((event) => event.seq > afterSeq), droppedBefore: this.dropped };
  }
}
