// `concord report --since ... --until ...`: a postmortem of a time window from the event
// timeline (src/control/postmortem.ts): what failed, when it began and was detected, how long
// until traffic moved away, the pools' panic and shedding, what the autoscaler did, what
// operators did.
//
// Exit codes: 0 done; 1 the store could not be read; 2 a bad flag.

import type { Command } from 'commander';
import { readEvents } from '../control/events.ts';
import { buildPostmortem, formatPostmortem } from '../control/postmortem.ts';
import { timeFlag } from './events.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

/** Events read for one report at most; a longer window is refused with what to do. */
export const MAX_REPORT_EVENTS = 100_000;

interface ReportFlags extends StoreFlagValues {
  since: number;
  until?: number;
  pool?: string;
  json?: boolean;
}

export function registerReportCommand(program: Command, setExitCode: (code: number) => void): void {
  addStoreOptions(program.command('report')
    .description('A postmortem of a time window from the event timeline: what failed, when it was detected, how long until traffic moved away, what the autoscaler and operators did.')
    .requiredOption('--since <time>', 'start of the window: ISO time, ms since the epoch, or a duration ago (2h)', timeFlag('since'))
    .option('--until <time>', 'end of the window (default: now)', timeFlag('until'))
    .option('--pool <name>', 'only this pool')
    .option('--json', 'print the report as one JSON object (times in ms since the epoch, durations in ms)'))
    .addHelpText('after', '\nExit codes: 0 done; 1 the store could not be read; 2 a bad flag.\nExample: concord report --since 2025-01-07T10:00:00Z --until 2025-01-07T11:00:00Z\n')
    .action(async (flags: ReportFlags) => {
      const untilMs = flags.until ?? Date.now();
      if (untilMs <= flags.since) {
        process.stderr.write('concord report: --until must be later than --since\n');
        setExitCode(2);
        return;
      }
      await withStore('report', flags, setExitCode, async (store) => {
        const events = await readEvents(store, { sinceMs: flags.since, untilMs, limit: MAX_REPORT_EVENTS + 1 });
        if (events.length > MAX_REPORT_EVENTS) {
          process.stderr.write(`concord report: the window holds more than ${MAX_REPORT_EVENTS} events; report on a shorter one (--since/--until)\n`);
          setExitCode(2);
          return;
        }
        const report = buildPostmortem(flags.pool === undefined ? events : events.filter((event) => event.pool === flags.pool || event.pool === undefined), flags.since, untilMs);
        process.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : formatPostmortem(report));
      });
    });
}
