// What `concord up` writes to its terminal: log lines for people ("15:04:05 control  web: ...") or,
// with --json-logs, one pino JSON object a line; and the live status, kept as the last lines of a
// terminal (redrawn in place) or printed every statusEveryMs when the output is a file or a pipe,
// so logs stay readable either way.

import pino, { type Logger } from 'pino';
import type { UpLogger } from './embedded-system.ts';

export interface ConsoleOutputOptions {
  stream: NodeJS.WriteStream;
  json: boolean;
  /** Not a terminal: the status is printed this often instead of redrawn. */
  statusEveryMs: number;
}

const COMPONENT_WIDTH = 7;
/** A terminal that reports fewer columns than this (or none) is taken to be this wide. */
const MIN_COLUMNS = 20;
const FALLBACK_COLUMNS = 120;

export class ConsoleOutput implements UpLogger {
  private readonly options: ConsoleOutputOptions;
  private readonly json: Logger | undefined;
  private readonly redraw: boolean;
  private shownStatus: string[] = [];
  private lastPrintedStatusMs = Number.NEGATIVE_INFINITY;

  constructor(options: ConsoleOutputOptions) {
    this.options = options;
    this.redraw = options.stream.isTTY === true && !options.json;
    this.json = options.json ? pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, options.stream) : undefined;
  }

  info(component: string, message: string): void {
    this.write('info', component, message);
  }

  warn(component: string, message: string): void {
    this.write('warn', component, message);
  }

  /** Shows the status lines: in place on a terminal, else at most every statusEveryMs. */
  status(lines: string[], nowMs: number): void {
    if (this.json !== undefined) {
      if (nowMs - this.lastPrintedStatusMs < this.options.statusEveryMs) return;
      this.lastPrintedStatusMs = nowMs;
      this.json.info({ component: 'status', pools: lines }, 'status');
      return;
    }
    if (!this.redraw) {
      if (nowMs - this.lastPrintedStatusMs < this.options.statusEveryMs) return;
      this.lastPrintedStatusMs = nowMs;
      for (const line of lines) this.options.stream.write(`${clock()} ${'status'.padEnd(COMPONENT_WIDTH)} ${line}\n`);
      return;
    }
    this.clearStatus();
    this.shownStatus = lines.map((line) => fitTo(`  ${line}`, this.options.stream.columns));
    for (const line of this.shownStatus) this.options.stream.write(`${line}\n`);
  }

  /** Removes the status from a terminal (before the final lines at exit). */
  clearStatus(): void {
    if (!this.redraw || this.shownStatus.length === 0) return;
    this.options.stream.write(`\x1b[${this.shownStatus.length}A\x1b[J`);
    this.shownStatus = [];
  }

  /** A line for people (the addresses at start, the goodbye), kept out of the JSON log's shape. */
  say(text: string): void {
    if (this.json !== undefined) {
      this.json.info({ component: 'up' }, text);
      return;
    }
    const status = this.shownStatus;
    this.clearStatus();
    this.options.stream.write(`${text}\n`);
    this.restore(status);
  }

  private write(level: 'info' | 'warn', component: string, message: string): void {
    if (this.json !== undefined) {
      this.json[level]({ component }, message);
      return;
    }
    const status = this.shownStatus;
    this.clearStatus();
    this.options.stream.write(`${clock()} ${component.padEnd(COMPONENT_WIDTH)} ${level === 'warn' ? 'WARNING: ' : ''}${message}\n`);
    this.restore(status);
  }

  private restore(status: string[]): void {
    if (status.length === 0) return;
    this.shownStatus = status;
    for (const line of status) this.options.stream.write(`${line}\n`);
  }
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** One terminal row: a longer line would wrap, and the redraw would leave its tail behind. */
function fitTo(line: string, columns: number | undefined): string {
  const width = columns === undefined || columns < MIN_COLUMNS ? FALLBACK_COLUMNS : columns;
  return line.length < width ? line : `${line.slice(0, width - 2)}…`;
}
