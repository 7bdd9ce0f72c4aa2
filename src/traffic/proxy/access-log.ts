// The access log: one structured JSON line per request (pino), written asynchronously so a slow
// terminal or disk does not stall request handling. Health events go to the same stream, marked
// with "event", so one file tells the whole story.

import pino, { type Logger } from 'pino';
import type { HealthEvent } from '../health/events.ts';

export interface AccessLogEntry {
  requestId: string;
  method: string;
  path: string;
  host: string | undefined;
  client: string;
  pool: string;
  /** host:port of the backend that answered (or last tried), '-' when none was, 'none' when none was available. */
  backend: string;
  status: number;
  attempts: number;
  durationMs: number;
}

export class AccessLog {
  private readonly logger: Logger;

  constructor(destination: pino.DestinationStream = pino.destination({ dest: 1, sync: false, minLength: 4096 })) {
    this.logger = pino({ base: undefined, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime }, destination);
  }

  request(entry: AccessLogEntry): void {
    this.logger.info({ ...entry, durationMs: Math.round(entry.durationMs * 1000) / 1000 }, 'request');
  }

  event(event: HealthEvent): void {
    this.logger.info({ event: event.kind, pool: event.pool, backend: event.backend, cause: event.cause, detail: event.detail, detectionMs: event.detectionMs, ejectionMs: event.ejectionMs }, 'health event');
    this.logger.flush(); // rare and urgent: not held back with the request lines
  }

  notice(message: string, fields: Record<string, unknown> = {}): void {
    this.logger.info(fields, message);
    this.logger.flush();
  }

  flush(): void {
    this.logger.flush();
  }
}
