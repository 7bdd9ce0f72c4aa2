// `concord demo`: drives the demo load pattern (src/up/demo-load.ts) through a running `concord up`
// (or any Concord proxy whose pool runs the example app with --faults 1), with a progress bar, then
// summarises what happened from the event timeline and says where to read more.
//
// Exit codes: 0 the pattern ran; 2 a bad flag; 1 the proxy or the admin API did not answer.

import type { Command } from 'commander';
import type { ApiEvent } from '../control/admin-api-types.ts';
import { credentialsFrom } from '../coord/store-credentials.ts';
import { ADMIN_CALL_TIMEOUT_MS, runDemo, type DemoProgress, type DemoResult, type Tally } from '../up/demo-load.ts';

interface DemoFlags {
  proxy: string;
  admin: string;
  timeScale: string;
  json?: boolean;
  user?: string;
  password?: string;
  passwordFile?: string;
}

/** Basic credentials for the admin API, when a store user is given (the store has authentication on). */
function adminHeadersOf(flags: DemoFlags): Record<string, string> {
  const credentials = credentialsFrom({ user: flags.user, password: flags.password, passwordFile: flags.passwordFile });
  return credentials === undefined ? {} : { authorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` };
}

export function registerDemoCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('demo')
    .description('Drive a load pattern through a running `concord up` (ramp, spike, a backend crash, quiet), then summarise what Concord did.')
    .option('--proxy <url>', 'the proxy to send requests to', 'http://127.0.0.1:8080')
    .option('--admin <url>', 'the control plane\'s admin API (the dashboard\'s address)', 'http://127.0.0.1:7070')
    .option('--time-scale <factor>', 'multiply every phase\'s duration (0.5: twice as fast)', '1')
    .option('--json', 'print the result as one JSON object')
    .option('--user <name[:password]>', 'a store user for the admin API, when the store has authentication on (an https --admin with a private CA: NODE_EXTRA_CA_CERTS=ca.pem)')
    .option('--password <password>', 'the user\'s password (prefer --password-file)')
    .option('--password-file <file>', 'a file holding the user\'s password')
    .action(async (flags: DemoFlags) => {
      const scale = Number(flags.timeScale);
      const urlProblem = [flags.proxy, flags.admin].find((url) => !/^https?:\/\/[^/]+\/?$/.test(url));
      if (!Number.isFinite(scale) || scale <= 0 || scale > 10 || urlProblem !== undefined) {
        process.stderr.write(`concord demo: ${urlProblem === undefined ? `--time-scale '${flags.timeScale}' must be a number above 0 and at most 10` : `'${urlProblem}' must be a URL such as http://127.0.0.1:8080`}\n`);
        setExitCode(2);
        return;
      }
      const adminUrl = flags.admin.replace(/\/$/, '');
      let adminHeaders: Record<string, string>;
      try {
        adminHeaders = adminHeadersOf(flags);
      } catch (error) {
        process.stderr.write(`concord demo: ${(error as Error).message}\n`);
        setExitCode(2);
        return;
      }
      let status: number;
      try {
        status = (await fetch(`${adminUrl}/api/overview`, { headers: adminHeaders, signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS) })).status;
      } catch {
        process.stderr.write(`concord demo: no Concord control plane answers at ${adminUrl}: start one with \`npx concord up\` (or give --admin)\n`);
        setExitCode(1);
        return;
      }
      if (status === 401) {
        process.stderr.write(`concord demo: the admin API at ${adminUrl} asks for a store user (the store has authentication on): give --user NAME --password-file FILE\n`);
        setExitCode(1);
        return;
      }
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const result = await runDemoWithProgress({ proxyUrl: flags.proxy.replace(/\/$/, ''), adminUrl, adminHeaders, timeScale: scale, signal: abort.signal, say: (text) => process.stderr.write(`${text}\n`), quiet: flags.json === true });
      if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}

