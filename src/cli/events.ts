// `concord events`: the event timeline from the store (/concord/events/), oldest first: health
// transitions with their detection time, ejections, drains, shedding, the autoscaler's decisions
// and actions, freezes, configuration changes, leader changes.
//
// Exit codes: 0 done (also when no event matches); 1 the store could not be read; 2 a bad flag.

import { InvalidArgumentError, type Command } from 'commander';
import { parseTimePoint } from '../control/admin-api.ts';
import { readEvents, type TimelineEvent } from '../control/events.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

export const DEFAULT_EVENTS_SINCE = '1h';
export const DEFAULT_EVENTS_LIMIT = 1_000;
export const MAX_EVENTS_LIMIT = 100_000;

/** A --since/--until flag: an ISO time, milliseconds since the epoch, or a duration ago (90s, 15m, 1h, 2d). */
export function timeFlag(name: string): (value: string) => number {
  return (value) => {
    const ms = parseTimePoint(value, Date.now());
    if (ms === undefined) throw new InvalidArgumentError(`--${name} takes an ISO time (2025-01-07T10:00:00Z), milliseconds since the epoch, or a duration ago such as 30m, 1h or 2d`);
    return ms;
  };
}

function limitFlag(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_EVENTS_LIMIT) throw new InvalidArgumentError(`--limit takes a whole number from 1 to ${MAX_EVENTS_LIMIT}`);
  return Number(value);
}

export function formatEvent(event: TimelineEvent): string {
  return `${new Date(event.atMs).toISOString()}  ${event.kind.padEnd(18)} ${(event.pool ?? '-').padEnd(12)} ${event.source}/${event.by}: ${event.message}`;
}

interface EventsFlags extends StoreFlagValues {
  since: number;
  until?: number;
  pool?: string;
  kind?: string[];
  limit: number;
  json?: boolean;
}

export function registerEventsCommand(program: Command, setExitCode: (code: number) => void): void {
  addStoreOptions(program.command('events')
    .description('The event timeline, oldest first: health, ejections, drains, shedding, autoscaler decisions and actions, freezes, configuration.')
    .option('--since <time>', `from this time: ISO, ms since the epoch, or a duration ago (default ${DEFAULT_EVENTS_SINCE})`, timeFlag('since'))
    .option('--until <time>', 'up to this time (default: now)', timeFlag('until'))
    .option('--pool <name>', 'only this pool\'s events')
    .option('--kind <kind...>', 'only these kinds (marked-down, ejected, decision, freeze-set, ...)')
    .option('--limit <n>', `at most this many, the newest (default ${DEFAULT_EVENTS_LIMIT})`, limitFlag, DEFAULT_EVENTS_LIMIT)
    .option('--json', 'print {"events": [...]}: each event as stored ({atMs, source, kind, by, pool?, message, data?})'))
    .addHelpText('after', '\nExit codes: 0 done (also when nothing matches); 1 the store could not be read; 2 a bad flag.')
    .action(async (flags: EventsFlags) => {
      const sinceMs = flags.since ?? parseTimePoint(DEFAULT_EVENTS_SINCE, Date.now())!;
      if (flags.until !== undefined && flags.until <= sinceMs) {
        process.stderr.write('concord events: --until must be later than --since\n');
        setExitCode(2);
        return;
      }
      await withStore('events', flags, setExitCode, async (store) => {
        const all = await readEvents(store, { sinceMs, ...(flags.until === undefined ? {} : { untilMs: flags.until }) });
        const kinds = flags.kind === undefined ? undefined : new Set(flags.kind);
        const events = all.filter((event) => (flags.pool === undefined || event.pool === flags.pool) && (kinds === undefined || kinds.has(event.kind))).slice(-flags.limit);
        if (flags.json === true) process.stdout.write(`${JSON.stringify({ events })}\n`);
        else if (events.length === 0) process.stdout.write(`no events since ${new Date(sinceMs).toISOString()}${flags.pool === undefined ? '' : ` for pool ${flags.pool}`} (try --since 1d)\n`);
        else process.stdout.write(`${events.map(formatEvent).join('\n')}\n`);
      });
    });
}