export interface DemoRunOptions {
  proxyUrl: string;
  adminUrl: string;
  adminHeaders?: Record<string, string>;
  timeScale?: number;
  signal?: AbortSignal;
  say: (text: string) => void;
  quiet?: boolean;
}

/** Runs the pattern with a progress display and prints what happened; resolves with the tallies and the timeline's counts. */
export async function runDemoWithProgress(options: DemoRunOptions): Promise<DemoResult & { events: Record<string, number> }> {
  const terminal = process.stderr.isTTY === true && options.quiet !== true;
  let phase = '';
  if (options.quiet !== true) options.say('demo: warm-up, ramp past capacity, a spike, a backend crash, then quiet (about 2 minutes at --time-scale 1)');
  const result = await runDemo({
    proxyUrl: options.proxyUrl, adminUrl: options.adminUrl, ...(options.adminHeaders === undefined ? {} : { adminHeaders: options.adminHeaders }),
    ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onNote: (text) => {
      if (terminal) process.stderr.write('\n');
      if (options.quiet !== true) options.say(`demo: ${text}`);
    },
    onProgress: (progress) => {
      if (terminal) process.stderr.write(`\r${progressLine(progress)}\x1b[K`);
      else if (progress.phase !== phase && options.quiet !== true) options.say(`demo: ${progress.phase} (${Math.round(progress.rps)} requests/s)`);
      phase = progress.phase;
    },
  });
  if (terminal) process.stderr.write('\n');
  const events = await timelineCounts(options.adminUrl, result.startedAtMs, options.adminHeaders ?? {});
  if (options.quiet !== true) for (const line of summary(result, events)) options.say(line);
  return { ...result, events };
}

const BAR_WIDTH = 24;
/** Events of the run read back for the summary (the admin API's own cap applies too). */
const TIMELINE_EVENTS_READ = 10_000;

function progressLine(progress: DemoProgress): string {
  const filled = Math.min(BAR_WIDTH, Math.round((progress.elapsedMs / progress.totalMs) * BAR_WIDTH));
  const all = sum(progress.byPriority.critical, progress.byPriority.default);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${progress.phase.padEnd(15)} ${String(Math.round(progress.rps)).padStart(4)} req/s  ok ${all.ok}  shed ${all.shed}  failed ${all.failed}`;
}

function sum(a: Tally, b: Tally): Tally {
  return { sent: a.sent + b.sent, ok: a.ok + b.ok, shed: a.shed + b.shed, failed: a.failed + b.failed, notSent: a.notSent + b.notSent };
}

async function timelineCounts(adminUrl: string, sinceMs: number, headers: Record<string, string>): Promise<Record<string, number>> {
  try {
    const response = await fetch(`${adminUrl}/api/events?since=${sinceMs}&limit=${TIMELINE_EVENTS_READ}`, { headers, signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS) });
    const { events } = await response.json() as { events: ApiEvent[] };
    const counts: Record<string, number> = {};
    for (const event of events) counts[event.kind] = (counts[event.kind] ?? 0) + 1;
    return counts;
  } catch {
    return {};
  }
}

function summary(result: DemoResult, events: Record<string, number>): string[] {
  const line = (name: string, tally: Tally) => `  ${name.padEnd(9)} sent ${tally.sent}, ok ${tally.ok}, shed ${tally.shed}, failed ${tally.failed}${tally.notSent > 0 ? `, not sent (client limit) ${tally.notSent}` : ''}`;
  const kinds = Object.entries(events).sort(([a], [b]) => (a < b ? -1 : 1)).map(([kind, count]) => `${kind} ${count}`).join(', ');
  return [
    `demo: done in ${Math.round((result.endedAtMs - result.startedAtMs) / 1000)} s`,
    line('critical', result.byPriority.critical),
    line('default', result.byPriority.default),
    `  timeline  ${kinds === '' ? 'no events read' : kinds}`,
    `read what happened: npx concord events --since ${Math.ceil((Date.now() - result.startedAtMs) / 60_000) + 1}m   (or the dashboard's timeline)`,
  ];
}
